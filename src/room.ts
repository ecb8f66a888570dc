/**
 * A room: the assembly of its parts, and its public API (`Room` in index.ts). Each part has one
 * job and takes only what it uses (src/room/):
 *
 * - `Announcer` (announcer.ts): the discovery topic on the relay, our announcements and theirs;
 * - `Membership` (members.ts): who is in the room, greeting, `peer:join`, expiry, leaving;
 * - `PresenceMonitor` (presence-monitor.ts): heartbeats out, silent members dropped;
 * - `HostRole` (host-role.ts): ranks, the host they elect, handoffs (the rule is host.ts);
 * - session-rules.ts: what each session type lets a member send, and what a receiver refuses;
 * - `Backlog` (backlog.ts): a late joiner's backlog before live messages, and serving ours;
 * - `Delivery` (delivery.ts): messages to the application in each sender's order.
 *
 * What each message must satisfy (size, rate, order, seal) is room-messages.ts. Direct
 * connections belong to the node (direct.ts): a room says which peers it wants and hears when
 * they become direct or drop. Room frames travel over the node's `ROOM_PROTOCOL` streams,
 * straight from sender to each member. Extensions attach here: the room's files (src/files/)
 * through `RoomContext.files`, its media (src/media/) through `RoomContext.media`.
 */
import { TypedEventEmitter } from 'main-event'
import { NotHostError, PeerNotFoundError, RoomClosedError } from './errors.js'
import { RoomMessages } from './room-messages.js'
import { Announcer } from './room/announcer.js'
import { Backlog } from './room/backlog.js'
import { Delivery } from './room/delivery.js'
import { HostRole } from './room/host-role.js'
import { Membership } from './room/members.js'
import { PresenceMonitor } from './room/presence-monitor.js'
import {
  assertMayHandOff, assertMayPublish, assertPublishes, assertSends, historySizeOf, isPairwise, refuseData, waitsForHost
} from './room/session-rules.js'
import {
  KIND_DATA, KIND_HANDOFF, KIND_HEARTBEAT, KIND_LEAVE, decodeHandoff, decodeHeartbeat, encodeHandoff, encodeHeartbeat, encodeLabelled, roomTopics
} from './wire.js'
import type { DirectLinks } from './direct.js'
// files (issue 10): the room's file session, see src/files/
import type { FileService } from './files/service.js'
import type { RoomFileSession } from './files/room-files.js'
import type { FileTransfer, SendFileOptions, SharedFile } from './files/types.js'
// media (issue 11): the room's media session, see src/media/
import type { MediaService } from './media/service.js'
import type { RoomMediaSession } from './media/room-media.js'
import type { AddStreamOptions } from './media/types.js'
import type { ResolvedRoomNodeOptions, RoomEvents, Room, RoomPeer, RoomPeerStats, PublishResult, SessionType, RoomStats } from './index.js'
import type { OpenedMessage } from './room-messages.js'
import type { Admission, RoomMessageKind } from './wire.js'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Logger, Startable } from '@libp2p/interface'

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

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

export class RoomImpl extends TypedEventEmitter<RoomEvents> implements Room, Startable {
  readonly name: string
  readonly type: SessionType
  /** `discovery`: its gossipsub topic, followed by relays; `room`: its key, the label of its frames */
  readonly topics: { discovery: string, room: string }
  /** Files sent, received and shared in this room (src/files/). */
  readonly files: RoomFileSession
  /** Streams sent and received in this room (src/media/). */
  readonly media: RoomMediaSession
  private readonly ctx: RoomContext
  private readonly settings: RoomSettings
  private readonly messages: RoomMessages
  private readonly announcer: Announcer
  private readonly members: Membership
  private readonly presence: PresenceMonitor
  private readonly hostRole: HostRole
  private readonly backlog: Backlog
  private readonly delivery: Delivery
  private readonly abort = new AbortController()
  /** our leave frame, sealed ahead of time: a page going away cannot wait for WebCrypto */
  private leaveFrame?: Uint8Array
  private started = false
  private closed = false

  constructor (name: string, settings: RoomSettings, ctx: RoomContext) {
    super()
    this.name = name
    this.type = settings.type
    this.settings = settings
    this.ctx = ctx
    this.topics = roomTopics(name, settings.type, settings.secret?.topicId)
    const { self, log, options, links } = ctx
    this.messages = new RoomMessages({
      topic: this.topics.room,
      maxMessageBytes: settings.maxMessageBytes,
      messagesPerSecond: settings.messagesPerSecond,
      burst: settings.burst,
      historySize: historySizeOf(settings.type, settings.historySize),
      historyRequestsPerMinute: settings.historyRequestsPerMinute,
      master: settings.secret?.master
    })
    this.hostRole = new HostRole({
      self,
      room: name,
      log,
      announceInterval: options.announceInterval,
      signal: this.abort.signal,
      onChange: (host, previous) => { this.safeDispatchEvent('host:change', { detail: { host, previous } }) },
      rankChanged: () => { this.heartbeat() }
    })
    this.announcer = new Announcer({
      self,
      room: name,
      topic: this.topics.discovery,
      log,
      pubsub: ctx.pubsub,
      interval: options.announceInterval,
      startedAt: ctx.startedAt,
      ownAddrs: ctx.ownAddrs,
      isMember: (peer) => this.members.has(peer),
      onAnnounce: (peer, addrs, startedAt) => { this.members.announced(peer, addrs, startedAt) },
      onLeave: (peer) => { this.members.remove(peer, 'left') }
    })
    this.members = new Membership({
      room: name,
      log,
      links,
      holder: this,
      peerTtl: options.peerTtl,
      checkEvery: options.announceInterval,
      hello: async () => this.encodeFrame(KIND_HEARTBEAT, 0, encodeHeartbeat(this.ranks.admissions())),
      sendFrame: ctx.sendFrame,
      heard: (peer) => this.hostRole.heard(peer),
      onDiscover: (peer) => {
        this.hostRole.discover(peer)
        this.safeDispatchEvent('peer:discover', { detail: { peerId: peer, path: 'relayed' } })
        // joining, an unheard member may rank first: we are not the host until we hear it
        this.hostRole.elect()
      },
      onJoin: (peer) => {
        this.hostRole.join(peer)
        this.presence.joined(peer)
        this.safeDispatchEvent('peer:join', { detail: { peerId: peer, path: 'direct' } })
        this.hostRole.elect()
        this.backlog.memberJoined(peer)
      },
      onLeave: (peer, reason) => {
        this.messages.forget(peer)
        this.hostRole.remove(peer)
        this.presence.forget(peer)
        this.safeDispatchEvent('peer:leave', { detail: { peerId: peer, reason } })
        this.hostRole.elect()
      },
      onUpdate: (peer, path) => { this.safeDispatchEvent('peer:update', { detail: { peerId: peer, path } }) }
    })
    this.presence = new PresenceMonitor({
      timeout: options.presenceTimeout,
      heartbeatInterval: options.heartbeatInterval,
      heartbeat: () => { this.heartbeat() },
      onSilent: (peer) => { if (!this.closed && this.members.joined(peer)) this.members.remove(peer, 'timeout') },
      afterCheck: () => { if (!this.closed) this.hostRole.elect() }
    })
    this.delivery = new Delivery({
      room: name,
      messages: this.messages,
      onMessage: (detail) => { this.safeDispatchEvent('message', { detail }) },
      onGap: (detail) => { this.safeDispatchEvent('gap', { detail }) }
    })
    this.backlog = new Backlog({
      self,
      room: name,
      topic: this.topics.room,
      type: settings.type,
      historySize: settings.historySize,
      maxMessageBytes: settings.maxMessageBytes,
      log,
      messages: this.messages,
      requestHistory: ctx.requestHistory,
      deliver: (r) => { this.delivery.release(r) },
      isMember: (peer) => this.members.has(peer)
    })
    // extensions attach last, to a room that is whole
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
    return this.hostRole.host
  }

  get maxMessageBytes (): number {
    return this.settings.maxMessageBytes
  }

  /** Ranks as we admit them (host.ts): the test harness forges with our own. */
  private get ranks (): HostRole['ranks'] {
    return this.hostRole.ranks
  }

  /**
   * Subscribes to the discovery topic, announces us, and starts the room's parts. Idempotent; a
   * room that was left does not start again (the node joins a new one).
   */
  start (): void {
    if (this.started || this.closed) return
    this.started = true
    this.announcer.start()
    this.members.start()
    void this.sealLeave()
    this.presence.start()
    this.delivery.start()
    this.backlog.start()
  }

  /** `Startable`: the same as `leave()`. Idempotent. */
  async stop (): Promise<void> {
    await this.leave()
  }

  has (peer: string): boolean {
    return this.members.has(peer)
  }

  /** `'direct'` only for joined members: a peer listed as direct is one `publish` reaches. */
  peers (): RoomPeer[] {
    return this.members.peers()
  }

  stats (): RoomStats {
    const { counters, history } = this.messages
    const peers: Record<string, RoomPeerStats> = {}
    for (const m of this.members.values()) {
      const direct = this.ctx.links.connection(m.peerId)
      peers[m.peerId] = {
        ...this.ctx.links.stats(m.peerId),
        path: this.members.pathOf(m),
        joined: m.joined,
        rttMs: direct?.rtt,
        timeline: this.members.timeline(m),
        lastHeardMs: this.presence.sinceHeard(m.peerId),
        media: this.media.stats(m.peerId)
      }
    }
    return {
      type: this.type,
      host: this.host,
      messages: { sent: counters.sent, received: counters.received, dropped: { ...counters.dropped }, gaps: counters.gaps },
      history: { served: history.served, refused: { ...history.refused }, writeTimeouts: history.writeTimeouts },
      peers
    }
  }

  async publish (data: Uint8Array | string): Promise<PublishResult> {
    this.assertOpen()
    assertPublishes(this.type, this.name)
    // a newcomer does not know yet whether it is the host: wait until it does (host.ts)
    if (waitsForHost(this.type) && !this.hostRole.decided()) {
      await this.hostRole.whenDecided()
      this.assertOpen()
    }
    assertMayPublish(this.type, this.self, this.host, this.name)
    const payload = typeof data === 'string' ? encoder.encode(data) : data
    this.messages.admit(payload)
    const raw = await this.encode(KIND_DATA, this.messages.nextSeq(), payload)
    const recipients = await this.sendToJoined(raw)
    this.messages.sent(this.self, raw, true)
    return { recipients }
  }

  async send (peerId: string, data: Uint8Array | string): Promise<void> {
    this.assertOpen()
    assertSends(this.type, this.name)
    if (!this.members.joined(peerId)) throw new PeerNotFoundError(`${peerId} is not a joined member of room "${this.name}"`)
    const payload = typeof data === 'string' ? encoder.encode(data) : data
    this.messages.admit(payload)
    const raw = await this.encode(KIND_DATA, this.messages.nextSeq(peerId), payload)
    await this.ctx.sendFrame(peerId, encodeLabelled(this.topics.room, raw))
    this.messages.sent(this.self, raw, false)
  }

  async handOffHost (peerId: string): Promise<void> {
    this.assertOpen()
    assertMayHandOff(this.self, this.host, this.name)
    if (!this.members.joined(peerId) || !this.hostRole.heard(peerId)) throw new PeerNotFoundError(`${peerId} is not a joined member of room "${this.name}"`)
    const rank = this.hostRole.handoffRank()
    const raw = await this.encode(KIND_HANDOFF, 0, encodeHandoff(peerId, rank))
    await this.sendToJoined(raw)
    this.hostRole.handOff(peerId, rank)
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
    if (waitsForHost(this.type) && !this.hostRole.decided()) {
      await this.hostRole.whenDecided()
      this.assertOpen()
    }
    if (this.type === 'one-way' && this.host !== this.self) throw new NotHostError(`only the host (${this.host}) streams in one-way room "${this.name}"`)
    await this.media.addStream(stream, options)
  }

  async removeStream (stream: MediaStream): Promise<void> {
    await this.media.removeStream(stream)
  }

  async replaceTrack (oldTrack: MediaStreamTrack, newTrack: MediaStreamTrack): Promise<void> {
    await this.media.replaceTrack(oldTrack, newTrack)
  }

  // --- end of media ---------------------------------------------------------------------------

  /**
   * The page is going away: tell every member we can reach right now, and the relay, that we
   * left, so they hear `'left'` at once rather than after the presence timeout. Nothing here
   * awaits: a page being hidden may not run another task.
   */
  abandon (): void {
    if (this.closed || !this.ctx.running()) return
    const frame = this.leaveFrame
    if (frame !== undefined) {
      for (const peer of this.members.keys()) this.ctx.sendFrameNow(peer, frame)
    }
    this.announcer.unsubscribe()
  }

  async leave (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.announcer.stop()
    this.members.stop()
    this.presence.stop()
    this.delivery.stop()
    this.backlog.stop()
    this.abort.abort(new RoomClosedError(`room "${this.name}" was left`))
    this.files.close()
    this.media.close()
    // libp2p may already be stopped underneath us; then there is nobody left to tell
    if (this.ctx.running()) {
      const frame = this.leaveFrame ?? await this.encodeFrame(KIND_LEAVE, 0, EMPTY).catch(() => undefined)
      await Promise.all([...this.members.keys()].map(async (peer) => {
        if (frame !== undefined && this.ctx.links.isDirect(peer)) await this.ctx.sendFrame(peer, frame).catch(() => {})
      }))
      await this.announcer.announceLeave()
      this.announcer.unsubscribe()
    }
    this.members.releaseAll()
    this.ctx.onLeft(this)
  }

  private assertOpen (): void {
    if (this.closed) throw new RoomClosedError(`room "${this.name}" was left`)
  }

  // --- routed here by the node --------------------------------------------------------------

  /** A message on one of our pubsub topics: only announcements concern the room. */
  onPubsubMessage (msg: Message): void {
    if (!this.closed) this.announcer.onMessage(msg)
  }

  onSubscriptionChange (peer: string, topic: string, subscribe: boolean): void {
    if (!this.closed) this.announcer.onSubscriptionChange(peer, topic, subscribe)
  }

  /** Our addresses changed (a relay reservation came or went): tell the room now, not in 10 s. */
  announceNow (): void {
    this.announcer.announce()
  }

  /** The backlog a member asked us for (backlog.ts). */
  backlogFor (from: string, request: Uint8Array): Uint8Array[] {
    return this.backlog.serve(from, request)
  }

  /** A backlog response we were writing to `from` was aborted: it did not read it in time. */
  historyWriteTimedOut (from: string): void {
    this.backlog.writeTimedOut(from)
  }

  /** A room frame for this room from `from`, over its direct stream. */
  async onFrame (from: string, raw: Uint8Array): Promise<void> {
    if (this.closed) return
    const pair = isPairwise(this.type)
    // a frame comes over our direct connection to its sender: the sender has a bucket of its
    // own; data a one-way room takes from nobody but the host is dropped before it costs a
    // token, a sequence number or memory
    const opened = await this.messages.open(from, raw, { rateKey: from, pair, refuseData: refuseData(this.type, from, this.host) })
    if (this.closed) return
    if (typeof opened === 'string') {
      // rate-limited numbers are gaps now: the room hears of them at its next flush
      if (opened === 'rateLimited') this.delivery.scheduleFlush()
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
        this.members.remove(from, 'left')
        return
      default:
        this.backlog.receive({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, pair)
    }
  }

  /**
   * A valid message, which came over our direct connection to its sender, proves it present now
   * and carries its rank, which the host rules admit (host.ts).
   */
  private heard (from: string, msg: OpenedMessage, admissions: Admission[]): void {
    this.members.touch(from)
    this.presence.heard(from)
    this.members.markPhase(from, 'heard')
    // before it may join: a member whose hello says it holds no backlog is not asked for one
    this.backlog.heard(from, msg.noBacklog)
    // a reloaded member is a new session: it keeps neither its rank nor the host role. Its old
    // connection, if still open, is closed by the node when its new one opens (direct.ts)
    const first = this.hostRole.hear(from, msg, admissions)
    if (first) this.members.maybeJoin(from)
    this.hostRole.elect()
    this.members.greetIfUnreached(from)
  }

  private onHandoff (from: string, msg: OpenedMessage): void {
    const handoff = decodeHandoff(msg.body)
    if (handoff === undefined) {
      this.messages.drop('malformed')
      return
    }
    const taken = this.hostRole.receiveHandoff(from, handoff)
    // only the host hands the role over; anyone else claiming it is ignored
    if (taken === 'notHost') this.messages.drop('notHost')
    // our sealed leave frame carries our rank in its header: seal it again with the new one
    else if (taken && handoff.to === this.self) void this.sealLeave()
  }

  // --- sending ------------------------------------------------------------------------------

  /** A room message from us, with our rank and whether we are settled in its header. */
  private async encode (kind: RoomMessageKind, seq: number, body: Uint8Array): Promise<Uint8Array> {
    return this.messages.encode(this.self, { kind, seq, rank: this.ranks.rank, settled: this.ranks.settled }, body)
  }

  /** Encodes (and in a private room seals) one of our messages, labelled for this room. */
  private async encodeFrame (kind: RoomMessageKind, seq: number, body: Uint8Array): Promise<Uint8Array> {
    return encodeLabelled(this.topics.room, await this.encode(kind, seq, body))
  }

  /** Sends an encoded message to every joined member; resolves with those it was handed to. */
  private async sendToJoined (raw: Uint8Array): Promise<string[]> {
    const frame = encodeLabelled(this.topics.room, raw)
    const sent = await Promise.all(this.members.joinedMembers().map(async ({ peerId }) => {
      try {
        await this.ctx.sendFrame(peerId, frame)
        return peerId
      } catch (err) {
        this.ctx.log('could not send to %s in %s - %e', peerId, this.name, err)
        return undefined
      }
    }))
    return sent.filter((p): p is string => p !== undefined)
  }

  /** A heartbeat to every member we are directly connected to: presence, and our rank. */
  private heartbeat (): void {
    if (this.closed) return
    const direct = this.members.directMembers()
    if (direct.length === 0) return
    this.encodeFrame(KIND_HEARTBEAT, 0, encodeHeartbeat(this.ranks.admissions()))
      .then(async (frame) => {
        await Promise.all(direct.map(async ({ peerId }) => {
          await this.ctx.sendFrame(peerId, frame).catch((err) => { this.ctx.log('heartbeat to %s in %s failed - %e', peerId, this.name, err) })
        }))
      })
      .catch((err) => { this.ctx.log('heartbeat in %s failed - %e', this.name, err) })
  }

  private async sealLeave (): Promise<void> {
    try {
      this.leaveFrame = await this.encodeFrame(KIND_LEAVE, 0, EMPTY)
    } catch (err) {
      this.ctx.log('could not prepare the leave frame of %s - %e', this.name, err)
    }
  }
}
