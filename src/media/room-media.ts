/**
 * Media in one room: the streams we send (`addStream`), the streams members send us (`stream`
 * events), one media RTCPeerConnection per member (peer.ts), and the room's rules, enforced here
 * on receipt whatever a sender's client does:
 * - only joined members count: their messages came over our direct connection to them and, in a
 *   private room, proved the secret; signals from anyone else are held until it joins, or dropped;
 * - in a `'one-way'` room only the host's streams are delivered; a stream from a member that is
 *   not (or no longer) the host is refused or ended, and delivered if it becomes the host;
 * - a stream we do not deliver costs us nothing on the wire: our side of its transceivers stops
 *   receiving (renegotiated), so a sender that follows its SDP stops sending it;
 * - a member that leaves ends its streams; a member that joins gets the streams being sent.
 *
 * Signals to a member go out in order through its outbox. One that cannot be sent (its direct
 * connection dropped and is healing) stays there with every signal after it, and they go out, in
 * order, once the member is direct again: perfect negotiation takes a late signal like a slow
 * network's, never a missing one. A member back from a heal also gets the streams added while it
 * was away, and our offer again if no answer came.
 */
import { MAX_EARLY_MEDIA_FRAMES, MAX_EARLY_MEDIA_PEERS, MAX_MEDIA_OUTBOX_FRAMES, MAX_STREAMS_PER_PEER, MEDIA_SIGNAL_RETRY_ATTEMPTS, MEDIA_SIGNAL_RETRY_MS, MEDIA_STATS_INTERVAL_MS } from '../constants.js'
import { InvalidMediaError, PeerNotFoundError, RoomClosedError, SessionTypeError } from '../errors.js'
import { MediaPeer } from './peer.js'
import { metadataProblem } from './wire.js'
import type { AddStreamOptions, MediaPeerStats, RoomMediaEvents } from './types.js'
import type { MediaSignal } from './wire.js'
import type { RoomPeer, SessionType } from '../index.js'

/** What a room's media needs of the room. */
export interface MediaRoom {
  readonly name: string
  readonly type: SessionType
  readonly self: string
  readonly host: string
  /** The room's key: the label of every signalling frame. */
  readonly topics: { room: string }
  peers(): RoomPeer[]
  addEventListener(type: 'peer:join' | 'peer:update' | 'peer:leave' | 'host:change', listener: (evt: CustomEvent<any>) => void): void
  removeEventListener(type: 'peer:join' | 'peer:update' | 'peer:leave' | 'host:change', listener: (evt: CustomEvent<any>) => void): void
  safeDispatchEvent(type: keyof RoomMediaEvents, init: { detail: RoomMediaEvents[keyof RoomMediaEvents]['detail'] }): boolean
}

/** What a room's media needs of the node (service.ts). */
export interface MediaNode {
  /** ICE servers (TURN credentials included) and `iceTransportPolicy` of the node. */
  config: RTCConfiguration
  /**
   * Sends a signal to `peer` for this room, over our direct connection to it.
   *
   * @throws FrameTooLargeError for a signal over the frame limit; stream errors (NotDirectError
   * among them) when there is no direct connection to send it on
   */
  send: (peer: string, label: string, msg: MediaSignal) => Promise<void>
  log: (fmt: string, ...args: unknown[]) => void
  onClose: (session: RoomMediaSession) => void
}

interface Outgoing {
  stream: MediaStream
  /** what we send: the stream's tracks when added, as `replaceTrack` changed them since */
  tracks: MediaStreamTrack[]
  to?: string
  meta?: unknown
}

interface Incoming {
  id: string
  meta?: unknown
  /** the stream the browser made from the msid, once a track arrived */
  stream?: MediaStream
  /** whether `stream` was dispatched and `stream:end` is owed */
  delivered: boolean
}

interface Member {
  peer?: MediaPeer
  /** our senders, per stream we send it */
  senders: Map<MediaStream, RTCRtpSender[]>
  /** its announced streams, by ID */
  incoming: Map<string, Incoming>
  /** the streams the browser made from the msids of its tracks, by ID */
  remote: Map<string, MediaStream>
  /** the transceivers its tracks arrived on, by the ID of their stream (msid = the `add` signal's ID) */
  transceivers: Map<string, Set<RTCRtpTransceiver>>
  /** its media session (`s` of its signals): another one is a new page under the same peer ID */
  session?: string
  /** ours towards it, once either side started the connection afresh (`reconnect`, `restart`); else the room's */
  ownSession?: string
  /** we started afresh (`reconnect`) and drop its signals until they carry its new session */
  awaiting?: boolean
  refused: number
  /** signals to it not sent yet, in order: the first is being sent, or failed and waits for a heal */
  outbox: MediaSignal[]
  /** the outbox is being sent */
  flushing: boolean
  /** a failed signal is tried again (the member still looked direct) */
  retry?: ReturnType<typeof setTimeout>
  /** sends that failed in a row while the member looked direct */
  failures: number
}

export class RoomMediaSession {
  private readonly room: MediaRoom
  private readonly node: MediaNode
  private readonly outgoing = new Map<MediaStream, Outgoing>()
  private readonly members = new Map<string, Member>()
  /** signals from peers not joined yet, in order */
  private readonly early = new Map<string, MediaSignal[]>()
  private statsTimer?: ReturnType<typeof setInterval>
  private closed = false
  /** ours, in every signal we send (`s`): unchanged until we leave the room */
  private readonly session = randomId()

  constructor (room: MediaRoom, node: MediaNode) {
    this.room = room
    this.node = node
    room.addEventListener('peer:join', this.onJoin)
    room.addEventListener('peer:update', this.onUpdate)
    room.addEventListener('peer:leave', this.onLeave)
    room.addEventListener('host:change', this.onHostChange)
  }

  get label (): string {
    return this.room.topics.room
  }

  // --- the room's API -------------------------------------------------------------------------

  async addStream (stream: MediaStream, options: AddStreamOptions = {}): Promise<void> {
    this.assertOpen()
    if (typeof RTCPeerConnection === 'undefined') throw new InvalidMediaError('media needs a browser with RTCPeerConnection')
    if (typeof stream?.getTracks !== 'function' || stream.getTracks().length === 0) throw new InvalidMediaError('addStream takes a MediaStream with at least one track')
    const problem = metadataProblem(options.metadata)
    if (problem !== undefined) throw new InvalidMediaError(problem)
    if (this.room.type === 'pairwise' && options.to === undefined) throw new SessionTypeError(`room "${this.room.name}" is pairwise: addStream needs { to: peerId }`)
    if (options.to !== undefined && !this.isMember(options.to)) throw new PeerNotFoundError(`${options.to} is not a joined member of room "${this.room.name}"`)
    if (this.outgoing.has(stream)) return
    const out: Outgoing = { stream, tracks: stream.getTracks(), to: options.to, meta: options.metadata === undefined ? undefined : JSON.parse(JSON.stringify(options.metadata)) }
    this.outgoing.set(stream, out)
    for (const peer of this.joined()) if (out.to === undefined || out.to === peer) this.attach(peer, out)
  }

  async removeStream (stream: MediaStream): Promise<void> {
    const out = this.outgoing.get(stream)
    if (out === undefined) return
    this.outgoing.delete(stream)
    for (const [peer, m] of this.members) this.detach(peer, m, out)
  }

  async replaceTrack (oldTrack: MediaStreamTrack, newTrack: MediaStreamTrack): Promise<void> {
    this.assertOpen()
    const out = [...this.outgoing.values()].find((o) => o.tracks.includes(oldTrack))
    if (out === undefined) throw new InvalidMediaError('replaceTrack: the old track is not in a stream this room sends')
    if (newTrack?.kind !== oldTrack.kind) throw new InvalidMediaError(`replaceTrack: a ${oldTrack.kind} track can only be replaced by another ${oldTrack.kind} track`)
    out.tracks = out.tracks.map((t) => t === oldTrack ? newTrack : t)
    await Promise.all([...this.members.values()].flatMap((m) => (m.senders.get(out.stream) ?? [])
      .filter((s) => s.track === oldTrack)
      .map(async (s) => { await s.replaceTrack(newTrack) })))
  }

  /** Media counters of `peer`, if we have a media connection to it. */
  stats (peer: string): MediaPeerStats | undefined {
    const m = this.members.get(peer)
    if (m?.peer === undefined) return undefined
    return {
      ...m.peer.counters,
      streamsOut: m.senders.size,
      streamsIn: [...m.incoming.values()].filter((i) => i.delivered).length,
      refused: m.refused
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.statsTimer)
    this.room.removeEventListener('peer:join', this.onJoin)
    this.room.removeEventListener('peer:update', this.onUpdate)
    this.room.removeEventListener('peer:leave', this.onLeave)
    this.room.removeEventListener('host:change', this.onHostChange)
    for (const peer of [...this.members.keys()]) this.drop(peer)
    this.outgoing.clear()
    this.early.clear()
    this.node.onClose(this)
  }

  // --- signals --------------------------------------------------------------------------------

  /** A signal from `from` for this room (service.ts decoded it). */
  onSignal (from: string, msg: MediaSignal): void {
    if (this.closed) return
    if (!this.isMember(from)) {
      // its offer may arrive before its hello made it a member here: hold a few, in order
      let held = this.early.get(from)
      if (held === undefined) {
        if (this.early.size >= MAX_EARLY_MEDIA_PEERS) return
        held = []
        this.early.set(from, held)
      }
      if (held.length < MAX_EARLY_MEDIA_FRAMES) held.push(msg)
      return
    }
    const m = this.member(from)
    if (msg.s !== undefined && msg.s !== m.session) {
      // a new session while we await one is the restart we asked for (reconnect), not a new page
      if (m.session !== undefined && m.awaiting !== true) this.restart(from, m)
      m.session = msg.s
      m.awaiting = false
    } else if (m.awaiting === true) {
      // sent by its old connection before our new session reached it: nothing of ours to apply it to
      this.node.log('dropping a %s signal of %s\'s old media connection in %s', msg.t, from, this.room.name)
      return
    }
    switch (msg.t) {
      case 'sdp':
      case 'ice':
        void this.peerOf(from, m).signal(msg).catch(() => {})
        return
      case 'add': {
        if (m.incoming.has(msg.id)) return
        if (m.incoming.size >= MAX_STREAMS_PER_PEER) {
          m.refused++
          return
        }
        // a non-host's stream in a one-way room is held, not delivered: it is delivered if its
        // sender becomes the host (a handoff), and counted as refused until then
        if (!this.accepts(from)) m.refused++
        m.incoming.set(msg.id, { id: msg.id, meta: msg.meta, delivered: false })
        this.deliver(from, m)
        return
      }
      case 'hello':
        return
      case 'remove': {
        const inc = m.incoming.get(msg.id)
        if (inc === undefined) return
        m.incoming.delete(msg.id)
        m.remote.delete(msg.id)
        m.transceivers.delete(msg.id)
        this.end(from, inc)
      }
    }
  }

  // --- members --------------------------------------------------------------------------------

  private readonly onJoin = (evt: CustomEvent<{ peerId: string }>): void => {
    const peer = evt.detail.peerId
    this.replayEarly(peer)
    // our session ID, so that a page of ours that restarts is told apart from this one even if
    // it has nothing to send (restart)
    this.send(peer, { t: 'hello' })
    // a late joiner gets what is being sent
    this.attachOutgoing(peer)
  }

  /**
   * A joined member's path changed. Direct again after a heal: what could not reach it while its
   * connection was down goes now (room-media.ts' head comment says how).
   */
  private readonly onUpdate = (evt: CustomEvent<{ peerId: string, path: string }>): void => {
    const { peerId: peer, path } = evt.detail
    if (path !== 'direct' || this.closed) return
    this.node.log('%s is direct again in %s: sending what waited', peer, this.room.name)
    this.replayEarly(peer)
    const m = this.members.get(peer)
    if (m !== undefined) {
      m.failures = 0
      // our offer went out while the connection was dying, or its answer did: offer again (an
      // offer the peer had applied is applied again and answered again)
      if (!m.outbox.some((msg) => msg.t === 'sdp')) m.peer?.resendOffer()
      void this.flush(peer, m)
    }
    this.attachOutgoing(peer)
  }

  private replayEarly (peer: string): void {
    const held = this.early.get(peer)
    this.early.delete(peer)
    for (const msg of held ?? []) this.onSignal(peer, msg)
  }

  private attachOutgoing (peer: string): void {
    for (const out of this.outgoing.values()) if (out.to === undefined || out.to === peer) this.attach(peer, out)
  }

  private readonly onLeave = (evt: CustomEvent<{ peerId: string }>): void => {
    this.early.delete(evt.detail.peerId)
    this.drop(evt.detail.peerId)
  }

  /**
   * In a one-way room a stream is the host's: the previous host's end and stop being received;
   * the new host's are delivered, over a new connection if we had stopped receiving them.
   */
  private readonly onHostChange = (): void => {
    if (this.room.type !== 'one-way') return
    for (const [peer, m] of this.members) {
      if (this.accepts(peer)) {
        if (this.refusing(m)) this.reconnect(peer, m)
        else this.deliver(peer, m)
      } else {
        for (const inc of m.incoming.values()) this.end(peer, inc, false)
        this.receive(peer, m)
      }
    }
  }

  private isMember (peer: string): boolean {
    return this.room.peers().some((p) => p.peerId === peer && p.path === 'direct')
  }

  private joined (): string[] {
    return this.room.peers().filter((p) => p.path === 'direct').map((p) => p.peerId)
  }

  private accepts (peer: string): boolean {
    return this.room.type !== 'one-way' || this.room.host === peer
  }

  private member (peer: string): Member {
    let m = this.members.get(peer)
    if (m === undefined) {
      m = { senders: new Map(), incoming: new Map(), remote: new Map(), transceivers: new Map(), refused: 0, outbox: [], flushing: false, failures: 0 }
      this.members.set(peer, m)
    }
    return m
  }

  private peerOf (peer: string, m: Member): MediaPeer {
    if (m.peer !== undefined) return m.peer
    const p = new MediaPeer({
      // the two sides must disagree: the smaller peer ID gives way
      polite: this.room.self < peer,
      config: this.node.config,
      send: (msg) => { this.send(peer, msg) },
      // runs inside setRemoteDescription: a direction set here is in the answer that follows
      onTrack: (evt) => {
        for (const s of evt.streams) {
          m.remote.set(s.id, s)
          let ts = m.transceivers.get(s.id)
          if (ts === undefined) {
            ts = new Set()
            m.transceivers.set(s.id, ts)
          }
          ts.add(evt.transceiver)
        }
        this.deliver(peer, m)
      },
      // which connection a line is about: one per member
      log: (fmt, ...args) => { this.node.log(`media to %s in %s: ${fmt}`, peer, this.room.name, ...args) }
    })
    m.peer = p
    this.statsTimer ??= setInterval(() => { void this.readStats() }, MEDIA_STATS_INTERVAL_MS)
    return p
  }

  /** Sends `out` to `peer`: its announcement first, so the peer knows the stream before its tracks. */
  private attach (peer: string, out: Outgoing): void {
    const m = this.member(peer)
    if (m.senders.has(out.stream)) return
    const pc = this.peerOf(peer, m).pc
    this.send(peer, { t: 'add', id: out.stream.id, ...(out.meta !== undefined ? { meta: out.meta } : {}) })
    m.senders.set(out.stream, out.tracks.map((track) => pc.addTrack(track, out.stream)))
  }

  private detach (peer: string, m: Member, out: Outgoing): void {
    const senders = m.senders.get(out.stream)
    if (senders === undefined) return
    m.senders.delete(out.stream)
    const pc = m.peer?.pc
    if (pc === undefined || pc.signalingState === 'closed') return
    for (const s of senders) {
      // stopping the transceiver ends the receiver's track once negotiated; but a transceiver the
      // peer sends on too (one of us added a track to the m-line the other's offer made) carries
      // its stream as well, which stopping would end here: only our half of it goes
      const t = pc.getTransceivers().find((x) => x.sender === s)
      if (t !== undefined && t.currentDirection !== 'sendrecv') t.stop()
      else pc.removeTrack(s)
    }
    this.send(peer, { t: 'remove', id: out.stream.id })
  }

  /**
   * Dispatches `stream` for every announced stream of `peer` whose tracks arrived, if the rules
   * allow, and receives only those it may deliver.
   */
  private deliver (peer: string, m: Member): void {
    if (this.closed) return
    this.receive(peer, m)
    for (const inc of m.incoming.values()) {
      // the browser's stream for the msid; a refused stream's tracks left it and come back on
      // the next track event once it is received again
      const stream = (inc.delivered ? inc.stream : undefined) ?? m.remote.get(inc.id) ?? inc.stream
      if (stream === undefined) continue
      inc.stream = stream
      if (inc.delivered) continue
      if (!this.accepts(peer)) continue
      if (stream.getTracks().length === 0) continue
      inc.delivered = true
      this.room.safeDispatchEvent('stream', { detail: { peerId: peer, stream, ...(inc.meta !== undefined ? { metadata: inc.meta } : {}) } })
    }
  }

  /**
   * Sets the receiving half of each transceiver `peer`'s tracks arrived on: on for a stream
   * announced by a sender the rules accept, off otherwise (a non-host's in a one-way room, one
   * over MAX_STREAMS_PER_PEER, one never announced). Off, the renegotiation (negotiationneeded,
   * peer.ts) answers or offers that m-line without `recv`, so the sender stops sending its RTP
   * there: a refused stream costs no bandwidth unless the sender ignores its SDP. What we send on
   * a shared transceiver (our addTrack reuses the one the other side's offer created) goes on.
   */
  private receive (peer: string, m: Member): void {
    for (const [id, transceivers] of m.transceivers) {
      const recv = this.accepts(peer) && m.incoming.has(id)
      for (const t of transceivers) {
        if (t.currentDirection === 'stopped' || t.direction === 'stopped') continue
        const send = t.direction === 'sendrecv' || t.direction === 'sendonly'
        const direction: RTCRtpTransceiverDirection = send ? (recv ? 'sendrecv' : 'sendonly') : (recv ? 'recvonly' : 'inactive')
        if (t.direction === direction) continue
        this.node.log('%s %s\'s stream %s in %s: transceiver %s', recv ? 'receiving' : 'not receiving', peer, id, this.room.name, direction)
        t.direction = direction
      }
    }
  }

  /** Whether we turned off receiving on any transceiver `m`'s tracks arrived on. */
  private refusing (m: Member): boolean {
    return [...m.transceivers.values()].some((ts) => [...ts].some((t) => t.direction === 'inactive' || t.direction === 'sendonly'))
  }

  /**
   * Starts our media connection to `peer` afresh under a new session ID of ours, which makes its
   * side start afresh too (`restart`) and send its streams again: how the streams of a member we
   * refused come back once it is the host. Turning their receiving back on instead renegotiates
   * the same transceivers, and Chromium then left the new host's track muted in about 1 run of 7
   * (frames decoded, none shown: commit 458b1e0).
   */
  private reconnect (peer: string, m: Member): void {
    this.node.log('%s is the host of %s now: connecting afresh to receive its streams', peer, this.room.name)
    this.startAfresh(peer, m)
    m.awaiting = true
  }

  private end (peer: string, inc: Incoming, stopTracks = true): void {
    if (!inc.delivered || inc.stream === undefined) return
    inc.delivered = false
    if (stopTracks) for (const t of inc.stream.getTracks()) t.stop()
    this.room.safeDispatchEvent('stream:end', { detail: { peerId: peer, stream: inc.stream } })
  }

  /**
   * `peer` started its media afresh under a new session: a new page under the same peer ID (a
   * crashed tab reloaded) that the room took as a restart, not a leave, or its `reconnect`. Its
   * old streams end and our connection to it starts afresh, under a new session of ours too: what
   * our old connection sent that is still on its way is then told apart and dropped there. The
   * side that reconnected awaits that new session, so it does not restart in return; a new page
   * never knew our old session, so neither does it.
   */
  private restart (peer: string, m: Member): void {
    this.node.log('%s restarted its media in %s: connecting afresh', peer, this.room.name)
    this.startAfresh(peer, m)
  }

  /**
   * Ends `peer`'s streams, drops our connection to it and what waited to be sent on it, and starts
   * a new one under a new session of ours, sending it what we send.
   */
  private startAfresh (peer: string, m: Member): void {
    this.closeConnection(peer, m)
    m.incoming.clear()
    m.remote.clear()
    m.transceivers.clear()
    m.senders.clear()
    m.peer = undefined
    m.ownSession = randomId()
    this.send(peer, { t: 'hello' })
    this.attachOutgoing(peer)
  }

  /** Ends `peer`'s streams and closes our connection to it, with what waited to be sent on it. */
  private closeConnection (peer: string, m: Member): void {
    clearTimeout(m.retry)
    m.outbox.length = 0
    for (const inc of m.incoming.values()) this.end(peer, inc)
    m.peer?.close()
  }

  /** `peer` left: its connection closes, its streams end. */
  private drop (peer: string): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    this.members.delete(peer)
    this.closeConnection(peer, m)
    if (this.members.size === 0) {
      clearInterval(this.statsTimer)
      this.statsTimer = undefined
    }
  }

  /** Queues `msg` for `peer` behind what is already waiting, and sends what it can. */
  private send (peer: string, msg: MediaSignal): void {
    const m = this.member(peer)
    if (m.outbox.length >= MAX_MEDIA_OUTBOX_FRAMES) {
      this.node.log('media outbox to %s in %s is full (%d signals waiting): dropping a %s signal', peer, this.room.name, m.outbox.length, msg.t)
      return
    }
    m.outbox.push({ ...msg, s: m.ownSession ?? this.session })
    void this.flush(peer, m)
  }

  /**
   * Sends `m`'s outbox in order, each signal once the one before it was handed to the stream. A
   * signal that fails stays first: tried again soon if the member still looks direct (its stream
   * failed, not its connection), else when it is direct again (`onUpdate`). Only one too large to
   * ever be sent is dropped.
   */
  private async flush (peer: string, m: Member): Promise<void> {
    if (m.flushing) return
    m.flushing = true
    clearTimeout(m.retry)
    m.retry = undefined
    try {
      while (m.outbox.length > 0 && !this.closed && this.members.get(peer) === m) {
        const msg = m.outbox[0]
        try {
          await this.node.send(peer, this.label, msg)
        } catch (err: any) {
          if (err?.name !== 'FrameTooLargeError') {
            this.node.log('media signal to %s in %s failed, %d waiting - %e', peer, this.room.name, m.outbox.length, err)
            // a member that looks direct but keeps failing (a peer without media) waits for a heal
            // or our next signal, not a timer forever
            if (this.isMember(peer) && ++m.failures < MEDIA_SIGNAL_RETRY_ATTEMPTS) m.retry = setTimeout(() => { void this.flush(peer, m) }, MEDIA_SIGNAL_RETRY_MS)
            return
          }
          this.node.log('dropping a %s signal to %s in %s - %e', msg.t, peer, this.room.name, err)
        }
        m.failures = 0
        // unless `reconnect` emptied the outbox meanwhile
        if (m.outbox[0] === msg) m.outbox.shift()
      }
    } finally {
      m.flushing = false
    }
  }

  private async readStats (): Promise<void> {
    await Promise.all([...this.members.values()].map(async (m) => { await m.peer?.readStats().catch(() => {}) }))
  }

  private assertOpen (): void {
    if (this.closed) throw new RoomClosedError(`room "${this.room.name}" was left`)
  }
}

function randomId (): string {
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, '0')).join('')
}
