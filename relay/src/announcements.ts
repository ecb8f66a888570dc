/**
 * The latest announcement of each member of each followed room, so that a peer subscribing to a
 * room's discovery topic is handed the room's members at once: without it, a newcomer would wait
 * for each member's next announcement (up to 10 s) or for their replies to its own, and its own
 * announcement needs a reservation it may not hold yet.
 *
 * What is handed over is each announcement exactly as its sender signed it (a gossipsub
 * `StrictSign` message): the newcomer's gossipsub checks the signature and runs it through the
 * same path as any forwarded message, so the relay can neither forge nor alter a member. A private
 * room is cached under its topic ID like any other: the relay never learns its name.
 */
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { SignedMessage } from '@libp2p/gossipsub'

/** A gossipsub message as it travels in an RPC (`RPC.Message`), signed by its sender. */
export interface RawSignedMessage {
  from: Uint8Array
  data: Uint8Array
  seqno: Uint8Array
  topic: string
  signature: Uint8Array
  key: Uint8Array
}

export interface AnnouncementCacheInit {
  /** Announcements kept per room: its most recent senders. */
  maxPerRoom: number
  /** Announcements kept over every room; past it, new senders are not cached until some expire. */
  maxTotal: number
  /** An announcement older than this is not handed out (members re-announce every 10 s), in ms. */
  ttl: number
  now?: () => number
}

interface Entry {
  message: RawSignedMessage
  at: number
  /** it came straight from its sender, a client of this relay (not through a federated relay) */
  direct: boolean
}

export class AnnouncementCache {
  private readonly init: AnnouncementCacheInit
  private readonly rooms = new Map<string, Map<string, Entry>>()
  private readonly now: () => number
  private count = 0

  constructor (init: AnnouncementCacheInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  /** Announcements held, over every room. */
  get size (): number {
    return this.count
  }

  /** A valid `announce` from `msg.from` on `msg.topic`, received from `propagator`. */
  remember (msg: SignedMessage, propagator: string): void {
    let room = this.rooms.get(msg.topic)
    if (room === undefined) {
      room = new Map()
      this.rooms.set(msg.topic, room)
    }
    const sender = msg.from.toString()
    // most recent last: a sender that announces again moves to the end
    const known = room.delete(sender)
    if (!known && this.count >= this.init.maxTotal) {
      if (room.size === 0) this.rooms.delete(msg.topic)
      return
    }
    room.set(sender, { message: toRaw(msg), at: this.now(), direct: propagator === sender })
    if (!known) this.count++
    if (room.size > this.init.maxPerRoom) {
      room.delete(room.keys().next().value as string)
      this.count--
    }
  }

  /** `sender` left `topic` (a `leave` announcement, or its unsubscription). */
  forget (topic: string, sender: string): void {
    if (this.rooms.get(topic)?.delete(sender) === true) this.count--
  }

  /** The relay stopped following `topic`. */
  drop (topic: string): void {
    this.count -= this.rooms.get(topic)?.size ?? 0
    this.rooms.delete(topic)
  }

  /**
   * The announcements to hand a new subscriber of `topic`: fresh ones, not its own, and of the
   * relay's own clients only those still subscribed (`subscribed`).
   */
  snapshot (topic: string, subscriber: string, subscribed: (peer: string) => boolean): RawSignedMessage[] {
    const room = this.rooms.get(topic)
    if (room === undefined) return []
    const now = this.now()
    const out: RawSignedMessage[] = []
    for (const [sender, entry] of room) {
      if (now - entry.at > this.init.ttl) {
        room.delete(sender)
        this.count--
        continue
      }
      if (sender === subscriber || (entry.direct && !subscribed(sender))) continue
      out.push(entry.message)
    }
    return out
  }

  /** Forgets announcements older than the TTL. */
  expire (): void {
    const now = this.now()
    for (const [topic, room] of this.rooms) {
      for (const [sender, entry] of room) {
        if (now - entry.at <= this.init.ttl) continue
        room.delete(sender)
        this.count--
      }
      if (room.size === 0) this.rooms.delete(topic)
    }
  }

  clear (): void {
    this.rooms.clear()
    this.count = 0
  }
}

/** The RPC form of a signed message, as its sender signed it (gossipsub's `buildRawMessage`). */
function toRaw (msg: SignedMessage): RawSignedMessage {
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, msg.sequenceNumber, false)
  return { from: msg.from.toMultihash().bytes, data: msg.data, seqno, topic: msg.topic, signature: msg.signature, key: publicKeyToProtobuf(msg.key) }
}
