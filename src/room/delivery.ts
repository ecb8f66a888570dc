/**
 * Delivery to the application: messages in each sender's order as `message` events, missing
 * numbers as `gap` events, and the timer that releases what waited too long for the messages
 * before it (room-messages.ts orders; this hands over). Each delivered message also goes to the
 * mailbox, so a backlog we serve is in each sender's order too.
 */
import type { RoomMessage } from '../index.js'
import type { Delivery as Message, RoomMessages } from '../room-messages.js'
import type { Gap, Release } from '../sequence.js'
import type { Startable } from '@libp2p/interface'

/** What delivery needs of its room. */
export interface DeliveryComponents {
  /** The room's name: the `topic` of each `message` event. */
  room: string
  messages: Pick<RoomMessages, 'order' | 'flush' | 'nextFlushIn' | 'remember'>
  onMessage: (message: RoomMessage) => void
  onGap: (gap: Gap) => void
}

export class Delivery implements Startable {
  private readonly components: DeliveryComponents
  private flushTimer?: ReturnType<typeof setTimeout>
  private stopped = false

  constructor (components: DeliveryComponents) {
    this.components = components
  }

  /** Nothing to start: the flush timer runs only while messages wait. */
  start (): void {}

  /** Drops the flush timer; nothing is delivered after. Idempotent. */
  stop (): void {
    this.stopped = true
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
  }

  /** A live message (or, in a pairwise room, one addressed to us): ordered, then delivered. */
  receive (message: Message, pair: boolean): void {
    this.release(this.components.messages.order(message, pair))
  }

  /** Hands messages to the application in order, and to the mailbox then (a pairwise room keeps none). */
  release (r: Release<Message>): void {
    const { messages, onGap, onMessage, room } = this.components
    for (const gap of r.gaps) onGap(gap)
    for (const { item } of r.deliver) {
      messages.remember(item.from, item.raw)
      onMessage({ from: item.from, data: item.data, seq: item.seq, history: item.history, topic: room })
    }
    this.scheduleFlush()
  }

  /** Releases, once it is due, what waits for earlier messages (or counts rate-limited numbers as gaps). */
  scheduleFlush (): void {
    if (this.flushTimer !== undefined || this.stopped) return
    const wait = this.components.messages.nextFlushIn()
    if (wait === undefined) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.release(this.components.messages.flush())
    }, Math.max(0, wait) + 1)
  }
}
