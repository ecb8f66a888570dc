/**
 * Per-sender ordering of room messages, with gap detection.
 *
 * Each sender numbers its messages 1, 2, 3… Gossip may deliver them late, twice, or out of
 * order; a receiver wants each message once, in its sender's order, and to know when some
 * never came. This follows the receive side of a sliding-window protocol (as in TCP's
 * reassembly queue, RFC 9293 §3.10.7.4): deliver the expected number and every consecutive
 * one held after it; hold later numbers for a bounded time (`reorderWindow`) and in bounded
 * number (`maxHeld`); past either bound, give up on the missing numbers and report them as a
 * gap instead of stalling the sender forever. Memory is bounded whatever senders send: held
 * entries per sender (`maxHeld`) and for all senders together (`maxHeldTotal`, `maxHeldBytes`),
 * and senders tracked (`maxSenders`, least recently used forgotten first, their held messages
 * released). Pure: no timers, the clock is injected.
 */

import { monotonicNow } from './clock.js'

export interface SequencerInit<T = unknown> {
  /** How long an out-of-order message waits for the missing ones before them, in ms. */
  reorderWindow: number
  /** Most messages (and skipped numbers) held per sender; beyond it the lowest missing ones are declared a gap. */
  maxHeld: number
  /** Most entries held for all senders together; beyond it the oldest held entry is released early. @default Infinity */
  maxHeldTotal?: number
  /** Most bytes (by `weight`) held for all senders together; same rule as `maxHeldTotal`. @default Infinity */
  maxHeldBytes?: number
  /** The bytes a held item costs, for `maxHeldBytes`. @default () => 0 */
  weight?: (item: T) => number
  /** Most senders tracked; beyond it the least recently used one is released and forgotten. @default Infinity */
  maxSenders?: number
  /** Clock in ms; defaults to `performance.now()`. Tests inject a fake one. */
  now?: () => number
}

/** Numbers `first`…`last` (inclusive) from `from` will never be delivered. */
export interface Gap {
  /** The sender, e.g. its peer ID. */
  from: string
  /** First missing seq. */
  first: number
  /** Last missing seq. */
  last: number
}

/** What became deliverable, in order: per sender, deliveries and gaps never overlap or go back. */
export interface Release<T> {
  deliver: Array<{ from: string, seq: number, item: T }>
  /** Adjacent missing numbers of one sender are merged into one gap. */
  gaps: Gap[]
}

/** The answer to `push`. */
export interface PushResult<T> extends Release<T> {
  /** `seq` was already delivered, held, skipped or declared missing; the message was dropped. */
  duplicate: boolean
  /** `seq` is not a positive safe integer; the message was dropped and changed nothing. */
  invalid: boolean
}

/** A number above the expected one: a message waiting for the ones before it, or a skipped number. */
type Pending<T> = { at: number } & ({ skipped: false, item: T } | { skipped: true })

interface Sender<T> {
  /** The next seq to deliver; everything below it is delivered or declared missing. */
  expected: number
  pending: Map<number, Pending<T>>
}

const isSeq = (seq: number): boolean => Number.isSafeInteger(seq) && seq > 0

/**
 * Orders messages per sender. Senders are tracked until `delete` (call it when a member leaves)
 * or until `maxSenders` others were used since.
 * Throws `RangeError` if `reorderWindow` is negative or `maxHeld` not an integer >= 0.
 */
export class Sequencer<T> {
  readonly #reorderWindow: number
  readonly #maxHeld: number
  readonly #maxHeldTotal: number
  readonly #maxHeldBytes: number
  readonly #maxSenders: number
  readonly #weight: (item: T) => number
  readonly #now: () => number
  // a Map iterates in insertion order; re-inserting on use keeps the least recently used first
  readonly #senders = new Map<string, Sender<T>>()
  /** senders holding at least one entry, so flushes never walk idle senders */
  readonly #waiting = new Set<string>()
  #heldTotal = 0
  #heldBytes = 0

  constructor (init: SequencerInit<T>) {
    if (!Number.isFinite(init.reorderWindow) || init.reorderWindow < 0) {
      throw new RangeError(`reorderWindow must be a finite number of ms >= 0, got ${init.reorderWindow}`)
    }
    if (!Number.isSafeInteger(init.maxHeld) || init.maxHeld < 0) {
      throw new RangeError(`maxHeld must be an integer >= 0, got ${init.maxHeld}`)
    }
    this.#reorderWindow = init.reorderWindow
    this.#maxHeld = init.maxHeld
    this.#maxHeldTotal = init.maxHeldTotal ?? Infinity
    this.#maxHeldBytes = init.maxHeldBytes ?? Infinity
    this.#maxSenders = init.maxSenders ?? Infinity
    this.#weight = init.weight ?? (() => 0)
    this.#now = init.now ?? monotonicNow
  }

  /** Entries held now, for all senders, and their bytes (by `weight`). */
  get held (): { entries: number, bytes: number, senders: number } {
    return { entries: this.#heldTotal, bytes: this.#heldBytes, senders: this.#senders.size }
  }

  /**
   * Offers message `seq` from `from`. Returns what is now deliverable, in order, plus gaps.
   * The first number ever seen from a sender is its baseline: no gap is reported for the
   * numbers before it (a member joining late missed them, it did not lose them), unless
   * `setExpected` set an earlier one.
   */
  push (from: string, seq: number, item: T): PushResult<T> {
    if (!isSeq(seq)) return { deliver: [], gaps: [], duplicate: false, invalid: true }
    const out: Release<T> = { deliver: [], gaps: [] }
    const sender = this.#sender(from, seq, out)
    if (seq < sender.expected || sender.pending.has(seq)) return { ...out, duplicate: true, invalid: false }

    if (seq === sender.expected) {
      out.deliver.push({ from, seq, item })
      sender.expected++
      this.#drain(from, sender, out)
    } else {
      this.#hold(from, sender, seq, { at: this.#now(), skipped: false, item })
      this.#bound(from, sender, out)
    }
    return { ...out, duplicate: false, invalid: false }
  }

  /**
   * `seq` from `from` was dropped on purpose (e.g. rate-limited): nothing waits for it, and it
   * is reported as a gap as soon as its turn comes. No-op for an invalid `seq` or one already
   * delivered, held, skipped or declared missing.
   */
  skip (from: string, seq: number): Release<T> {
    const out: Release<T> = { deliver: [], gaps: [] }
    if (!isSeq(seq)) return out
    const sender = this.#sender(from, seq, out)
    if (seq < sender.expected || sender.pending.has(seq)) return out

    if (seq === sender.expected) {
      this.#gap(out, from, seq, seq)
      sender.expected++
      this.#drain(from, sender, out)
    } else {
      this.#hold(from, sender, seq, { at: this.#now(), skipped: true })
      this.#bound(from, sender, out)
    }
    return out
  }

  /**
   * Releases every message that has waited `reorderWindow` ms or more, with the messages held
   * before it, declaring the numbers still missing before them a gap. Call it periodically,
   * e.g. after `nextFlushIn()` ms.
   */
  flush (): Release<T> {
    const out: Release<T> = { deliver: [], gaps: [] }
    const now = this.#now()
    for (const from of [...this.#waiting]) {
      const sender = this.#senders.get(from) as Sender<T>
      // the highest expired number decides: everything below it has waited at least as long
      let target: number | undefined
      for (const [seq, pending] of sender.pending) {
        if (now - pending.at >= this.#reorderWindow && (target == null || seq > target)) target = seq
      }
      if (target != null) this.#advanceTo(from, sender, target, out)
    }
    return out
  }

  /** The next seq expected from `from`, or undefined if nothing was seen or set for it. */
  expected (from: string): number | undefined {
    return this.#senders.get(from)?.expected
  }

  /**
   * Start expecting `next` from `from`, e.g. after a history backlog that ended at `next - 1`:
   * held messages below `next` are discarded as duplicates, and held ones from `next` on are
   * delivered if now consecutive. Never moves back: numbers at or above the current expected
   * one may already be delivered, and delivering them again would break "once".
   * Throws `RangeError` if `next` is not a positive safe integer.
   */
  setExpected (from: string, next: number): Release<T> {
    if (!isSeq(next)) throw new RangeError(`next must be a positive safe integer, got ${next}`)
    const out: Release<T> = { deliver: [], gaps: [] }
    const sender = this.#senders.get(from)
    if (sender == null) {
      this.#senders.set(from, { expected: next, pending: new Map() })
      return out
    }
    if (next <= sender.expected) return out
    for (const seq of [...sender.pending.keys()]) {
      if (seq < next) this.#unhold(from, sender, seq)
    }
    sender.expected = next
    this.#drain(from, sender, out)
    return out
  }

  /** Forgets a sender (it left): its held messages are dropped, and its next message is a new baseline. */
  delete (from: string): void {
    const sender = this.#senders.get(from)
    if (sender == null) return
    for (const seq of [...sender.pending.keys()]) this.#unhold(from, sender, seq)
    this.#senders.delete(from)
  }

  /**
   * Forgets a sender whose numbering restarted (a new session): what it held is released first,
   * the numbers still missing before it reported as a gap, and its next message is a new baseline.
   */
  retire (from: string): Release<T> {
    const out: Release<T> = { deliver: [], gaps: [] }
    const sender = this.#senders.get(from)
    if (sender == null) return out
    this.#releaseAll(from, sender, out)
    this.#senders.delete(from)
    return out
  }

  /** Ms until the earliest held message (or skipped number) is due for `flush`, 0 if overdue; undefined if none is held. */
  nextFlushIn (): number | undefined {
    let earliest: number | undefined
    for (const from of this.#waiting) {
      for (const pending of (this.#senders.get(from) as Sender<T>).pending.values()) {
        if (earliest == null || pending.at < earliest) earliest = pending.at
      }
    }
    if (earliest == null) return undefined
    return Math.max(0, earliest + this.#reorderWindow - this.#now())
  }

  #sender (from: string, baseline: number, out: Release<T>): Sender<T> {
    let sender = this.#senders.get(from)
    if (sender == null) {
      sender = { expected: baseline, pending: new Map() }
      if (this.#senders.size >= this.#maxSenders) {
        const [oldest, evicted] = this.#senders.entries().next().value as [string, Sender<T>]
        this.#releaseAll(oldest, evicted, out)
        this.#senders.delete(oldest)
      }
    } else {
      this.#senders.delete(from)
    }
    this.#senders.set(from, sender)
    return sender
  }

  #hold (from: string, sender: Sender<T>, seq: number, pending: Pending<T>): void {
    sender.pending.set(seq, pending)
    this.#waiting.add(from)
    this.#heldTotal++
    if (!pending.skipped) this.#heldBytes += this.#weight(pending.item)
  }

  #unhold (from: string, sender: Sender<T>, seq: number): Pending<T> | undefined {
    const pending = sender.pending.get(seq)
    if (pending == null) return undefined
    sender.pending.delete(seq)
    if (sender.pending.size === 0) this.#waiting.delete(from)
    this.#heldTotal--
    if (!pending.skipped) this.#heldBytes -= this.#weight(pending.item)
    return pending
  }

  /** Gives up on everything `sender` waits for: releases all it holds. */
  #releaseAll (from: string, sender: Sender<T>, out: Release<T>): void {
    let highest: number | undefined
    for (const seq of sender.pending.keys()) highest = Math.max(highest ?? seq, seq)
    if (highest != null) this.#advanceTo(from, sender, highest, out)
  }

  /** Delivers (or reports skipped) the pending numbers that follow `expected` without a hole. */
  #drain (from: string, sender: Sender<T>, out: Release<T>): void {
    for (let next = sender.pending.get(sender.expected); next != null; next = sender.pending.get(sender.expected)) {
      const seq = sender.expected
      this.#unhold(from, sender, seq)
      if (next.skipped) this.#gap(out, from, seq, seq)
      else out.deliver.push({ from, seq, item: next.item })
      sender.expected++
    }
  }

  /** Gives up on every missing number up to `target` (a pending one), releasing what is held up to it. */
  #advanceTo (from: string, sender: Sender<T>, target: number, out: Release<T>): void {
    // walk the held numbers, not the range: a sender may jump ahead by billions
    const due = [...sender.pending.keys()].filter(seq => seq <= target).sort((a, b) => a - b)
    for (const seq of due) {
      // already released by the drain after a lower one
      if (seq < sender.expected) continue
      if (seq > sender.expected) this.#gap(out, from, sender.expected, seq - 1)
      sender.expected = seq
      this.#drain(from, sender, out)
    }
  }

  /**
   * Past `maxHeld` for this sender, waiting longer would only grow memory: release from its lowest
   * held number. Past `maxHeldTotal` or `maxHeldBytes` for all senders: release the entry held
   * longest, wherever it is (the reorder window would release it first anyway).
   */
  #bound (from: string, sender: Sender<T>, out: Release<T>): void {
    while (sender.pending.size > this.#maxHeld) {
      let lowest = Infinity
      for (const seq of sender.pending.keys()) lowest = Math.min(lowest, seq)
      this.#advanceTo(from, sender, lowest, out)
    }
    while (this.#heldTotal > this.#maxHeldTotal || this.#heldBytes > this.#maxHeldBytes) {
      let oldest: { from: string, seq: number, at: number } | undefined
      for (const id of this.#waiting) {
        for (const [seq, pending] of (this.#senders.get(id) as Sender<T>).pending) {
          if (oldest == null || pending.at < oldest.at) oldest = { from: id, seq, at: pending.at }
        }
      }
      if (oldest == null) break
      this.#advanceTo(oldest.from, this.#senders.get(oldest.from) as Sender<T>, oldest.seq, out)
    }
  }

  /** Adds a gap, merged with the previous one when they touch, so a burst of losses reads as one. */
  #gap (out: Release<T>, from: string, first: number, last: number): void {
    const prev = out.gaps.at(-1)
    if (prev != null && prev.from === from && prev.last + 1 === first) {
      prev.last = last
    } else {
      out.gaps.push({ from, first, last })
    }
  }
}
