/**
 * The relay follows a room's discovery topic while anybody subscribes to it, so it can forward
 * announcements between members that are not yet connected to each other. It never subscribes
 * to a room's data topic: room traffic has no path through the relay.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { DISCOVERY_TOPIC_PREFIX } from 'p2p-rooms/constants'
import { decodeAnnouncement } from 'p2p-rooms/wire'
import type { GossipSub, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Logger, Startable } from '@libp2p/interface'

export interface RoomFollowerInit {
  maxRooms: number
  roomTtl: number
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
  /** Rooms not followed because `maxRooms` was reached. */
  refused = 0
  /** Discovery messages rejected as malformed, oversized or unsigned (not forwarded). */
  rejected = 0

  constructor (pubsub: GossipSub, init: RoomFollowerInit) {
    this.pubsub = pubsub
    this.init = init
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
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
  }

  private onSubscriptionChange (evt: CustomEvent<{ peerId: { toString: () => string }, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void {
    if (this.init.ignore?.(evt.detail.peerId.toString()) === true) return
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      if (!subscribe || !topic.startsWith(DISCOVERY_TOPIC_PREFIX)) continue
      if (this.followed.has(topic)) {
        this.followed.set(topic, undefined)
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
  private readonly validate: TopicValidatorFn = (_peer, msg) => {
    if (msg.type === 'signed' && decodeAnnouncement(msg.data, msg.from.toString()) !== undefined) return TopicValidatorResult.Accept
    this.rejected++
    return TopicValidatorResult.Reject
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
        this.pubsub.unsubscribe(topic)
        this.pubsub.topicValidators.delete(topic)
      }
    }
  }
}
