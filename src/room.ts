/**
 * Room semantics: membership learned through the relay, readiness before `peer:join`, presence
 * (heartbeats and expiry), the host rule, the session type's rules, and the backlog for late
 * joiners. Direct connections belong to the node (direct.ts): a room says which peers it wants
 * and hears when they become direct or drop. Room frames travel over the node's `ROOM_PROTOCOL`
 * streams, straight from sender to each member. What each message must satisfy lives in
 * room-messages.ts.
 */
import { TypedEventEmitter } from 'main-event'
import {
  FRAME_OVERHEAD_BYTES, HELLO_RETRY_MS, HISTORY_TIMEOUT_MS, MAX_HELD_BYTES_PER_ROOM, MAX_HELD_PER_ROOM, RANK_DECIDE_WITHIN_MS,
  RANK_SETTLE_ALONE_MS, RANK_SETTLE_MS, REPLY_DELAY_MIN_MS, REPLY_DELAY_SPREAD_MS
} from './constants.js'
import { NotHostError, PeerNotFoundError, RoomClosedError, SessionTypeError } from './errors.js'
import { HostRules } from './host.js'
import { Presence } from './presence.js'
import { RoomMessages } from './room-messages.js'
import {
  KIND_DATA, KIND_HANDOFF, KIND_HEARTBEAT, KIND_LEAVE, decodeAnnouncement, decodeHandoff, decodeHeartbeat, decodeHistoryRequest,
  encodeAnnouncement, encodeHandoff, encodeHeartbeat, encodeHistoryRequest, encodeLabelled, roomTopics
} from './wire.js'
import type { DirectLinkEvents, DirectLinks } from './direct.js'
// files (issue 10): the room's file session, see src/files/
import type { FileService } from './files/service.js'
import type { RoomFileSession } from './files/room-files.js'
import type { FileTransfer, SendFileOptions, SharedFile } from './files/types.js'
// media (issue 11): the room's media session, see src/media/
import type { MediaService } from './media/service.js'
import type { RoomMediaSession } from './media/room-media.js'
import type { AddStreamOptions } from './media/types.js'
import type { MeetingPhase, MeetingTimeline, ResolvedRoomNodeOptions, RoomEvents, Room, RoomPeer, RoomPeerStats, LeaveReason, PublishResult, SessionType, RoomStats } from './index.js'
import type { Delivery, HistoryRefusal, OpenedMessage } from './room-messages.js'
import type { Release } from './sequence.js'
import type { Admission, RoomMessageKind } from './wire.js'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Logger } from '@libp2p/interface'

/** What a room needs of its node: narrow, so that tests can stub it. */
export interface RoomContext {
  /** Our peer ID. */
  self: string
  /** When our node started, in ms since the epoch: announced, so peers agree on who dials. */
  startedAt: number
  options: ResolvedRoomNodeOptions
  log: Logger
  /** gossipsub, for the room's discovery topic only. */
  pubsub: Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'publish'>
  /** The node's direct connections. */
  links: Pick<DirectLinks, 'want' | 'release' | 'isDirect' | 'connection' | 'stats' | 'phases'> & Pick<DirectLinks, 'addEventListener' | 'removeEventListener'>
  /** Whether libp2p is still running: a stopped node has nobody left to tell. */
  running: () => boolean
  /** Our own `/p2p-circuit/webrtc` multiaddrs, one per relay reservation. */
  ownAddrs: () => string[]
  /** Sends a frame to `peer` over its direct connection (`ROOM_PROTOCOL`); resolves once handed over. */
  sendFrame: (peer: string, frame: Uint8Array) => Promise<void>
  /** Writes a frame to `peer`'s open stream at once, if there is one (a page going away). */
  sendFrameNow: (peer: string, frame: Uint8Array) => boolean
  /**
   * Asks `peer` for this room's backlog over a direct connection, taking at most `maxFrames`
   * frames of at most `maxFrameBytes` each.
   */
  requestHistory: (peer: string, request: Uint8Array, limits: { maxFrames: number, maxFrameBytes: number }, signal: AbortSignal) => Promise<Uint8Array[]>
  /** Called once the room is left. */
  onLeft: (room: RoomImpl) => void
  /** The node's file service (src/files/): the room's files attach to it. */
  files: Pick<FileService, 'attach'>
  /** The node's media service (src/media/): the room's media attaches to it. */
  media: Pick<MediaService, 'attach'>
}

/** A room's own settings, resolved from `joinRoom`'s options. */
export interface RoomSettings {
  type: SessionType
  maxMessageBytes: number
  messagesPerSecond: number
  burst: number
  historySize: number
  /** Backlog requests served per requesting peer and minute. */
  historyRequestsPerMinute: number
  /** Set for a private room: its topic ID and master key, both derived from the secret. */
  secret?: { topicId: string, master: CryptoKey }
}

interface Member {
  peerId: string
  addrs: string[]
  /** its node's start time, from its announcement: who dials (direct.ts) */
  startedAt?: number
  /** last announcement, or direct connection, seen (`performance.now()`): expiry of a member not yet joined */
  lastSeen: number
  joined: boolean
  /** a frame of ours reached its stream since its direct connection opened: a publish reaches it */
  reachable: boolean
  /** our hello (a heartbeat) to it is on its way */
  greeting: boolean
  /** room-side phases of meeting it, `performance.now()` */
  phases: Partial<Record<MeetingPhase, number>>
}

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

type HistoryState = 'idle' | 'fetching' | 'done'

export class RoomImpl extends TypedEventEmitter<RoomEvents> implements Room {
  readonly name: string
  readonly type: SessionType
  /** `discovery`: its gossipsub topic, followed by relays; `room`: its key, the label of its frames */
  readonly topics: { discovery: string, room: string }
  private readonly ctx: RoomContext
  private readonly settings: RoomSettings
  private readonly messages: RoomMessages
  private readonly members = new Map<string, Member>()
  private readonly abort = new AbortController()
  /** ranks as we admit them, and the host they elect (see host.ts) */
  private readonly ranks: HostRules
  /** when each joined member was last heard, on the monotonic clock (presence.ts) */
  private readonly presence: Presence
  private currentHost: string
  private announceTimer?: ReturnType<typeof setInterval>
  private heartbeatTimer?: ReturnType<typeof setInterval>
  private presenceTimer?: ReturnType<typeof setInterval>
  private flushTimer?: ReturnType<typeof setTimeout>
  private replyTimer?: ReturnType<typeof setTimeout>
  private history: HistoryState = 'idle'
  /** aborts a backlog fetch we gave up waiting for */
  private historyFetch?: AbortController
  /** live data that arrived while the backlog was being fetched, delivered after it */
  private readonly heldForHistory: Array<{ delivery: Delivery, pair: boolean }> = []
  private heldForHistoryBytes = 0
  /** `publish` calls waiting until we know whether we are the host */
  private readonly hostWaiters: Array<() => void> = []
  /** our leave frame, sealed ahead of time: a page going away cannot wait for WebCrypto */
  private leaveFrame?: Uint8Array
  /** `performance.now()` when the room was joined: the origin of every member's timeline */
  private readonly startedAt = performance.now()
  private started = false
  private closed = false
  /** Files sent, received and shared in this room (src/files/). */
  readonly files: RoomFileSession
  /** Streams sent and received in this room (src/media/). */
  readonly media: RoomMediaSession

  constructor (name: string, settings: RoomSettings, ctx: RoomContext) {
    super()
    this.name = name
    this.type = settings.type
    this.settings = settings
    this.ctx = ctx
    this.topics = roomTopics(name, settings.type, settings.secret?.topicId)
    this.currentHost = ctx.self
    // our rank is our join time on the wall clock: ranks are compared across machines
    this.ranks = new HostRules({
      self: ctx.self,
      rank: Date.now(),
      settleAfter: RANK_SETTLE_MS,
      settleAlone: Math.max(RANK_SETTLE_ALONE_MS, ctx.options.announceInterval + 2_000),
      decideWithin: Math.max(RANK_DECIDE_WITHIN_MS, ctx.options.announceInterval * 2 + 2_000)
    })
    this.presence = new Presence({ timeout: ctx.options.presenceTimeout })
    this.messages = new RoomMessages({
      topic: this.topics.room,
      maxMessageBytes: settings.maxMessageBytes,
      messagesPerSecond: settings.messagesPerSecond,
      burst: settings.burst,
      historySize: settings.type === 'pairwise' ? 0 : settings.historySize,
      historyRequestsPerMinute: settings.historyRequestsPerMinute,
      master: settings.secret?.master
    })
    this.files = ctx.files.attach(this)
    this.media = ctx.media.attach(this)
  }

  get self (): string {
    return this.ctx.self
  }

  get private (): boolean {
    return this.settings.secret !== undefined
  }

  get host (): string {
    return this.currentHost
  }

  get maxMessageBytes (): number {
    return this.settings.maxMessageBytes
  }

  /** Subscribes to the discovery topic, announces us, and starts the room's timers. Idempotent. */
  start (): void {
    if (this.started || this.closed) return
    this.started = true
    const { links, options } = this.ctx
    links.addEventListener('peer:direct', this.onDirect)
    links.addEventListener('peer:drop', this.onDrop)
    links.addEventListener('peer:unreachable', this.onUnreachable)
    // the relay answers the subscription with the room's current announcements
    this.ctx.pubsub.subscribe(this.topics.discovery)
    this.announce()
    void this.sealLeave()
    const { announceInterval, heartbeatInterval } = options
    this.announceTimer = setInterval(() => { this.tick() }, announceInterval)
    this.heartbeatTimer = setInterval(() => { this.heartbeat() }, heartbeatInterval)
    // often enough that a silent member is gone within presenceTimeout and a sixteenth of it
    this.presenceTimer = setInterval(() => { this.checkPresence() }, this.presence.checkEvery)
  }

  has (peer: string): boolean {
    return this.members.has(peer)
  }

  /** `'direct'` only for joined members: a peer listed as direct is one `publish` reaches. */
  peers (): RoomPeer[] {
    return [...this.members.values()].map((m) => ({ peerId: m.peerId, path: this.pathOf(m) }))
  }

  stats (): RoomStats {
    const { counters } = this.messages
    const peers: Record<string, RoomPeerStats> = {}
    for (const m of this.members.values()) {
      const direct = this.ctx.links.connection(m.peerId)
      peers[m.peerId] = {
        ...this.ctx.links.stats(m.peerId),
        path: this.pathOf(m),
        joined: m.joined,
        rttMs: direct?.rtt,
        timeline: this.timeline(m),
        lastHeardMs: this.presence.sinceHeard(m.peerId),
        media: this.media.stats(m.peerId)
      }
    }
    const { history } = this.messages
    return {
      type: this.type,
      host: this.currentHost,
      messages: { sent: counters.sent, received: counters.received, dropped: { ...counters.dropped }, gaps: counters.gaps },
      history: { served: history.served, refused: { ...history.refused }, writeTimeouts: history.writeTimeouts },
      peers
    }
  }

  async publish (data: Uint8Array | string): Promise<PublishResult> {
    this.assertOpen()
    if (this.type === 'pairwise') throw new SessionTypeError(`room "${this.name}" is pairwise: address messages with send(peerId, data)`)
    // a newcomer does not know yet whether it is the host: wait until it does (host.ts)
    if (this.type === 'one-way' && !this.ranks.decided()) await this.hostDecided()
    if (this.type === 'one-way' && this.currentHost !== this.self) throw new NotHostError(`only the host (${this.currentHost}) publishes in one-way room "${this.name}"`)
    const payload = typeof data === 'string' ? encoder.encode(data) : data
    this.messages.admit(payload)
    const raw = await this.encode(KIND_DATA, this.messages.nextSeq(), payload)
    const recipients = await this.sendToJoined(raw)
    this.messages.sent(this.self, raw, true)
    return { recipients }
  }

  async send (peerId: string, data: Uint8Array | string): Promise<void> {
    this.assertOpen()
    if (this.type !== 'pairwise') throw new SessionTypeError(`room "${this.name}" is ${this.type}: send(peerId, data) is for pairwise rooms, use publish`)
    const m = this.members.get(peerId)
    if (m === undefined || !m.joined) throw new PeerNotFoundError(`${peerId} is not a joined member of room "${this.name}"`)
    const payload = typeof data === 'string' ? encoder.encode(data) : data
    this.messages.admit(payload)
    const raw = await this.encode(KIND_DATA, this.messages.nextSeq(peerId), payload)
    await this.ctx.sendFrame(peerId, encodeLabelled(this.topics.room, raw))
    this.messages.sent(this.self, raw, false)
  }

  async handOffHost (peerId: string): Promise<void> {
    this.assertOpen()
    if (this.currentHost !== this.self) throw new NotHostError(`only the host (${this.currentHost}) can hand off room "${this.name}"`)
    const m = this.members.get(peerId)
    if (m === undefined || !m.joined || !this.ranks.heard(peerId)) throw new PeerNotFoundError(`${peerId} is not a joined member of room "${this.name}"`)
    const rank = this.ranks.handoffRank()
    const raw = await this.encode(KIND_HANDOFF, 0, encodeHandoff(peerId, rank))
    await this.sendToJoined(raw)
    this.ranks.handoff(peerId, rank)
    this.electHost()
  }

  // files (src/files/): the room delegates
  sendFile (peerId: string, file: Blob, options?: SendFileOptions): FileTransfer {
    return this.files.sendFile(peerId, file, options)
  }

  async shareFile (file: Blob, options?: SendFileOptions): Promise<SharedFile> {
    return this.files.shareFile(file, options)
  }

  // --- media (issue 11, src/media/): the room checks the host rule, then delegates ---------------

  async addStream (stream: MediaStream, options?: AddStreamOptions): Promise<void> {
    this.assertOpen()
    // as publish: a newcomer does not know yet whether it is the host (host.ts)
    if (this.type === 'one-way' && !this.ranks.decided()) await this.hostDecided()
    if (this.type === 'one-way' && this.currentHost !== this.self) throw new NotHostError(`only the host (${this.currentHost}) streams in one-way room "${this.name}"`)
    await this.media.addStream(stream, options)
  }

  async removeStream (stream: MediaStream): Promise<void> {
    await this.media.removeStream(stream)
  }

  async replaceTrack (oldTrack: MediaStreamTrack, newTrack: MediaStreamTrack): Promise<void> {
    await this.media.replaceTrack(oldTrack, newTrack)
  }

  // --- end of media ---------------------------------------------------------------------------

  /** A room message from us, with our rank and whether we are settled in its header. */
  private async encode (kind: RoomMessageKind, seq: number, body: Uint8Array): Promise<Uint8Array> {
    return this.messages.encode(this.self, { kind, seq, rank: this.ranks.rank, settled: this.ranks.settled }, body)
  }

  /**
   * The page is going away: tell every member we can reach right now, and the relay, that we
   * left, so they hear `'left'` at once rather than after the presence timeout. Nothing here
   * awaits: a page being hidden may not run another task.
   */
  abandon (): void {
    if (this.closed || !this.ctx.running()) return
    const frame = this.leaveFrame
    if (frame !== undefined) {
      for (const m of this.members.values()) this.ctx.sendFrameNow(m.peerId, frame)
    }
    this.ctx.pubsub.unsubscribe(this.topics.discovery)
  }

  async leave (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.announceTimer)
    clearInterval(this.heartbeatTimer)
    clearInterval(this.presenceTimer)
    clearTimeout(this.flushTimer)
    clearTimeout(this.replyTimer)
    this.heldForHistory.length = 0
    this.abort.abort(new RoomClosedError(`room "${this.name}" was left`))
    this.files.close()
    this.media.close()
    const { links, pubsub } = this.ctx
    links.removeEventListener('peer:direct', this.onDirect)
    links.removeEventListener('peer:drop', this.onDrop)
    links.removeEventListener('peer:unreachable', this.onUnreachable)
    // libp2p may already be stopped underneath us; then there is nobody left to tell
    if (this.ctx.running()) {
      const frame = this.leaveFrame ?? await this.encodeFrame(KIND_LEAVE, 0, EMPTY).catch(() => undefined)
      await Promise.all([...this.members.values()].map(async (m) => {
        if (frame !== undefined && links.isDirect(m.peerId)) await this.ctx.sendFrame(m.peerId, frame).catch(() => {})
      }))
      try {
        // tell peers who only know us through the relay
        await pubsub.publish(this.topics.discovery, encodeAnnouncement({ v: 1, kind: 'leave' }))
      } catch (err) {
        this.ctx.log('could not announce leave of %s - %e', this.name, err)
      }
      pubsub.unsubscribe(this.topics.discovery)
    }
    const former = [...this.members.keys()]
    this.members.clear()
    for (const peer of former) links.release(peer, this)
    this.ctx.onLeft(this)
  }

  private assertOpen (): void {
    if (this.closed) throw new RoomClosedError(`room "${this.name}" was left`)
  }

  // --- events routed here by the node -------------------------------------------------------

  /** A message on one of our pubsub topics: only announcements concern the room. */
  onPubsubMessage (msg: Message): void {
    if (this.closed || msg.type !== 'signed' || msg.topic !== this.topics.discovery) return
    const from = msg.from.toString()
    if (from !== this.self) this.onAnnouncement(from, msg.data)
  }

  onSubscriptionChange (peer: string, topic: string, subscribe: boolean): void {
    if (this.closed || peer === this.self) return
    if (topic === this.topics.discovery && subscribe && !this.members.has(peer)) {
      // the relay started following this room: our first announcement may have reached nobody
      this.announce()
    }
  }

  /** A room frame for this room from `from`, over its direct stream. */
  async onFrame (from: string, raw: Uint8Array): Promise<void> {
    if (this.closed) return
    const pair = this.type === 'pairwise'
    // a frame comes over our direct connection to its sender: the sender has a bucket of its
    // own; data a one-way room takes from nobody but the host is dropped before it costs a
    // token, a sequence number or memory
    const refuseData = this.type === 'one-way' && from !== this.currentHost ? 'notHost' : undefined
    const opened = await this.messages.open(from, raw, { rateKey: from, pair, refuseData })
    if (this.closed) return
    if (typeof opened === 'string') {
      // rate-limited numbers are gaps now: the room hears of them at its next flush
      if (opened === 'rateLimited') this.scheduleFlush()
      return
    }
    // a heartbeat's body: the ranks its sender admitted newcomers at (host.ts)
    const admissions = opened.kind === KIND_HEARTBEAT ? decodeHeartbeat(opened.body) : []
    if (admissions === undefined) {
      this.messages.drop('malformed')
      return
    }
    this.heard(from, opened, admissions)
    switch (opened.kind) {
      case KIND_HEARTBEAT:
        return
      case KIND_HANDOFF:
        this.onHandoff(from, opened)
        return
      case KIND_LEAVE:
        this.remove(from, 'left')
        return
      default:
        this.receiveData({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, pair)
    }
  }

  /**
   * The backlog a member asked us for: the newest of our mailbox, as many as it takes, each
   * message labelled with its sender. A request that does not parse, from a non-member, or over
   * `historyRequestsPerMinute` is refused with an empty backlog and counted.
   */
  backlogFor (from: string, request: Uint8Array): Uint8Array[] {
    const req = decodeHistoryRequest(request)
    let refusal: HistoryRefusal | undefined
    if (req === undefined) refusal = 'malformed'
    // a member we know of: its request came over our direct connection (streams.ts), and it may
    // ask before it has heard us, so before we count it as joined
    else if (this.closed || this.type === 'pairwise' || !this.members.has(from)) refusal = 'notMember'
    else if (!this.messages.admitHistoryRequest(from)) refusal = 'rateLimited'
    if (refusal !== undefined || req === undefined) {
      this.messages.history.refused[refusal ?? 'malformed']++
      this.ctx.log('refused a backlog request from %s in %s (%s)', from, this.name, refusal)
      return []
    }
    this.messages.history.served++
    return this.messages.backlog(req.maxMessages).map(({ from: sender, raw }) => encodeLabelled(sender, raw))
  }

  /** A backlog response we were writing to `from` was aborted: it did not read it in time. */
  historyWriteTimedOut (from: string): void {
    this.messages.history.writeTimeouts++
    this.ctx.log('a backlog response to %s in %s was not read in time', from, this.name)
  }

  /** Our addresses changed (a relay reservation came or went): tell the room now, not in 10 s. */
  announceNow (): void {
    this.announce()
  }

  // --- direct connections (direct.ts) -------------------------------------------------------

  private readonly onDirect = (evt: DirectLinkEvents['peer:direct']): void => {
    const m = this.members.get(evt.detail.peerId)
    if (this.closed || m === undefined) return
    m.lastSeen = performance.now()
    // a first connection is reported by peer:join once it is ready; this is a healed one
    if (m.joined) this.safeDispatchEvent('peer:update', { detail: { peerId: m.peerId, path: 'direct' } })
    if (!m.reachable) this.greet(m)
  }

  private readonly onDrop = (evt: DirectLinkEvents['peer:drop']): void => {
    const m = this.members.get(evt.detail.peerId)
    if (this.closed || m === undefined) return
    m.reachable = false
    this.ctx.log('direct connection to %s in %s dropped, healing', m.peerId, this.name)
    if (m.joined) this.safeDispatchEvent('peer:update', { detail: { peerId: m.peerId, path: 'relayed' } })
  }

  private readonly onUnreachable = (evt: DirectLinkEvents['peer:unreachable']): void => {
    if (this.members.has(evt.detail.peerId)) this.remove(evt.detail.peerId, 'unreachable')
  }

  /**
   * Says hello (a heartbeat, which carries our rank) to a member we are directly connected to.
   * Once it went out, our stream to the member is open and a publish reaches it.
   */
  private greet (m: Member): void {
    if (this.closed || m.greeting || !this.ctx.links.isDirect(m.peerId)) return
    m.greeting = true
    this.encodeFrame(KIND_HEARTBEAT, 0, encodeHeartbeat(this.ranks.admissions()))
      .then(async (frame) => { await this.ctx.sendFrame(m.peerId, frame) })
      .then(() => {
        m.greeting = false
        if (this.members.get(m.peerId) !== m || !this.ctx.links.isDirect(m.peerId)) return
        m.reachable = true
        this.mark(m, 'streamReady')
        this.checkReady(m)
      }, (err) => {
        m.greeting = false
        if (this.closed || this.members.get(m.peerId) !== m) return
        this.ctx.log('hello to %s in %s failed - %e', m.peerId, this.name, err)
        // the connection may be on its way down; if it is still up, try once more shortly
        setTimeout(() => { if (!m.reachable) this.greet(m) }, HELLO_RETRY_MS)
      })
  }

  private pathOf (m: Member): 'direct' | 'relayed' {
    return m.joined && m.reachable && this.ctx.links.isDirect(m.peerId) ? 'direct' : 'relayed'
  }

  // --- receiving ----------------------------------------------------------------------------

  /**
   * A valid message, which came over our direct connection to its sender, proves it present now
   * and carries its rank, which the host rules admit (host.ts).
   */
  private heard (from: string, msg: OpenedMessage, admissions: Admission[] = []): void {
    const m = this.touch(from)
    this.presence.heard(from)
    this.mark(m, 'heard')
    // a reloaded member is a new session: it keeps neither its rank nor the host role. Its old
    // connection, if still open, is closed by the node when its new one opens (direct.ts)
    if (msg.restarted) {
      this.ranks.restart(from)
      this.ctx.log('%s restarted in %s', from, this.name)
    }
    const first = !this.ranks.heard(from)
    // joining, we rank ourselves after the settled members we hear: tell the room now
    if (this.ranks.hear(from, msg.rank, msg.settled, admissions)) this.heartbeat()
    // it counts for the host rule once heard (its frame came over our direct connection to it),
    // whether or not our own hello has reached it yet (that is peer:join's business)
    this.ranks.join(from)
    if (first) this.checkReady(m)
    this.electHost()
    if (!m.reachable) this.greet(m)
  }

  private onHandoff (from: string, msg: OpenedMessage): void {
    const handoff = decodeHandoff(msg.body)
    if (handoff === undefined) {
      this.messages.drop('malformed')
      return
    }
    // only the host hands the role over; anyone else claiming it is ignored
    if (from !== this.currentHost) {
      this.messages.drop('notHost')
      return
    }
    if (!this.ranks.handoff(handoff.to, handoff.rank)) return
    if (handoff.to === this.self) void this.sealLeave()
    this.electHost()
  }

  private receiveData (delivery: Delivery, pair: boolean): void {
    if (this.history !== 'done' && !pair) {
      if (this.history === 'idle') void this.fetchHistory(delivery.from)
      this.heldForHistory.push({ delivery, pair })
      this.heldForHistoryBytes += delivery.raw.byteLength + delivery.data.byteLength
      // a backlog is worth a short wait, not unbounded memory: past the room's bound, live
      // messages go out now and a backlog that comes later is dropped
      if (this.heldForHistory.length > MAX_HELD_PER_ROOM || this.heldForHistoryBytes > MAX_HELD_BYTES_PER_ROOM) this.giveUpOnHistory()
      return
    }
    this.release(this.messages.order(delivery, pair))
  }

  private giveUpOnHistory (): void {
    if (this.history === 'done') return
    this.ctx.log('stopped waiting for a backlog in %s: %d live messages held', this.name, this.heldForHistory.length)
    this.history = 'done'
    this.historyFetch?.abort()
    this.releaseHeldForHistory()
  }

  private releaseHeldForHistory (): void {
    this.heldForHistoryBytes = 0
    for (const { delivery, pair } of this.heldForHistory.splice(0)) this.release(this.messages.order(delivery, pair))
  }

  /**
   * Hands messages to the application in order, and to the mailbox then, so a backlog we serve
   * is in each sender's order too (a pairwise room keeps no mailbox).
   */
  private release (r: Release<Delivery>): void {
    for (const gap of r.gaps) this.safeDispatchEvent('gap', { detail: gap })
    for (const { item } of r.deliver) {
      this.messages.remember(item.from, item.raw)
      this.safeDispatchEvent('message', { detail: { from: item.from, data: item.data, seq: item.seq, history: item.history, topic: this.name } })
    }
    this.scheduleFlush()
  }

  private scheduleFlush (): void {
    if (this.flushTimer !== undefined || this.closed) return
    const wait = this.messages.nextFlushIn()
    if (wait === undefined) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.release(this.messages.flush())
    }, Math.max(0, wait) + 1)
  }

  // --- sending ------------------------------------------------------------------------------

  /** Encodes (and in a private room seals) one of our messages, labelled for this room. */
  private async encodeFrame (kind: RoomMessageKind, seq: number, body: Uint8Array): Promise<Uint8Array> {
    return encodeLabelled(this.topics.room, await this.encode(kind, seq, body))
  }

  /** Sends an encoded message to every joined member; resolves with those it was handed to. */
  private async sendToJoined (raw: Uint8Array): Promise<string[]> {
    const frame = encodeLabelled(this.topics.room, raw)
    const joined = [...this.members.values()].filter((m) => m.joined)
    const sent = await Promise.all(joined.map(async (m) => {
      try {
        await this.ctx.sendFrame(m.peerId, frame)
        return m.peerId
      } catch (err) {
        this.ctx.log('could not send to %s in %s - %e', m.peerId, this.name, err)
        return undefined
      }
    }))
    return sent.filter((p): p is string => p !== undefined)
  }

  private async sealLeave (): Promise<void> {
    try {
      this.leaveFrame = await this.encodeFrame(KIND_LEAVE, 0, EMPTY)
    } catch (err) {
      this.ctx.log('could not prepare the leave frame of %s - %e', this.name, err)
    }
  }

  // --- backlog for late joiners -------------------------------------------------------------

  /**
   * Asks one member (the first we can reach directly) for the room's recent messages and
   * delivers them, deduplicated and in order, before any live message received meanwhile.
   */
  private async fetchHistory (peer: string): Promise<void> {
    if (this.history !== 'idle' || this.type === 'pairwise') return
    const { historySize, maxMessageBytes } = this.settings
    if (historySize <= 0) {
      this.history = 'done'
      this.releaseHeldForHistory()
      return
    }
    this.history = 'fetching'
    this.historyFetch = new AbortController()
    const signal = AbortSignal.any([this.abort.signal, this.historyFetch.signal, AbortSignal.timeout(HISTORY_TIMEOUT_MS)])
    let frames: Uint8Array[] = []
    try {
      // what we take is bounded by our own room's limits, whatever the member serving it holds
      const limits = { maxFrames: historySize, maxFrameBytes: maxMessageBytes + FRAME_OVERHEAD_BYTES }
      frames = await this.ctx.requestHistory(peer, encodeHistoryRequest(this.topics.room, historySize), limits, signal)
    } catch (err) {
      if (this.closed || this.history !== 'fetching') return
      this.ctx.log('no backlog from %s in %s - %e', peer, this.name, err)
    }
    if (this.closed || this.history !== 'fetching') return
    const backlog = await this.messages.openBacklog(this.self, frames)
    if (this.closed || this.history !== 'fetching') return
    this.history = 'done'
    this.release({ deliver: backlog.map((item) => ({ from: item.from, seq: item.seq, item })), gaps: [] })
    // live messages are ordered as if there had been no backlog: only exact copies of a backlog
    // message are dropped, so a forged backlog cannot hold back anything a member sends
    this.releaseHeldForHistory()
    if (backlog.length > 0) this.ctx.log('delivered a backlog of %d messages from %s in %s', backlog.length, peer, this.name)
  }

  // --- host ---------------------------------------------------------------------------------

  /** Resolves once we know whether we are the host (host.ts `decided`): at most `RANK_DECIDE_WITHIN_MS` after joining. */
  private async hostDecided (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(this.abort.signal.reason) }
      this.abort.signal.addEventListener('abort', onAbort, { once: true })
      this.hostWaiters.push(() => {
        this.abort.signal.removeEventListener('abort', onAbort)
        resolve()
      })
    })
    this.assertOpen()
  }

  private electHost (): void {
    if (this.hostWaiters.length > 0 && this.ranks.decided()) for (const resolve of this.hostWaiters.splice(0)) resolve()
    const host = this.ranks.host()
    if (host === this.currentHost) return
    const previous = this.currentHost
    this.currentHost = host
    this.ctx.log('host of %s is now %s (was %s)', this.name, host, previous)
    this.safeDispatchEvent('host:change', { detail: { host, previous } })
    // our rank changed with a handoff: say so now rather than at the next heartbeat
    if (host === this.self || previous === this.self) this.heartbeat()
  }

  // --- presence -----------------------------------------------------------------------------

  /** A heartbeat to every member we are directly connected to: presence, and our rank. */
  private heartbeat (): void {
    if (this.closed) return
    const direct = [...this.members.values()].filter((m) => this.ctx.links.isDirect(m.peerId))
    if (direct.length === 0) return
    this.encodeFrame(KIND_HEARTBEAT, 0, encodeHeartbeat(this.ranks.admissions()))
      .then(async (frame) => {
        await Promise.all(direct.map(async (m) => {
          await this.ctx.sendFrame(m.peerId, frame).catch((err) => { this.ctx.log('heartbeat to %s in %s failed - %e', m.peerId, this.name, err) })
        }))
      })
      .catch((err) => { this.ctx.log('heartbeat in %s failed - %e', this.name, err) })
  }

  private checkPresence (): void {
    if (this.closed) return
    for (const peer of this.presence.silent()) {
      if (this.members.get(peer)?.joined === true) this.remove(peer, 'timeout')
    }
    // a newcomer settles with time too (host.ts): the host may change without a message
    this.electHost()
  }

  // --- membership ---------------------------------------------------------------------------

  private onAnnouncement (from: string, data: Uint8Array): void {
    const a = decodeAnnouncement(data, from)
    if (a === undefined) {
      this.ctx.log('dropping malformed announcement from %s', from)
      return
    }
    if (a.kind === 'leave') {
      this.remove(from, 'left')
      return
    }
    const isNew = !this.members.has(from)
    const m = this.touch(from)
    m.addrs = a.addrs
    if (a.t !== undefined) m.startedAt = a.t
    if (isNew) this.scheduleReply()
    this.want(m)
  }

  /** Asks the node for a direct connection to `m`, and greets it if there is one already. */
  private want (m: Member): void {
    this.ctx.links.want(m.peerId, this, { addrs: m.addrs, startedAt: m.startedAt })
    if (!m.reachable) this.greet(m)
  }

  private touch (peer: string): Member {
    let m = this.members.get(peer)
    if (m === undefined) {
      m = { peerId: peer, addrs: [], lastSeen: performance.now(), joined: false, reachable: false, greeting: false, phases: {} }
      this.members.set(peer, m)
      this.ranks.discover(peer)
      this.mark(m, 'discovered')
      this.ctx.log('discovered %s in %s', peer, this.name)
      this.safeDispatchEvent('peer:discover', { detail: { peerId: peer, path: 'relayed' } })
      // a member may reach us first (its frame over a connection another room opened): hold it
      this.ctx.links.want(peer, this, { addrs: [] })
      // joining, an unheard member may rank first: we are not the host until we hear it
      this.electHost()
    }
    m.lastSeen = performance.now()
    return m
  }

  /** `peer:join` once it is directly connected, our stream to it is open, and we heard from it. */
  private checkReady (m: Member): void {
    if (m.joined || !m.reachable || !this.ctx.links.isDirect(m.peerId)) return
    // a member is one we heard from: its rank counts for the host, and in a private room its
    // message proved it holds the secret
    if (!this.ranks.heard(m.peerId)) return
    m.joined = true
    this.ranks.join(m.peerId)
    this.presence.start(m.peerId)
    this.mark(m, 'joined')
    this.ctx.log('%s joined %s', m.peerId, this.name)
    this.safeDispatchEvent('peer:join', { detail: { peerId: m.peerId, path: 'direct' } })
    this.electHost()
    if (this.history === 'idle' && this.type !== 'pairwise') void this.fetchHistory(m.peerId)
  }

  private remove (peer: string, reason: LeaveReason): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    this.members.delete(peer)
    this.messages.forget(peer)
    this.ranks.remove(peer)
    this.presence.forget(peer)
    this.ctx.log('%s left %s (%s)', peer, this.name, reason)
    this.safeDispatchEvent('peer:leave', { detail: { peerId: peer, reason } })
    this.electHost()
    // the node closes the connection once no room wants the peer: a WebRTC peer that hung up is
    // noticed only when ICE consent fails, tens of seconds later, and until then its dead
    // connection would pass for a direct path
    this.ctx.links.release(peer, this)
  }

  private tick (): void {
    this.announce()
    const now = performance.now()
    for (const m of [...this.members.values()]) {
      if (this.ctx.links.isDirect(m.peerId)) {
        m.lastSeen = now
      } else if (now - m.lastSeen > this.ctx.options.peerTtl) {
        this.remove(m.peerId, 'timeout')
      } else {
        // retries a dial that gave up
        this.want(m)
      }
    }
  }

  // --- announcements ------------------------------------------------------------------------

  private announce (): void {
    const addrs = this.ctx.ownAddrs()
    if (this.closed || addrs.length === 0) return
    this.ctx.pubsub.publish(this.topics.discovery, encodeAnnouncement({ v: 1, kind: 'announce', addrs, t: this.ctx.startedAt }))
      .catch((err) => { this.ctx.log('announce in %s failed - %e', this.name, err) })
  }

  /**
   * A newcomer announced: answer once, soon. The relay hands a newcomer the announcements it
   * holds, so this only matters when it holds none of ours (e.g. a room spanning relays).
   */
  private scheduleReply (): void {
    if (this.replyTimer !== undefined) return
    this.replyTimer = setTimeout(() => {
      this.replyTimer = undefined
      this.announce()
    }, REPLY_DELAY_MIN_MS + Math.random() * REPLY_DELAY_SPREAD_MS)
  }

  // --- meeting timeline ---------------------------------------------------------------------

  /** Records when `m` first reached a room-side `phase` of meeting. */
  private mark (m: Member, phase: MeetingPhase): void {
    if (m.phases[phase] !== undefined) return
    m.phases[phase] = performance.now()
    this.ctx.log('meeting %s in %s: %s at %d ms', m.peerId, this.name, phase, Math.round(m.phases[phase] - this.startedAt))
  }

  /** Every phase of meeting `m`, the node's and the room's, in ms since we joined (0 if before). */
  private timeline (m: Member): MeetingTimeline {
    const out: MeetingTimeline = {}
    for (const [phase, at] of Object.entries({ ...this.ctx.links.phases(m.peerId), ...m.phases })) {
      out[phase as MeetingPhase] = Math.max(0, Math.round(at - this.startedAt))
    }
    return out
  }
}
