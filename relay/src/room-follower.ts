/**
 * The relay follows a room's discovery topic while anybody subscribes to it, so it can forward
 * announcements between members that are not yet connected to each other, and hands each new
 * subscriber the room's current announcements (announcements.ts). Room traffic has no path
 * through the relay: it goes over the members' direct connections.
 *
 * What one client can make the relay do is bounded: each peer is counted in at most
 * `maxRoomsPerPeer` rooms, the peers of one IP address (IPv6: one /64) in at most
 * `maxRoomsPerIp`, and the relay follows at most `maxRooms`; a subscription beyond is not
 * followed and counted by reason (`rooms-per-peer`, `rooms-per-ip`, `max-rooms`). Before these
 * quotas a client subscribing to about 1,000 topics per connection filled the 10,000 rooms with
 * 11 connections, and genuine rooms were silently never followed. A peer also sends at most
 * `announcementsPerSecond` announcements (a token bucket of burst `maxRoomsPerPeer`). Federated
 * relays follow rooms for their own members and are not counted.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { DISCOVERY_TOPIC_PREFIX } from 'p2p-rooms/constants'
import { RateLimiter } from 'p2p-rooms/rate-limit'
import { decodeAnnouncement } from 'p2p-rooms/wire'
import { AnnouncementCache } from './announcements.js'
import {
  ANNOUNCEMENT_CACHE_TTL_MS, HANDOVER_FIRST_RETRY_MS, HANDOVER_RETRY_MS, HANDOVER_TIMEOUT_MS, MAX_CACHED_ANNOUNCEMENTS, MAX_CACHED_ANNOUNCEMENTS_PER_ROOM, MAX_RATE_TRACKED_PEERS
} from './constants.js'
import type { RawSignedMessage } from './announcements.js'
import type { RefusalCounter, RefusalReason } from './refusals.js'
import type { TopicValidatorFn } from '@libp2p/gossipsub'
import type { Logger, PeerId, Startable } from '@libp2p/interface'

/** What the follower needs of gossipsub (the relay's `pubsub` service). */
export interface FollowerPubSub {
  addEventListener(type: 'subscription-change', listener: (evt: CustomEvent<SubscriptionChange>) => void): void
  removeEventListener(type: 'subscription-change', listener: (evt: CustomEvent<SubscriptionChange>) => void): void
  subscribe(topic: string): void
  unsubscribe(topic: string): void
  getSubscribers(topic: string): PeerId[]
  topicValidators: Map<string, TopicValidatorFn>
}

export interface SubscriptionChange {
  peerId: { toString: () => string }
  subscriptions: Array<{ topic: string, subscribe: boolean }>
}

export interface RoomFollowerInit {
  maxRooms: number
  /** ms */
  roomTtl: number
  maxRoomsPerPeer: number
  /** Announcements kept per room for newcomers. @default MAX_CACHED_ANNOUNCEMENTS_PER_ROOM */
  maxCachedPerRoom?: number
  /** Announcements kept for newcomers over every room. @default MAX_CACHED_ANNOUNCEMENTS */
  maxCached?: number
  /** How long a cached announcement is handed out, in ms. @default ANNOUNCEMENT_CACHE_TTL_MS */
  announcementTtl?: number
  maxRoomsPerIp: number
  announcementsPerSecond: number
  log: Logger
  refusals: RefusalCounter
  /**
   * Peers whose subscriptions neither start nor keep following a room, and whose announcements
   * are not rate-limited: a federated relay follows rooms for its own members, and two relays
   * counting each other would never let a room go.
   */
  ignore?: (peerId: string) => boolean
  /** The per-IP key (refusals.ts `ipKey`) of a connected peer. */
  ipOf?: (peerId: string) => string | undefined
}

interface Room {
  /** peers counted in this room */
  members: Set<string>
  /** when it was last seen without members (undefined while it has some) */
  emptySince?: number
}

interface Member {
  ip?: string
  rooms: Set<string>
}

export class RoomFollower implements Startable {
  private readonly pubsub: FollowerPubSub
  private readonly init: RoomFollowerInit
  private readonly followed = new Map<string, Room>()
  private readonly members = new Map<string, Member>()
  private readonly roomsPerIp = new Map<string, number>()
  private readonly announcements: RateLimiter
  private sweepTimer?: ReturnType<typeof setInterval>
  /** each room's latest announcement per member, for newcomers */
  private readonly cache: AnnouncementCache
  /** hand-overs waiting for a gossipsub stream to their subscriber */
  private readonly handOvers = new Set<ReturnType<typeof setTimeout>>()
  private started = false
  /** Discovery messages rejected as malformed, oversized or unsigned (not forwarded). */
  rejected = 0

  constructor (pubsub: FollowerPubSub, init: RoomFollowerInit) {
    this.pubsub = pubsub
    this.init = init
    this.announcements = new RateLimiter({ rate: init.announcementsPerSecond, burst: Math.max(1, init.maxRoomsPerPeer), maxKeys: MAX_RATE_TRACKED_PEERS })
    this.cache = new AnnouncementCache({
      maxPerRoom: init.maxCachedPerRoom ?? MAX_CACHED_ANNOUNCEMENTS_PER_ROOM,
      maxTotal: init.maxCached ?? MAX_CACHED_ANNOUNCEMENTS,
      ttl: init.announcementTtl ?? ANNOUNCEMENT_CACHE_TTL_MS
    })
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
  }

  /** Announcements held for newcomers, over every room. */
  get cachedAnnouncements (): number {
    return this.cache.size
  }

  /** Rooms followed now. */
  get size (): number {
    return this.followed.size
  }

  /** Peers counted in at least one room now. */
  get peers (): number {
    return this.members.size
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.sweepTimer = setInterval(() => { this.sweep() }, Math.max(1000, this.init.roomTtl / 2))
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    clearInterval(this.sweepTimer)
    for (const topic of this.followed.keys()) {
      this.pubsub.unsubscribe(topic)
      this.pubsub.topicValidators.delete(topic)
    }
    this.followed.clear()
    this.members.clear()
    this.roomsPerIp.clear()
    this.cache.clear()
    for (const timer of this.handOvers) clearTimeout(timer)
    this.handOvers.clear()
  }

  /** `peerId` left (disconnected) or turned out to be a federated relay: it counts in no room any more. */
  forget (peerId: string): void {
    const member = this.members.get(peerId)
    this.announcements.delete(peerId)
    if (member === undefined) return
    for (const topic of [...member.rooms]) this.leave(peerId, topic)
  }

  private onSubscriptionChange (evt: CustomEvent<SubscriptionChange>): void {
    const peerId = evt.detail.peerId.toString()
    const relay = this.init.ignore?.(peerId) === true
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (typeof topic !== 'string' || !topic.startsWith(DISCOVERY_TOPIC_PREFIX)) continue
      if (relay) {
        // a federated relay follows the room for a member of its own: hand it what we hold
        if (subscribe && this.followed.has(topic)) this.handOver(topic, peerId)
        continue
      }
      if (subscribe) this.join(peerId, topic)
      else this.leave(peerId, topic)
    }
  }

  private join (peerId: string, topic: string): void {
    const room = this.followed.get(topic)
    if (room?.members.has(peerId) === true) return
    const member = this.members.get(peerId) ?? { ip: this.init.ipOf?.(peerId), rooms: new Set<string>() }
    if (member.rooms.size >= this.init.maxRoomsPerPeer) return this.refuse('rooms-per-peer', peerId, member.ip)
    if (member.ip !== undefined && (this.roomsPerIp.get(member.ip) ?? 0) >= this.init.maxRoomsPerIp) return this.refuse('rooms-per-ip', peerId, member.ip)
    let joined = room
    if (joined === undefined) {
      if (this.followed.size >= this.init.maxRooms) return this.refuse('max-rooms', peerId, member.ip)
      joined = { members: new Set() }
      this.followed.set(topic, joined)
      this.pubsub.topicValidators.set(topic, this.validate)
      this.pubsub.subscribe(topic)
    }
    joined.members.add(peerId)
    joined.emptySince = undefined
    member.rooms.add(topic)
    this.members.set(peerId, member)
    if (member.ip !== undefined) this.roomsPerIp.set(member.ip, (this.roomsPerIp.get(member.ip) ?? 0) + 1)
    // a room we followed already: the newcomer gets its members at once
    if (room !== undefined) this.handOver(topic, peerId)
  }

  /** `peerId` no longer counts in `topic`; the room itself goes once it was empty for `roomTtl`. */
  private leave (peerId: string, topic: string): void {
    this.cache.forget(topic, peerId)
    const member = this.members.get(peerId)
    if (member?.rooms.delete(topic) !== true) return
    const room = this.followed.get(topic)
    room?.members.delete(peerId)
    if (room !== undefined && room.members.size === 0) room.emptySince ??= Date.now()
    if (member.rooms.size === 0) this.members.delete(peerId)
    if (member.ip !== undefined) {
      const left = (this.roomsPerIp.get(member.ip) ?? 1) - 1
      if (left <= 0) this.roomsPerIp.delete(member.ip)
      else this.roomsPerIp.set(member.ip, left)
    }
  }

  private refuse (reason: RefusalReason, peerId: string, ip: string | undefined): void {
    this.init.refusals.refuse({ kind: reason === 'announcement-rate' ? 'announcement' : 'room', reason, peerId, ip })
    this.init.log('not following a room for %s: %s', peerId, reason)
  }

  /**
   * Only well-formed announcements from their own sender are forwarded, at most
   * `announcementsPerSecond` per peer: the relay must not fan out junk or floods to a room, and
   * gossipsub lowers the score of a peer whose messages are rejected.
   */
  private readonly validate: TopicValidatorFn = (propagationSource, msg) => {
    const source = propagationSource.toString()
    if (this.init.ignore?.(source) !== true && !this.announcements.take(source)) {
      this.refuse('announcement-rate', source, this.members.get(source)?.ip)
      return TopicValidatorResult.Reject
    }
    const announcement = msg.type === 'signed' ? decodeAnnouncement(msg.data, msg.from.toString()) : undefined
    if (msg.type !== 'signed' || announcement === undefined) {
      this.rejected++
      return TopicValidatorResult.Reject
    }
    if (announcement.kind === 'announce') this.cache.remember(msg, source)
    else this.cache.forget(msg.topic, msg.from.toString())
    return TopicValidatorResult.Accept
  }

  /**
   * Hands a new subscriber of `topic` the room's current announcements, as their senders signed
   * them, in one gossipsub RPC: its gossipsub checks and delivers them like any forwarded message.
   * gossipsub has no public call to send one peer a message, so this uses its `sendRpc` (pinned
   * at 17.1.1; test/relay/discovery.int.test.ts fails if it stops working).
   */
  private handOver (topic: string, subscriber: string, attempt = 1, since = Date.now()): void {
    if (!this.started) return
    const subscribers = new Set(this.pubsub.getSubscribers(topic).map(String))
    const messages = this.cache.snapshot(topic, subscriber, (p) => subscribers.has(p))
    const sendRpc = (this.pubsub as unknown as Partial<GossipSubRpc>).sendRpc
    if (messages.length === 0 || typeof sendRpc !== 'function') return
    if (sendRpc.call(this.pubsub, subscriber, { subscriptions: [], messages, control: undefined })) {
      this.init.log('handed %d announcements of a room to %s (attempt %d)', messages.length, subscriber, attempt)
      return
    }
    // its subscription came before our own gossipsub stream to it was open (each side opens
    // its stream once identify is done): try again shortly, for a bounded while
    const wait = Math.min(HANDOVER_RETRY_MS, HANDOVER_FIRST_RETRY_MS * 2 ** (attempt - 1))
    if (Date.now() + wait - since > HANDOVER_TIMEOUT_MS) {
      this.init.log('no gossipsub stream to %s: could not hand it a room', subscriber)
      return
    }
    const timer = setTimeout(() => {
      this.handOvers.delete(timer)
      this.handOver(topic, subscriber, attempt + 1, since)
    }, wait)
    this.handOvers.add(timer)
  }

  /**
   * Drops members gossipsub no longer knows subscribed (a peer can go without an unsubscribe),
   * and unsubscribes from rooms that have had no member for `roomTtl`: nothing outlives a room.
   */
  private sweep (): void {
    const now = Date.now()
    for (const [topic, room] of this.followed) {
      if (room.members.size > 0) {
        const subscribed = new Set(this.pubsub.getSubscribers(topic).map(String))
        for (const peerId of [...room.members]) if (!subscribed.has(peerId)) this.leave(peerId, topic)
      }
      if (room.members.size > 0) {
        room.emptySince = undefined
      } else if (room.emptySince === undefined) {
        room.emptySince = now
      } else if (now - room.emptySince >= this.init.roomTtl) {
        this.followed.delete(topic)
        this.cache.drop(topic)
        this.pubsub.unsubscribe(topic)
        this.pubsub.topicValidators.delete(topic)
      }
    }
    this.cache.expire()
  }
}

/** gossipsub's (TypeScript-private) way to send one peer an RPC. */
interface GossipSubRpc {
  sendRpc(peer: string, rpc: { subscriptions: [], messages: RawSignedMessage[], control: undefined }): boolean
}
