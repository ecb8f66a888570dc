/**
 * Room semantics: membership learned through the relay, a direct WebRTC connection to every
 * member, readiness before `peer:join`, healing of dropped connections, and expiry.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { dialWithRetry, isPeerGoneError } from './dialer.js'
import { MessageTooLargeError, RoomClosedError } from './errors.js'
import { canPublishTo } from './gossip-readiness.js'
import { isDirect, isRelayed, pathOf } from './paths.js'
import { KIND_DATA, decodeAnnouncement, decodeRoomMessage, encodeAnnouncement, encodeRoomMessage, roomTopics } from './wire.js'
import type { ResolvedRoomNodeOptions, RoomEvents, Room, RoomPeer, RoomPeerStats, LeaveReason, PublishResult } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Message } from '@libp2p/gossipsub'
import type { Connection, Logger } from '@libp2p/interface'
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
}

interface Member {
  peerId: string
  addrs: string[]
  lastSeen: number
  joined: boolean
  dialing?: AbortController
  takeover?: ReturnType<typeof setTimeout>
  stats: RoomPeerStats
}

const encoder = new TextEncoder()

export class RoomImpl extends TypedEventEmitter<RoomEvents> implements Room {
  readonly name: string
  readonly topics: { discovery: string, room: string }
  private readonly ctx: RoomContext
  private readonly members = new Map<string, Member>()
  private readonly abort = new AbortController()
  private announceTimer?: ReturnType<typeof setInterval>
  private replyTimer?: ReturnType<typeof setTimeout>
  private closed = false

  constructor (name: string, ctx: RoomContext) {
    super()
    this.name = name
    this.ctx = ctx
    this.topics = roomTopics(name)
  }

  get self (): string {
    return this.ctx.libp2p.peerId.toString()
  }

  start (): void {
    const { pubsub } = this.ctx.libp2p.services
    pubsub.subscribe(this.topics.room)
    pubsub.subscribe(this.topics.discovery)
    this.announce()
    this.announceTimer = setInterval(() => { this.tick() }, this.ctx.options.announceInterval)
  }

  has (peer: string): boolean {
    return this.members.has(peer)
  }

  get maxMessageBytes (): number {
    return this.ctx.options.maxMessageBytes
  }

  peers (): RoomPeer[] {
    return [...this.members.values()].map((m) => ({ peerId: m.peerId, path: this.pathTo(m.peerId) }))
  }

  stats (): Record<string, RoomPeerStats> {
    return Object.fromEntries([...this.members.values()].map((m) => [m.peerId, { ...m.stats }]))
  }

  async publish (data: Uint8Array | string): Promise<PublishResult> {
    if (this.closed) throw new RoomClosedError(`room "${this.name}" was left`)
    const payload = typeof data === 'string' ? encoder.encode(data) : data
    if (payload.byteLength > this.ctx.options.maxMessageBytes) {
      throw new MessageTooLargeError(`message of ${payload.byteLength} bytes exceeds maxMessageBytes (${this.ctx.options.maxMessageBytes})`)
    }
    const result = await this.ctx.libp2p.services.pubsub.publish(this.topics.room, encodeRoomMessage(KIND_DATA, payload))
    return { recipients: result.recipients.map((p) => p.toString()) }
  }

  async leave (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.announceTimer)
    clearTimeout(this.replyTimer)
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
    }
    for (const m of this.members.values()) this.forget(m)
    const former = [...this.members.keys()]
    this.members.clear()
    this.ctx.onLeft(this)
    await this.ctx.onPeerGone(former)
  }

  // --- events routed here by the node -------------------------------------------------------

  onPubsubMessage (msg: Message): void {
    if (this.closed || msg.type !== 'signed') return
    const from = msg.from.toString()
    if (from === this.self) return
    if (msg.topic === this.topics.discovery) {
      this.onAnnouncement(from, msg.data)
    } else if (msg.topic === this.topics.room) {
      const decoded = decodeRoomMessage(msg.data)
      if (decoded === undefined) {
        this.ctx.log('dropping malformed room message from %s', from)
        return
      }
      this.touch(from)
      this.safeDispatchEvent('message', { detail: { from, data: decoded.payload, topic: this.name } })
    }
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
      m = { peerId: peer, addrs: [], lastSeen: Date.now(), joined: false, stats: { dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 } }
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
    m.joined = true
    this.ctx.log('%s joined %s', peer, this.name)
    this.safeDispatchEvent('peer:join', { detail: { peerId: peer, path: 'direct' } })
  }

  private remove (peer: string, reason: LeaveReason): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    this.forget(m)
    this.members.delete(peer)
    this.ctx.log('%s left %s (%s)', peer, this.name, reason)
    this.safeDispatchEvent('peer:leave', { detail: { peerId: peer, reason } })
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
