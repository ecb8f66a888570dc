/**
 * The room's discovery topic on the relay: our announcements (our circuit addresses, every
 * `announceInterval`, at once when they change, and in answer to a newcomer), and theirs,
 * handed to membership. Only announcements travel here; room traffic goes over direct links.
 */
import { ANNOUNCE_RETRY_ATTEMPTS, ANNOUNCE_RETRY_MS, REPLY_DELAY_MIN_MS, REPLY_DELAY_SPREAD_MS } from '../constants.js'
import { decodeAnnouncement, encodeAnnouncement } from '../wire.js'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Logger, Startable } from '@libp2p/interface'

/** What the announcer needs of its room and node. */
export interface AnnouncerComponents {
  /** Our peer ID. */
  self: string
  /** The room's name, for logs. */
  room: string
  /** The room's discovery topic (gossipsub), followed by relays. */
  topic: string
  log: Logger
  /** gossipsub, for this topic only. */
  pubsub: Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'publish'>
  /** How often we re-announce ourselves, in ms. */
  interval: number
  /** When our node started, ms since the epoch: announced, so peers agree on who dials. */
  startedAt: number
  /** Our own `/p2p-circuit/webrtc` multiaddrs, one per relay reservation. */
  ownAddrs: () => string[]
  /** Whether `peer` is a member we know of already. */
  isMember: (peer: string) => boolean
  /** A member announced itself (its addresses, and its node's start time if it said). */
  onAnnounce: (peer: string, addrs: string[], startedAt: number | undefined) => void
  /** A member announced it left. */
  onLeave: (peer: string) => void
}

export class Announcer implements Startable {
  private readonly components: AnnouncerComponents
  private timer?: ReturnType<typeof setInterval>
  private replyTimer?: ReturnType<typeof setTimeout>
  private retryTimer?: ReturnType<typeof setTimeout>
  /** Announcements in a row that gossipsub sent to nobody. */
  private unheard = 0
  private started = false
  private stopped = false

  constructor (components: AnnouncerComponents) {
    this.components = components
  }

  /** Subscribes to the discovery topic, announces us, and re-announces every `interval`. Idempotent. */
  start (): void {
    if (this.started || this.stopped) return
    this.started = true
    // the relay answers the subscription with the room's current announcements
    this.components.pubsub.subscribe(this.components.topic)
    this.announce()
    this.timer = setInterval(() => { this.announce() }, this.components.interval)
  }

  /** Stops announcing; the topic stays subscribed until `leave()` or `unsubscribe()`. Idempotent. */
  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    clearTimeout(this.replyTimer)
    clearTimeout(this.retryTimer)
    this.timer = this.replyTimer = this.retryTimer = undefined
  }

  /** Announces our addresses now, if we have any (a relay reservation). */
  announce (): void {
    const { pubsub, topic, startedAt, log, room } = this.components
    const addrs = this.components.ownAddrs()
    if (this.stopped || addrs.length === 0) return
    pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'announce', addrs, t: startedAt }))
      .then(({ recipients }) => {
        log('announced in %s to %d peers', room, recipients.length)
        this.heard(recipients.length > 0)
      })
      .catch((err) => { log('announce in %s failed - %e', room, err) })
  }

  /**
   * An announcement that reached nobody (our gossipsub stream to the relay not open yet, though
   * the relay's subscription already reached us) is sent again soon, a bounded number of times.
   */
  private heard (reached: boolean): void {
    if (reached) {
      this.unheard = 0
      return
    }
    if (this.stopped || this.retryTimer !== undefined || ++this.unheard > ANNOUNCE_RETRY_ATTEMPTS) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.announce()
    }, ANNOUNCE_RETRY_MS)
  }

  /** Tells peers who only know us through the relay that we left. */
  async announceLeave (): Promise<void> {
    try {
      await this.components.pubsub.publish(this.components.topic, encodeAnnouncement({ v: 1, kind: 'leave' }))
    } catch (err) {
      this.components.log('could not announce leave of %s - %e', this.components.room, err)
    }
  }

  unsubscribe (): void {
    this.components.pubsub.unsubscribe(this.components.topic)
  }

  /** A gossipsub message: a member's announcement if it is a signed one on our topic. */
  onMessage (msg: Message): void {
    const { self, topic, log, onAnnounce, onLeave, isMember } = this.components
    if (this.stopped || msg.type !== 'signed' || msg.topic !== topic) return
    const from = msg.from.toString()
    if (from === self) return
    const a = decodeAnnouncement(msg.data, from)
    if (a === undefined) {
      log('dropping malformed announcement from %s', from)
      return
    }
    if (a.kind === 'leave') {
      onLeave(from)
      return
    }
    if (!isMember(from)) this.scheduleReply()
    onAnnounce(from, a.addrs, a.t)
  }

  /** A peer (un)subscribed to a topic: the relay following our topic may have missed our first announcement. */
  onSubscriptionChange (peer: string, topic: string, subscribe: boolean): void {
    const { self, isMember } = this.components
    if (this.stopped || peer === self) return
    if (topic === this.components.topic && subscribe && !isMember(peer)) this.announce()
  }

  /**
   * A newcomer announced: answer once, soon. The relay hands a newcomer the announcements it
   * holds, so this only matters when it holds none of ours (e.g. a room spanning relays).
   */
  private scheduleReply (): void {
    if (this.replyTimer !== undefined || this.stopped) return
    this.replyTimer = setTimeout(() => {
      this.replyTimer = undefined
      this.announce()
    }, REPLY_DELAY_MIN_MS + Math.random() * REPLY_DELAY_SPREAD_MS)
  }
}
