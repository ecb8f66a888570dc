/**
 * The relay follows a room's discovery topic while anybody subscribes to it, so it can forward
 * announcements between members that are not yet connected to each other. It never subscribes
 * to a room's data topic: room traffic has no path through the relay.
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
import { MAX_RATE_TRACKED_PEERS } from './constants.js'
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
  private started = false
  /** Discovery messages rejected as malformed, oversized or unsigned (not forwarded). */
  rejected = 0

  constructor (pubsub: FollowerPubSub, init: RoomFollowerInit) {
    this.pubsub = pubsub
    this.init = init
    this.announcements = new RateLimiter({ rate: init.announcementsPerSecond, burst: Math.max(1, init.maxRoomsPerPeer), maxKeys: MAX_RATE_TRACKED_PEERS })
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
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
    if (this.init.ignore?.(peerId) === true) return
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (typeof topic !== 'string' || !topic.startsWith(DISCOVERY_TOPIC_PREFIX)) continue
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
  }

  /** `peerId` no longer counts in `topic`; the room itself goes once it was empty for `roomTtl`. */
  private leave (peerId: string, topic: string): void {
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
    if (msg.type === 'signed' && decodeAnnouncement(msg.data, msg.from.toString()) !== undefined) return TopicValidatorResult.Accept
    this.rejected++
    return TopicValidatorResult.Reject
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
        this.pubsub.unsubscribe(topic)
        this.pubsub.topicValidators.delete(topic)
      }
    }
  }
}
