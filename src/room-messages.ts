/**
 * The rules every member applies to a room's messages, in both directions: size and rate limits
 * (at the sender, and again at every receiver so a modified client cannot flood the others),
 * per-sender sequence numbers delivered once and in order with gaps reported (merged), sender
 * sessions (incarnations), AES-GCM sealing in private rooms, the drop counters, the bounded
 * mailbox of recent messages for late joiners and the quota of backlog requests.
 * It knows nothing of libp2p: the room feeds it bytes and acts on what it returns.
 *
 * Memory is bounded whatever a member sends: per sender, the token buckets, the sequencer's held
 * messages (`MAX_HELD_PER_SENDER`) and one merged gap; per room, the senders tracked
 * (`MAX_TRACKED_SENDERS`), the held messages of all senders (`MAX_HELD_PER_ROOM`,
 * `MAX_HELD_BYTES_PER_ROOM`), the mailbox (`historySize`) and the backlog's duplicate check (at
 * most `historySize` entries, for `HISTORY_TIMEOUT_MS`). A message dropped by a limit leaves no
 * trace but a counter and its number's share of a merged gap.
 */
import { monotonicNow } from './clock.js'
import {
  CONTROL_BURST, CONTROL_MESSAGES_PER_SECOND, HISTORY_TIMEOUT_MS, MAX_CONTROL_BODY_BYTES, MAX_HELD_BYTES_PER_ROOM, MAX_HELD_PER_ROOM, MAX_HELD_PER_SENDER,
  MAX_CACHED_SENDER_KEYS, MAX_RETIRED_INCARNATIONS, MAX_TRACKED_SENDERS, REORDER_WINDOW_MS
} from './constants.js'
import { MessageTooLargeError, RateLimitedError } from './errors.js'
import { SEALED_OVERHEAD_BYTES, open, seal, senderKey } from './private-room.js'
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
  /**
   * a sequence number already delivered (a replay, or a backlog message also received live), or
   * a late message of a session its member has since restarted (reloaded)
   */
  | 'duplicate'
  /** data that does not fit the session type: broadcast data in a pairwise room, or the reverse */
  | 'wrongType'
  /** a pairwise message or backlog request from a peer that is not a member */
  | 'notMember'

export const DROP_REASONS: DropReason[] = ['malformed', 'tooLarge', 'rateLimited', 'notHost', 'unauthenticated', 'duplicate', 'wrongType', 'notMember']

/** Why a member refused to serve a backlog request; the keys of `RoomStats.history.refused`. */
export type HistoryRefusal =
  /** the requester asked more often than `historyRequestsPerMinute` */
  | 'rateLimited'
  /** the requester is not a joined member of the room */
  | 'notMember'
  /** the request does not parse */
  | 'malformed'

export const HISTORY_REFUSALS: HistoryRefusal[] = ['rateLimited', 'notMember', 'malformed']

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

export interface HistoryCounters {
  /** Backlog requests answered. */
  served: number
  /** Backlog requests refused, by reason. */
  refused: Record<HistoryRefusal, number>
  /** Backlog responses aborted because the requester did not read them within `HISTORY_WRITE_TIMEOUT_MS`. */
  writeTimeouts: number
}

export interface RoomMessagesInit {
  /** The room topic: bound into a sealed body's authenticated data. */
  topic: string
  maxMessageBytes: number
  messagesPerSecond: number
  burst: number
  historySize: number
  /** Backlog requests served per requester and minute. */
  historyRequestsPerMinute: number
  /** HKDF master key of a private room, from which each sender session's AES-GCM key comes. */
  master?: CryptoKey
  /** Our session in this room (uint32); random when absent. */
  incarnation?: number
  /** Monotonic clock in ms; `performance.now()` when absent. */
  now?: () => number
}

/** A room message that passed every check but the session-type ones, with its plaintext body. */
export interface OpenedMessage {
  kind: RoomMessageKind
  seq: number
  rank: number
  settled: boolean
  /** The sender held no backlog of the room, this message aside (`FLAG_NO_BACKLOG`). */
  noBacklog: boolean
  incarnation: number
  body: Uint8Array
  /** The message as it came, kept for the mailbox. */
  raw: Uint8Array
  /** The first message of a new session of a sender we knew: it restarted (reloaded). */
  restarted: boolean
}

export interface OpenOptions {
  /**
   * The token bucket to charge: the sender's peer ID, or a key shared by every sender reaching
   * us only through others. Absent: not rate-limited.
   */
  rateKey?: string
  /** A pairwise message, numbered per pair. */
  pair: boolean
  /** This receiver takes no data from this sender here: data is dropped for this reason first, before it costs anything. */
  refuseData?: 'notHost' | 'wrongType'
}

export interface Delivery {
  from: string
  seq: number
  data: Uint8Array
  /** Part of a backlog served to a late joiner. */
  history: boolean
  /** The message as it came, for the mailbox. */
  raw: Uint8Array
  /** The sender's session, for the backlog's duplicate check. */
  incarnation: number
}

interface Session {
  incarnation: number
  /** earlier incarnations, newest last, at most MAX_RETIRED_INCARNATIONS */
  retired: number[]
}

export class RoomMessages {
  readonly counters: MessageCounters = { sent: 0, received: 0, dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>, gaps: 0 }
  readonly history: HistoryCounters = { served: 0, refused: Object.fromEntries(HISTORY_REFUSALS.map((r) => [r, 0])) as Record<HistoryRefusal, number>, writeTimeouts: 0 }
  /** Our session in this room, in the header of everything we send. */
  readonly incarnation: number
  private readonly init: RoomMessagesInit
  private readonly now: () => number
  private readonly ownBucket: TokenBucket
  private readonly dataLimiter: RateLimiter
  private readonly controlLimiter: RateLimiter
  private readonly historyLimiter: RateLimiter
  /** broadcast messages by sender, and pairwise ones by `pair:<sender>` */
  private readonly sequencer: Sequencer<Delivery>
  /** each sender's session, least recently seen first */
  private readonly sessions = new Map<string, Session>()
  private readonly keys = new Map<string, Promise<CryptoKey>>()
  private seq = 0
  private readonly pairSeq = new Map<string, number>()
  private readonly mailbox: Array<{ from: string, raw: Uint8Array }> = []
  /** what became deliverable, waiting for the room to take it (`order`, `flush`) */
  private readonly outbox: Release<Delivery> = { deliver: [], gaps: [] }
  /** per sequencer key, the gap still growing: adjacent missing numbers are one `gap` event */
  private readonly openGaps = new Map<string, { gap: Gap, since: number }>()
  /** `from/incarnation/seq` of messages delivered from a backlog → their bytes, oldest first */
  private readonly fromBacklog = new Map<string, { raw: Uint8Array, at: number }>()

  constructor (init: RoomMessagesInit) {
    this.init = init
    this.now = init.now ?? monotonicNow
    const now = this.now
    this.incarnation = init.incarnation ?? globalThis.crypto.getRandomValues(new Uint32Array(1))[0]
    this.ownBucket = new TokenBucket({ rate: init.messagesPerSecond, burst: init.burst, now })
    this.dataLimiter = new RateLimiter({ rate: init.messagesPerSecond, burst: init.burst, maxKeys: MAX_TRACKED_SENDERS, now })
    this.controlLimiter = new RateLimiter({ rate: CONTROL_MESSAGES_PER_SECOND, burst: CONTROL_BURST, maxKeys: MAX_TRACKED_SENDERS, now })
    this.historyLimiter = new RateLimiter({ rate: init.historyRequestsPerMinute / 60, burst: init.historyRequestsPerMinute, maxKeys: MAX_TRACKED_SENDERS, now })
    this.sequencer = new Sequencer<Delivery>({
      reorderWindow: REORDER_WINDOW_MS,
      maxHeld: MAX_HELD_PER_SENDER,
      maxHeldTotal: MAX_HELD_PER_ROOM,
      maxHeldBytes: MAX_HELD_BYTES_PER_ROOM,
      // counted twice when the body is a view of the raw bytes: a bound, not an account
      weight: (d) => d.raw.byteLength + d.data.byteLength,
      maxSenders: MAX_TRACKED_SENDERS,
      now
    })
  }

  get maxMessageBytes (): number {
    return this.init.maxMessageBytes
  }

  /** What is held now, for tests and benchmarks: sequencer entries and bytes, senders, open gaps, outbox, backlog checks. */
  get retained (): { held: number, heldBytes: number, senders: number, sessions: number, openGaps: number, outbox: number, backlogChecks: number, mailbox: number } {
    const h = this.sequencer.held
    return {
      held: h.entries,
      heldBytes: h.bytes,
      senders: h.senders,
      sessions: this.sessions.size,
      openGaps: this.openGaps.size,
      outbox: this.outbox.deliver.length + this.outbox.gaps.length,
      backlogChecks: this.fromBacklog.size,
      mailbox: this.mailbox.length
    }
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

  /**
   * Encodes (and in a private room seals, with our session's key) a message from `self`. Its
   * header says whether our mailbox is empty (`FLAG_NO_BACKLOG`): a joiner then has nothing to ask us.
   */
  async encode (self: string, h: { kind: RoomMessageKind, seq: number, rank: number, settled: boolean }, body: Uint8Array): Promise<Uint8Array> {
    const header = encodeRoomHeader({ ...h, noBacklog: this.mailbox.length === 0, incarnation: this.incarnation })
    const sealed = this.init.master === undefined ? body : await seal(await this.keyFor(self, this.incarnation), body, sealedContext(header, self, this.init.topic))
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
   * Decodes, refuses unwanted data, rate-limits, size-checks, opens (private room) and checks the
   * session of a message from `from`. Returns the reason when it is dropped, and counts it. A
   * data message dropped by the rate limit is a gap at once: nothing waits for its number.
   */
  async open (from: string, raw: Uint8Array, opts: OpenOptions): Promise<OpenedMessage | DropReason> {
    const msg = decodeRoomMessage(raw)
    if (msg === undefined) return this.drop('malformed')
    const isData = msg.kind === KIND_DATA
    if (isData && opts.refuseData !== undefined) return this.drop(opts.refuseData)
    if (opts.rateKey !== undefined) {
      const limiter = isData ? this.dataLimiter : this.controlLimiter
      if (!limiter.take(opts.rateKey)) {
        const session = this.sessions.get(from)
        // an unauthenticated number of another session must not touch the sender's state
        if (isData && (session === undefined || session.incarnation === msg.incarnation)) {
          this.absorb(this.sequencer.skip(seqKey(from, opts.pair), msg.seq))
        }
        return this.drop('rateLimited')
      }
    }
    const sealedOverhead = this.init.master === undefined ? 0 : SEALED_OVERHEAD_BYTES
    // data is bounded by the room's limit, heartbeats and handoffs by their own
    if (raw.byteLength - ROOM_HEADER_BYTES - sealedOverhead > (isData ? this.init.maxMessageBytes : MAX_CONTROL_BODY_BYTES)) return this.drop('tooLarge')
    let body = msg.body
    if (this.init.master !== undefined) {
      const opened = await open(await this.keyFor(from, msg.incarnation), msg.body, sealedContext(msg.header, from, this.init.topic))
      if (opened === undefined) return this.drop('unauthenticated')
      body = opened
    }
    const restarted = this.session(from, msg.incarnation)
    // a late message of the session it restarted from: a replay, as far as this one is concerned
    if (restarted === undefined) return this.drop('duplicate')
    return { kind: msg.kind, seq: msg.seq, rank: msg.rank, settled: msg.settled, noBacklog: msg.noBacklog === true, incarnation: msg.incarnation, body, raw, restarted }
  }

  drop (reason: DropReason): DropReason {
    this.counters.dropped[reason]++
    return reason
  }

  /**
   * Puts a data message in per-sender order, and returns everything deliverable now, including
   * what earlier drops and restarts released. `pair` keys pairwise messages apart from the same
   * sender's broadcast ones (their numbers count per pair). A live message that a backlog
   * already delivered, byte for byte, is a duplicate; nothing else a backlog did changes how
   * live messages are delivered.
   */
  order (d: Delivery, pair = false): Release<Delivery> {
    this.expireBacklogChecks()
    const key = `${d.from}/${d.incarnation}/${d.seq}`
    const twin = this.fromBacklog.get(key)
    if (!d.history && twin !== undefined && equalBytes(twin.raw, d.raw)) {
      this.fromBacklog.delete(key)
      this.drop('duplicate')
      return this.take()
    }
    const result = this.sequencer.push(seqKey(d.from, pair), d.seq, d)
    if (result.duplicate || result.invalid) this.drop('duplicate')
    this.absorb(result)
    return this.take()
  }

  /** Releases messages that waited past the reorder window, gaps that stopped growing, and what drops released. */
  flush (): Release<Delivery> {
    this.absorb(this.sequencer.flush())
    const now = this.now()
    for (const [key, open] of [...this.openGaps]) {
      if (now - open.since >= REORDER_WINDOW_MS) this.closeGap(key)
    }
    this.expireBacklogChecks()
    return this.take()
  }

  /** ms until `flush` has something to release (0: now), or undefined. */
  nextFlushIn (): number | undefined {
    if (this.outbox.deliver.length > 0 || this.outbox.gaps.length > 0) return 0
    let wait = this.sequencer.nextFlushIn()
    const now = this.now()
    for (const { since } of this.openGaps.values()) {
      const due = Math.max(0, since + REORDER_WINDOW_MS - now)
      if (wait === undefined || due < wait) wait = due
    }
    return wait
  }

  forget (peer: string): void {
    for (const key of [peer, `pair:${peer}`]) {
      this.sequencer.delete(key)
      this.openGaps.delete(key)
    }
    this.dataLimiter.delete(peer)
    this.controlLimiter.delete(peer)
    this.historyLimiter.delete(peer)
    this.pairSeq.delete(peer)
    this.sessions.delete(peer)
  }

  /** A data message delivered: kept for late joiners, oldest dropped past `historySize` (0 in a pairwise room). */
  remember (from: string, raw: Uint8Array): void {
    if (this.init.historySize <= 0) return
    this.mailbox.push({ from, raw })
    if (this.mailbox.length > this.init.historySize) this.mailbox.shift()
  }

  // --- backlog ------------------------------------------------------------------------------

  /**
   * Checks a backlog a member served us (frames labelled with each message's sender) like live
   * messages, less the rate limit: what is malformed, unauthenticated, oversized or out of its
   * sender session's order is dropped and counted; at most `historySize` frames are looked at.
   * Returns what to deliver, in order. It touches no live state: a backlog cannot change how a
   * member's live messages are numbered, ordered or delivered, only which of them are
   * recognised as copies of a backlog message (same sender, session, number and bytes) for
   * `HISTORY_TIMEOUT_MS`.
   */
  async openBacklog (self: string, frames: Uint8Array[]): Promise<Delivery[]> {
    const last = new Map<string, number>()
    const backlog: Delivery[] = []
    for (const frame of frames.slice(-Math.max(0, this.init.historySize))) {
      const labelled = decodeLabelled(frame)
      if (labelled === undefined) {
        this.drop('malformed')
        continue
      }
      const from = labelled.label
      if (from === self) continue
      const opened = await this.openUnsequenced(from, labelled.rest)
      if (opened === undefined) continue
      const session = `${from}/${opened.incarnation}`
      if ((last.get(session) ?? 0) >= opened.seq) {
        this.drop('duplicate')
        continue
      }
      last.set(session, opened.seq)
      backlog.push({ from, seq: opened.seq, data: opened.body, history: true, raw: opened.raw, incarnation: opened.incarnation })
    }
    const at = this.now()
    for (const d of backlog) this.fromBacklog.set(`${d.from}/${d.incarnation}/${d.seq}`, { raw: d.raw, at })
    this.counters.received += backlog.length
    return backlog
  }

  /** The mailbox, oldest first, at most the newest `max` messages. */
  backlog (max = Infinity): Array<{ from: string, raw: Uint8Array }> {
    return max >= this.mailbox.length ? [...this.mailbox] : this.mailbox.slice(this.mailbox.length - max)
  }

  /** Takes a token for a backlog request from `peer`: false when it asks too often. */
  admitHistoryRequest (peer: string): boolean {
    return this.historyLimiter.take(peer)
  }

  // --- internals ----------------------------------------------------------------------------

  /** `open` for a backlog frame: no rate limit, no session state; data only. */
  private async openUnsequenced (from: string, raw: Uint8Array): Promise<{ seq: number, incarnation: number, body: Uint8Array, raw: Uint8Array } | undefined> {
    const msg = decodeRoomMessage(raw)
    if (msg === undefined || msg.kind !== KIND_DATA) {
      this.drop('malformed')
      return undefined
    }
    const sealedOverhead = this.init.master === undefined ? 0 : SEALED_OVERHEAD_BYTES
    if (raw.byteLength - ROOM_HEADER_BYTES - sealedOverhead > this.init.maxMessageBytes) {
      this.drop('tooLarge')
      return undefined
    }
    let body = msg.body
    if (this.init.master !== undefined) {
      const opened = await open(await this.keyFor(from, msg.incarnation), msg.body, sealedContext(msg.header, from, this.init.topic))
      if (opened === undefined) {
        this.drop('unauthenticated')
        return undefined
      }
      body = opened
    }
    return { seq: msg.seq, incarnation: msg.incarnation, body, raw }
  }

  /**
   * Tracks `from`'s session: returns whether `incarnation` starts a new one (the sender
   * restarted; its old numbering is released and forgotten), or undefined for an earlier,
   * retired one.
   */
  private session (from: string, incarnation: number): boolean | undefined {
    const session = this.sessions.get(from)
    if (session !== undefined) this.sessions.delete(from)
    if (session === undefined || session.incarnation === incarnation) {
      this.sessions.set(from, session ?? { incarnation, retired: [] })
      if (session === undefined && this.sessions.size > MAX_TRACKED_SENDERS) {
        this.sessions.delete(this.sessions.keys().next().value as string)
      }
      return false
    }
    this.sessions.set(from, session)
    if (session.retired.includes(incarnation)) return undefined
    session.retired.push(session.incarnation)
    if (session.retired.length > MAX_RETIRED_INCARNATIONS) session.retired.shift()
    session.incarnation = incarnation
    for (const key of [from, `pair:${from}`]) {
      this.absorb(this.sequencer.retire(key))
      this.closeGap(key)
    }
    return true
  }

  private async keyFor (sender: string, incarnation: number): Promise<CryptoKey> {
    const id = `${sender}/${incarnation}`
    let key = this.keys.get(id)
    if (key === undefined) {
      key = senderKey(this.init.master as CryptoKey, sender, incarnation)
      if (this.keys.size >= MAX_CACHED_SENDER_KEYS) this.keys.delete(this.keys.keys().next().value as string)
      // a failed derivation is not cached
      key.catch(() => { if (this.keys.get(id) === key) this.keys.delete(id) })
    } else {
      this.keys.delete(id)
    }
    this.keys.set(id, key)
    return key
  }

  /**
   * Moves what the sequencer released into the outbox: gaps merge with the sender's open gap
   * when adjacent, and a sender's open gap goes out before its next delivered message.
   */
  private absorb (r: Release<Delivery>): void {
    for (const gap of r.gaps) {
      this.counters.gaps += gap.last - gap.first + 1
      const open = this.openGaps.get(gap.from)
      if (open !== undefined && open.gap.last + 1 === gap.first) {
        open.gap.last = gap.last
        continue
      }
      this.closeGap(gap.from)
      this.openGaps.set(gap.from, { gap: { ...gap }, since: this.now() })
      if (this.openGaps.size > MAX_TRACKED_SENDERS) this.closeGap(this.openGaps.keys().next().value as string)
    }
    for (const d of r.deliver) {
      this.closeGap(d.from)
      this.counters.received++
      this.outbox.deliver.push(d)
    }
  }

  private closeGap (key: string): void {
    const open = this.openGaps.get(key)
    if (open === undefined) return
    this.openGaps.delete(key)
    this.outbox.gaps.push({ ...open.gap, from: open.gap.from.replace(/^pair:/, '') })
  }

  private take (): Release<Delivery> {
    return { deliver: this.outbox.deliver.splice(0), gaps: this.outbox.gaps.splice(0) }
  }

  private expireBacklogChecks (): void {
    const now = this.now()
    for (const [key, { at }] of this.fromBacklog) {
      if (now - at < HISTORY_TIMEOUT_MS) break
      this.fromBacklog.delete(key)
    }
  }
}

function seqKey (from: string, pair: boolean): string {
  return pair ? `pair:${from}` : from
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export type { Gap }
