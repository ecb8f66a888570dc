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
import { HISTORY_TIMEOUT_MS } from './constants.js'
import { dialWithRetry, isPeerGoneError } from './dialer.js'
import { NotHostError, PeerNotFoundError, RoomClosedError, SessionTypeError } from './errors.js'
import { canPublishTo } from './gossip-readiness.js'
import { electHost, handoffRank } from './host.js'
import { isDirect, isRelayed, pathOf } from './paths.js'
import { RoomMessages } from './room-messages.js'
import {
  KIND_DATA, KIND_HANDOFF, KIND_HEARTBEAT, decodeAnnouncement, decodeHandoff, encodeAnnouncement,
  encodeHandoff, encodeLabelled, roomTopics
} from './wire.js'
import type { ResolvedRoomNodeOptions, RoomEvents, Room, RoomPeer, RoomPeerStats, LeaveReason, PublishResult, SessionType, RoomStats } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Delivery, OpenedMessage } from './room-messages.js'
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
  /** Sends a pairwise frame to `peer` over its direct connection. */
  sendFrame: (peer: string, frame: Uint8Array) => Promise<void>
  /** Asks `peer` for this room's backlog over a direct connection. */
  requestHistory: (peer: string, request: Uint8Array, signal: AbortSignal) => Promise<Uint8Array[]>
}

/** A room's own settings, resolved from `joinRoom`'s options. */
export interface RoomSettings {
  type: SessionType
  maxMessageBytes: number
  messagesPerSecond: number
  burst: number
  historySize: number
  /** Set for a private room: its topic ID and AES-GCM key, both derived from the secret. */
  secret?: { topicId: string, key: CryptoKey }
}

interface Member {
  peerId: string
  addrs: string[]
  /** last announcement, or direct connection, seen: expiry of a member not yet joined */
  lastSeen: number
  /** last valid room message (heartbeat or data): presence of a joined member */
  lastHeard?: number
  /** host rank, from the header of its first valid room message (see host.ts) */
  rank?: number
  joined: boolean
  /** we sent a heartbeat since it became reachable */
  greeted: boolean
  dialing?: AbortController
  takeover?: ReturnType<typeof setTimeout>
  stats: Pick<RoomPeerStats, 'dialAttempts' | 'dialSuccesses' | 'dialFailures' | 'lastError'>
}

const encoder = new TextEncoder()
const EMPTY = new Uint8Array(0)

type HistoryState = 'idle' | 'fetching' | 'done'

export class RoomImpl extends TypedEventEmitter<RoomEvents> implements Room {
  readonly name: string
  readonly type: SessionType
  readonly topics: { discovery: string, room: string }
  private readonly ctx: RoomContext
  private readonly settings: RoomSettings
  private readonly messages: RoomMessages
  private readonly members = new Map<string, Member>()
  private readonly abort = new AbortController()
  /** our host rank: join time, lowered when the host hands its role to us */
  private rank = Date.now()
  private currentHost: string
  private announceTimer?: ReturnType<typeof setInterval>
  private heartbeatTimer?: ReturnType<typeof setInterval>
  private presenceTimer?: ReturnType<typeof setInterval>
  private flushTimer?: ReturnType<typeof setTimeout>
  private replyTimer?: ReturnType<typeof setTimeout>
  private greetTimer?: ReturnType<typeof setTimeout>
  private history: HistoryState = 'idle'
  /** live data that arrived while the backlog was being fetched, delivered after it */
  private readonly heldForHistory: Array<{ delivery: Delivery, pair: boolean }> = []
  private closed = false

  constructor (name: string, settings: RoomSettings, ctx: RoomContext) {
    super()
    this.name = name
    this.type = settings.type
    this.settings = settings
    this.ctx = ctx
    this.topics = roomTopics(name, settings.type, settings.secret?.topicId)
    this.currentHost = this.self
    this.messages = new RoomMessages({
      topic: this.topics.room,
      maxMessageBytes: settings.maxMessageBytes,
      messagesPerSecond: settings.messagesPerSecond,
      burst: settings.burst,
      historySize: settings.type === 'pairwise' ? 0 : settings.historySize,
      key: settings.secret?.key
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
    const { announceInterval, heartbeatInterval, presenceTimeout } = this.ctx.options
    this.announceTimer = setInterval(() => { this.tick() }, announceInterval)
    this.heartbeatTimer = setInterval(() => { this.heartbeat() }, heartbeatInterval)
    // check often enough that a silent member is gone within presenceTimeout + a quarter of it
    this.presenceTimer = setInterval(() => { this.checkPresence() }, Math.max(250, Math.min(heartbeatInterval, presenceTimeout / 4)))
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
        lastHeardMs: m.lastHeard === undefined ? undefined : Date.now() - m.lastHeard
      }
    }
    return {
      type: this.type,
      host: this.currentHost,
      messages: { sent: counters.sent, received: counters.received, dropped: { ...counters.dropped }, gaps: counters.gaps },
      peers
    }
  }

  async publish (data: Uint8Array | string): Promise<PublishResult> {
    this.assertOpen()
    if (this.type === 'pairwise') throw new SessionTypeError(`room "${this.name}" is pairwise: address messages with send(peerId, data)`)
    if (this.type === 'one-way' && this.currentHost !== this.self) throw new NotHostError(`only the host (${this.currentHost}) publishes in one-way room "${this.name}"`)
    const payload = typeof data === 'string' ? encoder.encode(data) : data
    this.messages.admit(payload)
    const raw = await this.messages.encode(this.self, KIND_DATA, this.messages.nextSeq(), this.rank, payload)
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
    const raw = await this.messages.encode(this.self, KIND_DATA, this.messages.nextSeq(peerId), this.rank, payload)
    await this.ctx.sendFrame(peerId, encodeLabelled(this.topics.room, raw))
    this.messages.sent(this.self, raw, false)
  }

  async handOffHost (peerId: string): Promise<void> {
    this.assertOpen()
    if (this.currentHost !== this.self) throw new NotHostError(`only the host (${this.currentHost}) can hand off room "${this.name}"`)
    const m = this.members.get(peerId)
    if (m === undefined || !m.joined || m.rank === undefined) throw new PeerNotFoundError(`${peerId} is not a joined member of room "${this.name}"`)
    const rank = handoffRank(this.candidates())
    const raw = await this.messages.encode(this.self, KIND_HANDOFF, 0, this.rank, encodeHandoff(peerId, rank))
    await this.ctx.libp2p.services.pubsub.publish(this.topics.room, raw)
    m.rank = rank
    this.electHost()
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
    const opened = await this.messages.open(from, raw, { rateLimit: true, pair: true })
    if (typeof opened === 'string') return
    this.heard(from, opened)
    if (opened.kind !== KIND_DATA) {
      this.messages.drop('malformed')
      return
    }
    this.receiveData({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw }, true)
  }

  /** The backlog a member asked us for: our mailbox, each message labelled with its sender. */
  backlogFor (from: string): Uint8Array[] {
    if (this.closed || this.type === 'pairwise' || !this.members.has(from)) {
      this.messages.drop('notMember')
      return []
    }
    return this.messages.backlog().map(({ from: sender, raw }) => encodeLabelled(sender, raw))
  }

  // --- receiving ----------------------------------------------------------------------------

  /** gossipsub's topic validator for the room topic: the room's rules, then delivery. */
  private async validate (_propagator: PeerId, msg: Message): Promise<TopicValidatorResult> {
    if (this.closed || msg.type !== 'signed') return TopicValidatorResult.Reject
    const from = msg.from.toString()
    if (from === this.self) return TopicValidatorResult.Ignore
    try {
      const opened = await this.messages.open(from, msg.data, { rateLimit: true, pair: false })
      if (typeof opened === 'string') {
        // a flood is not forwarded; malformed or forged bytes also lower the sender's score
        return opened === 'rateLimited' || opened === 'tooLarge' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
      }
      this.heard(from, opened)
      if (opened.kind === KIND_HEARTBEAT) return TopicValidatorResult.Accept
      if (opened.kind === KIND_HANDOFF) {
        this.onHandoff(from, opened)
        return TopicValidatorResult.Accept
      }
      if (this.type === 'pairwise') {
        this.messages.drop('wrongType')
        return TopicValidatorResult.Reject
      }
      if (this.type === 'one-way' && from !== this.currentHost) {
        this.messages.drop('notHost')
        return TopicValidatorResult.Ignore
      }
      this.receiveData({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw }, false)
      return TopicValidatorResult.Accept
    } catch (err) {
      this.ctx.log.error('validating a message from %s in %s failed - %e', from, this.name, err)
      return TopicValidatorResult.Ignore
    }
  }

  /** Any valid message proves its sender present and carries its host rank. */
  private heard (from: string, msg: OpenedMessage): void {
    const m = this.touch(from)
    m.lastHeard = Date.now()
    // a member's rank is the one it first claims: it cannot lower it later to make itself
    // host, only a handoff from the host does (onHandoff)
    if (m.rank === undefined) {
      m.rank = msg.rank
      this.checkReady(from)
      this.electHost()
    }
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
    if (handoff.to === this.self) {
      this.rank = Math.min(this.rank, handoff.rank)
    } else {
      const m = this.members.get(handoff.to)
      if (m === undefined) return
      m.rank = Math.min(m.rank ?? Infinity, handoff.rank)
    }
    this.electHost()
  }

  private receiveData (delivery: Delivery, pair: boolean): void {
    if (this.history !== 'done' && !pair) {
      if (this.history === 'idle') void this.fetchHistory(delivery.from)
      this.heldForHistory.push({ delivery, pair })
      return
    }
    this.release(this.messages.order(delivery, pair))
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
    this.history = 'fetching'
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(HISTORY_TIMEOUT_MS)])
    let frames: Uint8Array[] = []
    try {
      frames = await this.ctx.requestHistory(peer, encodeLabelled(this.topics.room, EMPTY), signal)
    } catch (err) {
      if (this.closed) return
      this.ctx.log('no backlog from %s in %s - %e', peer, this.name, err)
    }
    if (this.closed) return
    const { backlog, last } = await this.messages.openBacklog(this.self, frames)
    this.history = 'done'
    this.release({ deliver: backlog.map((item) => ({ from: item.from, seq: item.seq, item })), gaps: [] })
    // live messages continue each sender's sequence where its backlog ended
    for (const [from, seq] of last) this.release(this.messages.continueAfter(from, seq))
    for (const { delivery, pair } of this.heldForHistory.splice(0)) this.release(this.messages.order(delivery, pair))
    if (backlog.length > 0) this.ctx.log('delivered a backlog of %d messages from %s in %s', backlog.length, peer, this.name)
  }

  // --- host ---------------------------------------------------------------------------------

  private candidates (): Array<{ peerId: string, rank: number }> {
    const out = [{ peerId: this.self, rank: this.rank }]
    for (const m of this.members.values()) {
      if (m.joined && m.rank !== undefined) out.push({ peerId: m.peerId, rank: m.rank })
    }
    return out
  }

  private electHost (): void {
    const host = electHost(this.candidates()) ?? this.self
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
    this.messages.encode(this.self, KIND_HEARTBEAT, 0, this.rank, EMPTY)
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
    const now = Date.now()
    for (const m of [...this.members.values()]) {
      if (m.joined && m.lastHeard !== undefined && now - m.lastHeard > this.ctx.options.presenceTimeout) {
        this.remove(m.peerId, 'timeout')
      }
    }
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
      m = { peerId: peer, addrs: [], lastSeen: Date.now(), joined: false, greeted: false, stats: { dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 } }
      this.members.set(peer, m)
      this.ctx.log('discovered %s in %s', peer, this.name)
      this.safeDispatchEvent('peer:discover', { detail: { peerId: peer, path: this.pathTo(peer) } })
    }
    m.lastSeen = Date.now()
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
    if (m.rank === undefined) return
    m.joined = true
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
    const now = Date.now()
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
