/**
 * The rules every member applies to a room's messages, in both directions: size and rate limits
 * (at the sender, and again at every receiver so a modified client cannot flood the others),
 * per-sender sequence numbers delivered once and in order with gaps reported, AES-GCM sealing in
 * private rooms, the drop counters, and the bounded mailbox of recent messages for late joiners.
 * It knows nothing of libp2p: the room feeds it bytes and acts on what it returns.
 */
import { CONTROL_BURST, CONTROL_MESSAGES_PER_SECOND, MAX_HELD_PER_SENDER, MAX_TRACKED_SENDERS, REORDER_WINDOW_MS } from './constants.js'
import { MessageTooLargeError, RateLimitedError } from './errors.js'
import { open, seal } from './private-room.js'
import { RateLimiter, TokenBucket } from './rate-limit.js'
import { Sequencer } from './sequence.js'
import { KIND_DATA, ROOM_HEADER_BYTES, decodeLabelled, decodeRoomMessage, encodeRoomHeader, sealedContext } from './wire.js'
import type { Gap, Release } from './sequence.js'
import type { RoomMessageKind } from './wire.js'

/** Why a receiver dropped a room message; the keys of `RoomStats.messages.dropped`. */
export type DropReason =
  /** not a room message of this version, or a body that does not parse */
  | 'malformed'
  /** payload over the room's `maxMessageBytes` */
  | 'tooLarge'
  /** over the sender's token bucket */
  | 'rateLimited'
  /** data from a member that is not the host of a `'one-way'` room */
  | 'notHost'
  /** failed AES-GCM authentication in a private room: wrong secret or tampered */
  | 'unauthenticated'
  /** a sequence number already delivered (a replay, or a backlog message also received live) */
  | 'duplicate'
  /** data that does not fit the session type: broadcast data in a pairwise room, or the reverse */
  | 'wrongType'
  /** a pairwise message or backlog request from a peer that is not a member */
  | 'notMember'

export const DROP_REASONS: DropReason[] = ['malformed', 'tooLarge', 'rateLimited', 'notHost', 'unauthenticated', 'duplicate', 'wrongType', 'notMember']

export interface MessageCounters {
  /** Data messages this member sent (`publish`, `send`). */
  sent: number
  /** Data messages delivered to the application (live and backlog). */
  received: number
  /** Messages dropped on receipt, by reason. */
  dropped: Record<DropReason, number>
  /** Sequence numbers never received (sum over `gap` events). */
  gaps: number
}

export interface RoomMessagesInit {
  /** The room topic: bound into a sealed body's authenticated data. */
  topic: string
  maxMessageBytes: number
  messagesPerSecond: number
  burst: number
  historySize: number
  /** AES-GCM key of a private room. */
  key?: CryptoKey
  now?: () => number
}

/** A room message that passed every check but the session-type ones, with its plaintext body. */
export interface OpenedMessage {
  kind: RoomMessageKind
  seq: number
  rank: number
  body: Uint8Array
  /** The message as it came, kept for the mailbox. */
  raw: Uint8Array
}

export interface Delivery {
  from: string
  seq: number
  data: Uint8Array
  /** Part of a backlog served to a late joiner. */
  history: boolean
  /** The message as it came, for the mailbox. */
  raw: Uint8Array
}

export class RoomMessages {
  readonly counters: MessageCounters = { sent: 0, received: 0, dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>, gaps: 0 }
  private readonly init: RoomMessagesInit
  private readonly ownBucket: TokenBucket
  private readonly dataLimiter: RateLimiter
  private readonly controlLimiter: RateLimiter
  /** broadcast messages by sender, and pairwise ones by `pair:<sender>` */
  private readonly sequencer: Sequencer<Delivery>
  private seq = 0
  private readonly pairSeq = new Map<string, number>()
  private readonly mailbox: Array<{ from: string, raw: Uint8Array }> = []
  /** rate-limited broadcast numbers, handed to the sequencer at the next flush */
  private readonly pendingSkips: Array<{ key: string, seq: number }> = []

  constructor (init: RoomMessagesInit) {
    this.init = init
    const now = init.now
    this.ownBucket = new TokenBucket({ rate: init.messagesPerSecond, burst: init.burst, now })
    this.dataLimiter = new RateLimiter({ rate: init.messagesPerSecond, burst: init.burst, maxKeys: MAX_TRACKED_SENDERS, now })
    this.controlLimiter = new RateLimiter({ rate: CONTROL_MESSAGES_PER_SECOND, burst: CONTROL_BURST, maxKeys: MAX_TRACKED_SENDERS, now })
    this.sequencer = new Sequencer<Delivery>({ reorderWindow: REORDER_WINDOW_MS, maxHeld: MAX_HELD_PER_SENDER, now })
  }

  get maxMessageBytes (): number {
    return this.init.maxMessageBytes
  }

  // --- sending ------------------------------------------------------------------------------

  /**
   * Checks a payload against the size limit and takes a token for it.
   *
   * @throws MessageTooLargeError, RateLimitedError
   */
  admit (payload: Uint8Array): void {
    if (payload.byteLength > this.init.maxMessageBytes) {
      throw new MessageTooLargeError(`message of ${payload.byteLength} bytes exceeds maxMessageBytes (${this.init.maxMessageBytes})`)
    }
    if (!this.ownBucket.take()) {
      const wait = Math.ceil(this.ownBucket.wait())
      throw new RateLimitedError(`over ${this.init.messagesPerSecond} messages/s (burst ${this.init.burst}); retry in ${wait} ms`, wait)
    }
  }

  /** The next sequence number of our broadcast messages, or of those to `peer` in a pairwise room. */
  nextSeq (peer?: string): number {
    if (peer === undefined) return ++this.seq
    const next = (this.pairSeq.get(peer) ?? 0) + 1
    this.pairSeq.set(peer, next)
    return next
  }

  /** Encodes (and in a private room seals) a message from `self`. */
  async encode (self: string, kind: RoomMessageKind, seq: number, rank: number, body: Uint8Array): Promise<Uint8Array> {
    const header = encodeRoomHeader({ kind, seq, rank })
    const sealed = this.init.key === undefined ? body : await seal(this.init.key, body, sealedContext(header, self, this.init.topic))
    const out = new Uint8Array(header.byteLength + sealed.byteLength)
    out.set(header)
    out.set(sealed, header.byteLength)
    return out
  }

  /** Our own data message: counted, and kept for late joiners when it went to the whole room. */
  sent (self: string, raw: Uint8Array, broadcast: boolean): void {
    this.counters.sent++
    if (broadcast) this.remember(self, raw)
  }

  // --- receiving ----------------------------------------------------------------------------

  /**
   * Decodes, rate-limits (unless `rateLimit` is false, for a backlog), size-checks and opens a
   * message from `from` (`pair`: a pairwise message, numbered per pair). Returns the reason when it is dropped, and counts it.
   */
  async open (from: string, raw: Uint8Array, opts: { rateLimit: boolean, pair: boolean }): Promise<OpenedMessage | DropReason> {
    const msg = decodeRoomMessage(raw)
    if (msg === undefined) return this.drop('malformed')
    if (opts.rateLimit) {
      const limiter = msg.kind === KIND_DATA ? this.dataLimiter : this.controlLimiter
      if (!limiter.take(from)) {
        // nothing waits for a number we dropped: it is a gap as soon as its turn comes
        if (msg.kind === KIND_DATA) this.pendingSkips.push({ key: opts.pair ? `pair:${from}` : from, seq: msg.seq })
        return this.drop('rateLimited')
      }
    }
    const sealedOverhead = this.init.key === undefined ? 0 : 28
    // a handoff body is a rank and a peer ID; data is bounded by the room's limit
    if (raw.byteLength - ROOM_HEADER_BYTES - sealedOverhead > this.init.maxMessageBytes) return this.drop('tooLarge')
    let body = msg.body
    if (this.init.key !== undefined) {
      const opened = await open(this.init.key, msg.body, sealedContext(msg.header, from, this.init.topic))
      if (opened === undefined) return this.drop('unauthenticated')
      body = opened
    }
    return { kind: msg.kind, seq: msg.seq, rank: msg.rank, body, raw }
  }

  drop (reason: DropReason): DropReason {
    this.counters.dropped[reason]++
    return reason
  }

  /**
   * Puts a data message in per-sender order. `pair` keys pairwise messages apart from the same
   * sender's broadcast ones (their numbers count per pair).
   */
  order (d: Delivery, pair = false): Release<Delivery> {
    // numbers dropped by the rate limit first: nothing after them waits for them
    const out = this.skipDropped()
    const result = this.sequencer.push(pair ? `pair:${d.from}` : d.from, d.seq, d)
    if (result.duplicate || result.invalid) this.drop('duplicate')
    const r = this.released(result)
    return { deliver: [...out.deliver, ...r.deliver], gaps: [...out.gaps, ...r.gaps] }
  }

  /** Releases messages that waited past the reorder window, and what rate-limited drops unblocked. */
  flush (): Release<Delivery> {
    const out = this.released(this.sequencer.flush())
    const skipped = this.skipDropped()
    return { deliver: [...out.deliver, ...skipped.deliver], gaps: [...out.gaps, ...skipped.gaps] }
  }

  private skipDropped (): Release<Delivery> {
    const out: Release<Delivery> = { deliver: [], gaps: [] }
    for (const { key, seq } of this.pendingSkips.splice(0)) {
      const r = this.released(this.sequencer.skip(key, seq))
      out.deliver.push(...r.deliver)
      out.gaps.push(...r.gaps)
    }
    return out
  }

  /** ms until `flush` has something to release, or undefined. */
  nextFlushIn (): number | undefined {
    return this.sequencer.nextFlushIn()
  }

  /** After a backlog that ended at `lastSeq` from `from`: its live messages continue from there. */
  continueAfter (from: string, lastSeq: number): Release<Delivery> {
    return this.released(this.sequencer.setExpected(from, lastSeq + 1))
  }

  /** Whether `seq` from `from` was already delivered or is held. */
  seen (from: string, seq: number): boolean {
    const expected = this.sequencer.expected(from)
    return expected !== undefined && seq < expected
  }

  forget (peer: string): void {
    this.sequencer.delete(peer)
    this.sequencer.delete(`pair:${peer}`)
    this.dataLimiter.delete(peer)
    this.controlLimiter.delete(peer)
    this.pairSeq.delete(peer)
  }

  /** A data message delivered: kept for late joiners, oldest dropped past `historySize` (0 in a pairwise room). */
  remember (from: string, raw: Uint8Array): void {
    if (this.init.historySize <= 0) return
    this.mailbox.push({ from, raw })
    if (this.mailbox.length > this.init.historySize) this.mailbox.shift()
  }

  /**
   * Checks a backlog a member served us (frames labelled with each message's sender) like live
   * messages, less the rate limit: what is malformed, unauthenticated, oversized or out of its
   * sender's order is dropped and counted. Returns what to deliver, in order, and the last seq
   * of each sender, where its live messages continue.
   */
  async openBacklog (self: string, frames: Uint8Array[]): Promise<{ backlog: Delivery[], last: Map<string, number> }> {
    const last = new Map<string, number>()
    const backlog: Delivery[] = []
    for (const frame of frames) {
      const labelled = decodeLabelled(frame)
      if (labelled === undefined) {
        this.drop('malformed')
        continue
      }
      const from = labelled.label
      if (from === self) continue
      const opened = await this.open(from, labelled.rest, { rateLimit: false, pair: false })
      if (typeof opened === 'string') continue
      if (opened.kind !== KIND_DATA) {
        this.drop('malformed')
        continue
      }
      if ((last.get(from) ?? 0) >= opened.seq) {
        this.drop('duplicate')
        continue
      }
      last.set(from, opened.seq)
      backlog.push({ from, seq: opened.seq, data: opened.body, history: true, raw: opened.raw })
    }
    this.counters.received += backlog.length
    return { backlog, last }
  }

  /** The mailbox, oldest first. */
  backlog (): Array<{ from: string, raw: Uint8Array }> {
    return [...this.mailbox]
  }

  private released (r: Release<Delivery>): Release<Delivery> {
    this.counters.received += r.deliver.length
    for (const g of r.gaps) this.counters.gaps += g.last - g.first + 1
    return { deliver: r.deliver, gaps: r.gaps.map((g) => ({ ...g, from: g.from.replace(/^pair:/, '') })) }
  }
}

export type { Gap }
