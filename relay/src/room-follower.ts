/**
 * The relay follows a room's discovery topic while anybody subscribes to it, so it can forward
 * announcements between members that are not yet connected to each other, and hands each new
 * subscriber the room's current announcements (announcements.ts). Room traffic has no path
 * through the relay: it goes over the members' direct connections.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { DISCOVERY_TOPIC_PREFIX } from 'p2p-rooms/constants'
import { decodeAnnouncement } from 'p2p-rooms/wire'
import { AnnouncementCache } from './announcements.js'
import type { RawSignedMessage } from './announcements.js'
import type { GossipSub, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Logger, Startable } from '@libp2p/interface'

export interface RoomFollowerInit {
  maxRooms: number
  roomTtl: number
  /** Announcements kept per room for newcomers. */
  maxCachedPerRoom: number
  /** Announcements kept for newcomers over every room. */
  maxCached: number
  /** How long a cached announcement is handed out, in ms. */
  announcementTtl: number
  log: Logger
  /**
   * Peers whose subscriptions neither start nor keep following a room: a federated relay follows
   * rooms for its own members, and two relays counting each other would never let a room go.
   */
  ignore?: (peerId: string) => boolean
}

export class RoomFollower implements Startable {
  private readonly pubsub: GossipSub
  private readonly init: RoomFollowerInit
  /** followed topic → time it was last seen without subscribers (undefined while it has some) */
  private readonly followed = new Map<string, number | undefined>()
  private sweepTimer?: ReturnType<typeof setInterval>
  private readonly announcements: AnnouncementCache
  /** Rooms not followed because `maxRooms` was reached. */
  refused = 0
  /** Discovery messages rejected as malformed, oversized or unsigned (not forwarded). */
  rejected = 0

  constructor (pubsub: GossipSub, init: RoomFollowerInit) {
    this.pubsub = pubsub
    this.init = init
    this.announcements = new AnnouncementCache({ maxPerRoom: init.maxCachedPerRoom, maxTotal: init.maxCached, ttl: init.announcementTtl })
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
  }

  /** Announcements held for newcomers, over every room. */
  get cachedAnnouncements (): number {
    return this.announcements.size
  }

  get size (): number {
    return this.followed.size
  }

  start (): void {
    this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.sweepTimer = setInterval(() => { this.sweep() }, Math.max(1000, this.init.roomTtl / 2))
  }

  stop (): void {
    this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    clearInterval(this.sweepTimer)
    for (const topic of this.followed.keys()) {
      this.pubsub.unsubscribe(topic)
      this.pubsub.topicValidators.delete(topic)
    }
    this.followed.clear()
    this.announcements.clear()
  }

  private onSubscriptionChange (evt: CustomEvent<{ peerId: { toString: () => string }, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void {
    const peer = evt.detail.peerId.toString()
    const relay = this.init.ignore?.(peer) === true
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (!topic.startsWith(DISCOVERY_TOPIC_PREFIX)) continue
      if (relay) {
        // a federated relay follows the room for a member of its own: hand it what we hold
        if (subscribe && this.followed.has(topic)) this.handOver(topic, peer)
        continue
      }
      if (!subscribe) {
        this.announcements.forget(topic, peer)
        continue
      }
      if (this.followed.has(topic)) {
        this.followed.set(topic, undefined)
        this.handOver(topic, peer)
        continue
      }
      if (this.followed.size >= this.init.maxRooms) {
        this.refused++
        this.init.log('not following %s: maxRooms (%d) reached', topic, this.init.maxRooms)
        continue
      }
      this.followed.set(topic, undefined)
      this.pubsub.topicValidators.set(topic, this.validate)
      this.pubsub.subscribe(topic)
    }
  }

  /**
   * Only well-formed announcements from their own sender are forwarded: the relay must not fan
   * out junk to a room, and gossipsub lowers the score of a peer whose messages are rejected.
   */
  private readonly validate: TopicValidatorFn = (peer, msg) => {
    const announcement = msg.type === 'signed' ? decodeAnnouncement(msg.data, msg.from.toString()) : undefined
    if (msg.type !== 'signed' || announcement === undefined) {
      this.rejected++
      return TopicValidatorResult.Reject
    }
    if (announcement.kind === 'announce') this.announcements.remember(msg, peer.toString())
    else this.announcements.forget(msg.topic, msg.from.toString())
    return TopicValidatorResult.Accept
  }

  /**
   * Hands a new subscriber of `topic` the room's current announcements, as their senders signed
   * them, in one gossipsub RPC: its gossipsub checks and delivers them like any forwarded message.
   * gossipsub has no public call to send one peer a message, so this uses its `sendRpc` (pinned
   * at 17.1.1; test/relay/discovery.int.test.ts fails if it stops working).
   */
  private handOver (topic: string, subscriber: string): void {
    const subscribers = new Set(this.pubsub.getSubscribers(topic).map(String))
    const messages = this.announcements.snapshot(topic, subscriber, (p) => subscribers.has(p))
    if (messages.length === 0) return
    const sent = (this.pubsub as unknown as GossipSubRpc).sendRpc(subscriber, { subscriptions: [], messages, control: undefined })
    this.init.log('handed %d announcements of a room to %s%s', messages.length, subscriber, sent ? '' : ': no stream to it yet')
  }

  /** Unsubscribes from rooms that have had no subscriber for `roomTtl`: nothing outlives a room. */
  private sweep (): void {
    const now = Date.now()
    for (const [topic, emptySince] of this.followed) {
      if (this.pubsub.getSubscribers(topic).some((p) => this.init.ignore?.(p.toString()) !== true)) {
        this.followed.set(topic, undefined)
      } else if (emptySince === undefined) {
        this.followed.set(topic, now)
      } else if (now - emptySince >= this.init.roomTtl) {
        this.followed.delete(topic)
        this.announcements.drop(topic)
        this.pubsub.unsubscribe(topic)
        this.pubsub.topicValidators.delete(topic)
      }
    }
    this.announcements.expire()
  }
}

/** gossipsub's (TypeScript-private) way to send one peer an RPC. */
interface GossipSubRpc {
  sendRpc(peer: string, rpc: { subscriptions: [], messages: RawSignedMessage[], control: undefined }): boolean
}
