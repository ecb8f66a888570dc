/**
 * Room semantics: membership learned through the relay, a direct WebRTC connection to every
 * member, readiness before `peer:join`, healing of dropped connections, presence (heartbeats
 * and expiry), the host rule, the session type's rules, and the backlog for late joiners.
 * What each message must satisfy lives in room-messages.ts.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { TypedEventEmitter } from 'main-event'
import { FRAME_OVERHEAD_BYTES, HISTORY_TIMEOUT_MS, MAX_HELD_BYTES_PER_ROOM, MAX_HELD_PER_ROOM, RANK_DECIDE_WITHIN_MS, RANK_SETTLE_ALONE_MS, RANK_SETTLE_MS } from './constants.js'
import { dialWithRetry, isPeerGoneError } from './dialer.js'
import { NotHostError, PeerNotFoundError, RoomClosedError, SessionTypeError } from './errors.js'
import { canPublishTo } from './gossip-readiness.js'
import { HostRules } from './host.js'
import { isDirect, isRelayed, pathOf } from './paths.js'
import { Presence } from './presence.js'
import { RoomMessages } from './room-messages.js'
import {
  KIND_DATA, KIND_HANDOFF, KIND_HEARTBEAT, decodeAnnouncement, decodeHandoff, decodeHeartbeat, decodeHistoryRequest, encodeAnnouncement,
  encodeHandoff, encodeHeartbeat, encodeHistoryRequest, encodeLabelled, roomTopics
} from './wire.js'
import type { Admission, RoomMessageKind } from './wire.js'
import type { ResolvedRoomNodeOptions, RoomEvents, Room, RoomPeer, RoomPeerStats, LeaveReason, PublishResult, SessionType, RoomStats } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Delivery, HistoryRefusal, OpenedMessage } from './room-messages.js'
import type { Release } from './sequence.js'
import type { Message } from '@libp2p/gossipsub'
import type { Connection, Logger, PeerId } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

export interface RoomContext {
  libp2p: Libp2p<RoomNodeServices>
  options: ResolvedRoomNodeOptions
  log: Logger
  /** Our own `/p2p-circuit/webrtc` multiaddrs, one per relay reservation. */
  ownAddrs: () => string[]
  /** Called once the room is left. */
  onLeft: (room: RoomImpl) => void
  /** Peers that left this room: the node hangs up on those it shares no other room with. */
  onPeerGone: (peers: string[]) => Promise<void>
  /**
   * `peer` restarted (a new session under the same peer ID: a reload): the node hangs up on it,
   * so both sides reconnect with fresh streams. gossipsub 17.1.1 keeps sending to a peer over
   * its first outbound stream, which for a crashed tab runs over a dead connection until ICE
   * gives up on it, tens of seconds later (`createOutboundStream`: "If an outbound stream
   * already exists, don't create a new stream").
   */
  onPeerRestarted: (peer: string) => Promise<void>
  /** Sends a pairwise frame to `peer` over its direct connection. */
  sendFrame: (peer: string, frame: Uint8Array) => Promise<void>
  /**
   * Asks `peer` for this room's backlog over a direct connection, taking at most `maxFrames`
   * frames of at most `maxFrameBytes` each.
   */
  requestHistory: (peer: string, request: Uint8Array, limits: { maxFrames: number, maxFrameBytes: number }, signal: AbortSignal) => Promise<Uint8Array[]>
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
  /** last announcement, or direct connection, seen (monotonic ms): expiry of a member not yet joined */
  lastSeen: number
  joined: boolean
  /** we sent a heartbeat since it became reachable */
  greeted: boolean
  dialing?: AbortController
  takeover?: ReturnType<typeof setTimeout>
  stats: Pick<RoomPeerStats, 'dialAttempts' | 'dialSuccesses' | 'dialFailures' | 'lastError'>
}

const encoder = new TextEncoder()

type HistoryState = 'idle' | 'fetching' | 'done'

/** Rate-limit key shared by every sender whose messages reach us only through other members. */
const FORWARDED = '\0forwarded'

/** A monotonic clock in ms: expiry and presence must not follow the wall clock's jumps. */
const monotonicNow = (): number => globalThis.performance.now()

export class RoomImpl extends TypedEventEmitter<RoomEvents> implements Room {
  readonly name: string
  readonly type: SessionType
  readonly topics: { discovery: string, room: string }
  private readonly ctx: RoomContext
  private readonly settings: RoomSettings
  private readonly messages: RoomMessages
  private readonly members = new Map<string, Member>()
  private readonly abort = new AbortController()
  /** ranks as we admit them, and the host they elect (see host.ts) */
  private readonly ranks: HostRules
  private readonly presence: Presence
  private readonly now = monotonicNow
  private currentHost: string
  private announceTimer?: ReturnType<typeof setInterval>
  private heartbeatTimer?: ReturnType<typeof setInterval>
  private presenceTimer?: ReturnType<typeof setInterval>
  private flushTimer?: ReturnType<typeof setTimeout>
  private replyTimer?: ReturnType<typeof setTimeout>
  private greetTimer?: ReturnType<typeof setTimeout>
  private history: HistoryState = 'idle'
  /** aborts a backlog fetch we gave up waiting for */
  private historyFetch?: AbortController
  /** live data that arrived while the backlog was being fetched, delivered after it */
  private readonly heldForHistory: Array<{ delivery: Delivery, pair: boolean }> = []
  private heldForHistoryBytes = 0
  /** `publish` calls waiting until we know whether we are the host */
  private readonly hostWaiters: Array<() => void> = []
  private closed = false

  constructor (name: string, settings: RoomSettings, ctx: RoomContext) {
    super()
    this.name = name
    this.type = settings.type
    this.settings = settings
    this.ctx = ctx
    this.topics = roomTopics(name, settings.type, settings.secret?.topicId)
    this.currentHost = this.self
    // our rank is our join time on the wall clock: ranks are compared across machines
    this.ranks = new HostRules({
      self: this.self,
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
  }

  get self (): string {
    return this.ctx.libp2p.peerId.toString()
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

  start (): void {
    const { pubsub } = this.ctx.libp2p.services
    // every receiver enforces the room's rules before gossipsub delivers or forwards a message
    pubsub.topicValidators.set(this.topics.room, async (peer, msg) => this.validate(peer, msg))
    pubsub.subscribe(this.topics.room)
    pubsub.subscribe(this.topics.discovery)
    this.announce()
    const { announceInterval, heartbeatInterval } = this.ctx.options
    this.announceTimer = setInterval(() => { this.tick() }, announceInterval)
    this.heartbeatTimer = setInterval(() => { this.heartbeat() }, heartbeatInterval)
    // often enough that a silent member is gone within presenceTimeout and a sixteenth of it
    this.presenceTimer = setInterval(() => { this.checkPresence() }, this.presence.checkEvery)
  }

  has (peer: string): boolean {
    return this.members.has(peer)
  }

  peers (): RoomPeer[] {
    return [...this.members.values()].map((m) => ({ peerId: m.peerId, path: this.pathTo(m.peerId) }))
  }

  stats (): RoomStats {
    const { counters } = this.messages
    const peers: Record<string, RoomPeerStats> = {}
    for (const m of this.members.values()) {
      const direct = this.ctx.libp2p.getConnections(peerIdFromString(m.peerId)).find(isDirect)
      peers[m.peerId] = {
        ...m.stats,
        path: direct !== undefined ? 'direct' : 'relayed',
        joined: m.joined,
        rttMs: direct?.rtt,
        lastHeardMs: this.presence.sinceHeard(m.peerId)
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
    const result = await this.ctx.libp2p.services.pubsub.publish(this.topics.room, raw)
    this.messages.sent(this.self, raw, true)
    return { recipients: result.recipients.map((p) => p.toString()) }
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
    await this.ctx.libp2p.services.pubsub.publish(this.topics.room, raw)
    this.ranks.handoff(peerId, rank)
    this.electHost()
  }

  /** A room message from us, with our rank and whether we are settled in its header. */
  private async encode (kind: RoomMessageKind, seq: number, body: Uint8Array): Promise<Uint8Array> {
    return this.messages.encode(this.self, { kind, seq, rank: this.ranks.rank, settled: this.ranks.settled }, body)
  }

  /**
   * The page is going away: unsubscribe from both topics at once, so the direct peers hear
   * `'left'` in the same moment rather than waiting out the presence timeout. gossipsub queues
   * the subscription change on every open stream synchronously; nothing here awaits, because
   * a page being hidden may not run another task.
   */
  abandon (): void {
    if (this.closed || this.ctx.libp2p.status !== 'started') return
    const { pubsub } = this.ctx.libp2p.services
    pubsub.unsubscribe(this.topics.room)
    pubsub.unsubscribe(this.topics.discovery)
  }

  async leave (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.announceTimer)
    clearInterval(this.heartbeatTimer)
    clearInterval(this.presenceTimer)
    clearTimeout(this.flushTimer)
    clearTimeout(this.replyTimer)
    clearTimeout(this.greetTimer)
    this.heldForHistory.length = 0
    this.abort.abort(new RoomClosedError(`room "${this.name}" was left`))
    const { libp2p } = this.ctx
    const { pubsub } = libp2p.services
    // libp2p may already be stopped underneath us; then there is nobody left to tell
    if (libp2p.status === 'started') {
      try {
        // tell peers who only know us through the relay; direct peers see the unsubscribe too
        await pubsub.publish(this.topics.discovery, encodeAnnouncement({ v: 1, kind: 'leave' }))
      } catch (err) {
        this.ctx.log('could not announce leave of %s - %e', this.name, err)
      }
      pubsub.unsubscribe(this.topics.room)
      pubsub.unsubscribe(this.topics.discovery)
      pubsub.topicValidators.delete(this.topics.room)
    }
    for (const m of this.members.values()) this.forget(m)
    const former = [...this.members.keys()]
    this.members.clear()
    this.ctx.onLeft(this)
    await this.ctx.onPeerGone(former)
  }

  private assertOpen (): void {
    if (this.closed) throw new RoomClosedError(`room "${this.name}" was left`)
  }

  // --- events routed here by the node -------------------------------------------------------

  onPubsubMessage (msg: Message): void {
    // room-topic messages were handled when validated; only announcements arrive here
    if (this.closed || msg.type !== 'signed' || msg.topic !== this.topics.discovery) return
    const from = msg.from.toString()
    if (from !== this.self) this.onAnnouncement(from, msg.data)
  }

  onSubscriptionChange (peer: string, topic: string, subscribe: boolean): void {
    if (this.closed || peer === this.self) return
    if (topic === this.topics.room) {
      if (subscribe) {
        // a peer subscribed to the room over a direct connection is a member, announced or not
        this.touch(peer)
        this.checkReady(peer)
      } else {
        this.remove(peer, 'left')
      }
    } else if (topic === this.topics.discovery && subscribe && !this.members.has(peer)) {
      // the relay started following this room: our first announcement may have reached nobody
      this.announce()
    }
  }

  onConnectionOpen (conn: Connection): void {
    const peer = conn.remotePeer.toString()
    const m = this.members.get(peer)
    if (this.closed || m === undefined || !isDirect(conn)) return
    this.cancelTakeover(m)
    // a first connection is reported by peer:join once it is ready; this is a healed one
    if (m.joined) this.safeDispatchEvent('peer:update', { detail: { peerId: peer, path: 'direct' } })
    this.checkReady(peer)
  }

  onConnectionClose (conn: Connection): void {
    const peer = conn.remotePeer.toString()
    const m = this.members.get(peer)
    if (this.closed || m === undefined || conn.multiplexer !== '/webrtc') return
    if (this.pathTo(peer) === 'direct') return
    this.ctx.log('direct connection to %s in %s dropped, healing', peer, this.name)
    if (m.joined) this.safeDispatchEvent('peer:update', { detail: { peerId: peer, path: 'relayed' } })
    this.ensureDirect(m)
  }

  /** Re-evaluates readiness of peers not yet joined (gossipsub heartbeat or graft). */
  recheck (peer?: string): void {
    if (this.closed) return
    if (peer !== undefined) {
      this.checkReady(peer)
      return
    }
    for (const m of this.members.values()) {
      if (!m.joined) this.checkReady(m.peerId)
    }
  }

  /** A pairwise frame for this room from `from`, over a direct stream. */
  async onPairwiseFrame (from: string, raw: Uint8Array): Promise<void> {
    if (this.closed) return
    if (this.type !== 'pairwise') {
      this.messages.drop('wrongType')
      return
    }
    if (!this.members.has(from)) {
      this.messages.drop('notMember')
      return
    }
    // a pairwise stream only runs over our direct connection to its sender
    const opened = await this.messages.open(from, raw, { rateKey: from, pair: true })
    if (typeof opened === 'string') {
      if (opened === 'rateLimited') this.scheduleFlush()
      return
    }
    this.heard(from, opened, true)
    if (opened.kind !== KIND_DATA) {
      this.messages.drop('malformed')
      return
    }
    this.receiveData({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, true)
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

  // --- receiving ----------------------------------------------------------------------------

  /** gossipsub's topic validator for the room topic: the room's rules, then delivery. */
  private async validate (propagator: PeerId, msg: Message): Promise<TopicValidatorResult> {
    if (this.closed || msg.type !== 'signed') return TopicValidatorResult.Reject
    const from = msg.from.toString()
    if (from === this.self) return TopicValidatorResult.Ignore
    try {
      // every sender we are directly connected to has a bucket of its own; senders that reach us
      // only through others share one, so a member relaying made-up origins gains nothing
      const rateKey = pathOf(this.ctx.libp2p.getConnections(msg.from)) === 'direct' ? from : FORWARDED
      // data this room takes from nobody but the host (one-way) or from nobody (pairwise) is
      // dropped before it costs a token, a sequence number or memory
      const refuseData = this.type === 'pairwise' ? 'wrongType' : this.type === 'one-way' && from !== this.currentHost ? 'notHost' : undefined
      const opened = await this.messages.open(from, msg.data, { rateKey, pair: false, refuseData })
      if (typeof opened === 'string') {
        // rate-limited numbers are gaps now: the room hears of them at its next flush
        if (opened === 'rateLimited') this.scheduleFlush()
        // a flood is not forwarded; malformed or forged bytes also lower the sender's score
        return opened === 'rateLimited' || opened === 'tooLarge' || opened === 'notHost' || opened === 'duplicate' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
      }
      // a heartbeat's body: the ranks its sender admitted newcomers at (host.ts)
      const admissions = opened.kind === KIND_HEARTBEAT ? decodeHeartbeat(opened.body) : []
      if (admissions === undefined) {
        this.messages.drop('malformed')
        return TopicValidatorResult.Reject
      }
      this.heard(from, opened, propagator.equals(msg.from), admissions)
      if (opened.kind === KIND_HEARTBEAT) return TopicValidatorResult.Accept
      if (opened.kind === KIND_HANDOFF) {
        this.onHandoff(from, opened)
        return TopicValidatorResult.Accept
      }
      this.receiveData({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, false)
      return TopicValidatorResult.Accept
    } catch (err) {
      this.ctx.log.error('validating a message from %s in %s failed - %e', from, this.name, err)
      return TopicValidatorResult.Ignore
    }
  }

  /**
   * A valid message carries its sender's rank (admitted by the host rules, host.ts) and, when it
   * came from the sender itself (`direct`) rather than forwarded by another member, proves it
   * present now. A sender that reaches us only through others and that we know nothing of yet is
   * not made a member by its messages: made-up origins relayed by a member would grow our list.
   */
  private heard (from: string, msg: OpenedMessage, direct: boolean, admissions: Admission[] = []): void {
    if (!direct && !this.members.has(from)) return
    this.touch(from)
    if (direct) this.presence.heard(from)
    // a reloaded member is a new session: it keeps neither its rank nor the host role, nor
    // the connection its previous session left behind
    if (msg.restarted) {
      this.ranks.restart(from)
      this.ctx.log('%s restarted in %s', from, this.name)
      void this.ctx.onPeerRestarted(from)
    }
    const first = !this.ranks.heard(from)
    // joining, we rank ourselves after the settled members we hear: tell the room now
    if (this.ranks.hear(from, msg.rank, msg.settled, admissions)) this.heartbeat()
    if (first) this.checkReady(from)
    this.electHost()
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

  private heartbeat (): void {
    if (this.closed) return
    this.encode(KIND_HEARTBEAT, 0, encodeHeartbeat(this.ranks.admissions()))
      .then(async (raw) => this.ctx.libp2p.services.pubsub.publish(this.topics.room, raw))
      .catch((err) => { this.ctx.log('heartbeat in %s failed - %e', this.name, err) })
  }

  /** A peer became reachable: greet it soon, so it learns our rank without waiting a heartbeat. */
  private greet (): void {
    if (this.greetTimer !== undefined) return
    this.greetTimer = setTimeout(() => {
      this.greetTimer = undefined
      this.heartbeat()
    }, 20)
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
    if (isNew) this.scheduleReply()
    this.ensureDirect(m)
  }

  private touch (peer: string): Member {
    let m = this.members.get(peer)
    if (m === undefined) {
      m = { peerId: peer, addrs: [], lastSeen: this.now(), joined: false, greeted: false, stats: { dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 } }
      this.members.set(peer, m)
      this.ranks.discover(peer)
      this.ctx.log('discovered %s in %s', peer, this.name)
      this.safeDispatchEvent('peer:discover', { detail: { peerId: peer, path: this.pathTo(peer) } })
      // joining, an unheard member may rank first: we are not the host until we hear it
      this.electHost()
    }
    m.lastSeen = this.now()
    return m
  }

  private checkReady (peer: string): void {
    const m = this.members.get(peer)
    if (m === undefined || m.joined) return
    if (this.pathTo(peer) !== 'direct') return
    if (!canPublishTo(this.ctx.libp2p.services.pubsub, this.topics.room, peer)) return
    if (!m.greeted) {
      m.greeted = true
      this.greet()
    }
    // a member is one we heard from: its rank counts for the host, and in a private room its
    // message proved it holds the secret
    if (!this.ranks.heard(peer)) return
    m.joined = true
    this.ranks.join(peer)
    this.presence.start(peer)
    this.ctx.log('%s joined %s', peer, this.name)
    this.safeDispatchEvent('peer:join', { detail: { peerId: peer, path: 'direct' } })
    this.electHost()
    if (this.history === 'idle' && this.type !== 'pairwise') void this.fetchHistory(peer)
  }

  private remove (peer: string, reason: LeaveReason): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    this.forget(m)
    this.members.delete(peer)
    this.messages.forget(peer)
    this.ranks.remove(peer)
    this.presence.forget(peer)
    this.ctx.log('%s left %s (%s)', peer, this.name, reason)
    this.safeDispatchEvent('peer:leave', { detail: { peerId: peer, reason } })
    this.electHost()
    // close our side too: a WebRTC peer that hung up is noticed only when ICE consent fails,
    // tens of seconds later, and until then its dead connection would pass for a direct path
    void this.ctx.onPeerGone([peer])
  }

  private forget (m: Member): void {
    m.dialing?.abort()
    this.cancelTakeover(m)
  }

  private tick (): void {
    this.announce()
    const now = this.now()
    for (const m of [...this.members.values()]) {
      if (this.pathTo(m.peerId) === 'direct') {
        m.lastSeen = now
      } else if (now - m.lastSeen > this.ctx.options.peerTtl) {
        this.remove(m.peerId, 'timeout')
      } else {
        this.ensureDirect(m)
      }
    }
  }

  // --- announcements ------------------------------------------------------------------------

  /** Our addresses changed (a relay reservation came or went): tell the room now, not in 10 s. */
  announceNow (): void {
    this.announce()
  }

  private announce (): void {
    const addrs = this.ctx.ownAddrs()
    if (this.closed || addrs.length === 0) return
    this.ctx.libp2p.services.pubsub.publish(this.topics.discovery, encodeAnnouncement({ v: 1, kind: 'announce', addrs }))
      .catch((err) => { this.ctx.log('announce in %s failed - %e', this.name, err) })
  }

  /** A newcomer announced: answer once, soon, so it learns us without waiting a whole interval. */
  private scheduleReply (): void {
    if (this.replyTimer !== undefined) return
    this.replyTimer = setTimeout(() => {
      this.replyTimer = undefined
      this.announce()
    }, 50 + Math.random() * 200)
  }

  // --- direct connections -------------------------------------------------------------------

  private pathTo (peer: string): 'direct' | 'relayed' {
    return pathOf(this.ctx.libp2p.getConnections(peerIdFromString(peer)))
  }

  /**
   * One side of each pair dials, the one with the smaller peer ID, so the pair does not end up
   * with two WebRTC connections; the other side takes over if nothing arrives in time.
   */
  private ensureDirect (m: Member): void {
    if (this.closed || m.dialing !== undefined || m.addrs.length === 0) return
    if (this.pathTo(m.peerId) === 'direct') return
    if (this.self < m.peerId) {
      void this.dial(m)
    } else if (m.takeover === undefined) {
      m.takeover = setTimeout(() => {
        m.takeover = undefined
        if (this.members.get(m.peerId) === m && this.pathTo(m.peerId) !== 'direct') void this.dial(m)
      }, this.ctx.options.dialTakeover)
    }
  }

  private cancelTakeover (m: Member): void {
    clearTimeout(m.takeover)
    m.takeover = undefined
  }

  private async dial (m: Member): Promise<void> {
    const controller = new AbortController()
    m.dialing = controller
    const signal = AbortSignal.any([controller.signal, this.abort.signal])
    const { options, libp2p } = this.ctx
    try {
      const conn = await dialWithRetry(async () => {
        const existing = libp2p.getConnections(peerIdFromString(m.peerId)).find(isDirect)
        if (existing !== undefined) return existing
        return libp2p.dial(m.addrs.map((a) => multiaddr(a)), {
          signal: AbortSignal.any([signal, AbortSignal.timeout(options.dialTimeout)])
        })
      }, {
        attempts: options.dialAttempts,
        backoffMs: options.dialBackoff,
        signal,
        onAttempt: (attempt, err) => {
          if (signal.aborted) return
          m.stats.dialAttempts++
          if (err === undefined) {
            m.stats.dialSuccesses++
          } else {
            m.stats.dialFailures++
            m.stats.lastError = `${err.name}: ${err.message}`
            this.ctx.log('direct dial %d to %s failed - %e', attempt, m.peerId, err)
          }
        }
      })
      // the relay only introduces peers: once direct, the circuit has no further use. Only the
      // dialer may close it, and only now: the recipient sees the WebRTC connection open while
      // the dialer is still finishing signaling over that circuit.
      for (const other of libp2p.getConnections(conn.remotePeer)) {
        if (other !== conn && isRelayed(other)) void other.close().catch(() => {})
      }
    } catch (err) {
      if (signal.aborted) return
      // the relay says the peer holds no reservation any more: its tab is gone
      if (isPeerGoneError(err)) {
        this.remove(m.peerId, 'unreachable')
      } else {
        this.ctx.log.error('gave up on a direct connection to %s in %s - %e', m.peerId, this.name, err)
      }
    } finally {
      if (m.dialing === controller) m.dialing = undefined
    }
  }
}
