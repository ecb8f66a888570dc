import { describe, expect, it } from 'vitest'
import { Sequencer } from '../../src/sequence.js'
import type { Release } from '../../src/sequence.js'

/** A clock the test moves by hand, in ms. */
function fakeClock (start = 1_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

function setup (init: { reorderWindow?: number, maxHeld?: number } = {}): { seq: Sequencer<string>, clock: ReturnType<typeof fakeClock> } {
  const clock = fakeClock()
  const seq = new Sequencer<string>({ reorderWindow: init.reorderWindow ?? 500, maxHeld: init.maxHeld ?? 16, now: clock.now })
  return { seq, clock }
}

/** The seqs a release delivered, to keep assertions short. */
const seqs = (release: Release<unknown>): number[] => release.deliver.map(d => d.seq)

describe('sequencer', () => {
  it('delivers in-order messages at once, each with its sender and item', () => {
    const { seq } = setup()
    expect(seq.push('a', 1, 'one')).toEqual({ deliver: [{ from: 'a', seq: 1, item: 'one' }], gaps: [], duplicate: false, invalid: false })
    expect(seqs(seq.push('a', 2, 'two'))).toEqual([2])
    expect(seqs(seq.push('a', 3, 'three'))).toEqual([3])
    expect(seq.expected('a')).toBe(4)
    expect(seq.nextFlushIn()).toBeUndefined()
  })

  it('takes the first number seen from a sender as its baseline, without a gap before it', () => {
    const { seq } = setup()
    expect(seq.expected('a')).toBeUndefined()
    const first = seq.push('a', 42, 'x')
    expect(seqs(first)).toEqual([42])
    expect(first.gaps).toEqual([])
    expect(seq.expected('a')).toBe(43)
  })

  it('holds a message that overtook another and delivers both in order when the late one arrives within the window', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'one')
    const early = seq.push('a', 3, 'three')
    expect(early.deliver).toEqual([])
    expect(early.duplicate).toBe(false)
    expect(seq.nextFlushIn()).toBe(500)

    clock.advance(300)
    expect(seq.flush()).toEqual({ deliver: [], gaps: [] })
    expect(seq.nextFlushIn()).toBe(200)
    const late = seq.push('a', 2, 'two')
    expect(late.deliver.map(d => d.item)).toEqual(['two', 'three'])
    expect(late.gaps).toEqual([])
    expect(seq.nextFlushIn()).toBeUndefined()
  })

  it('declares a gap when the missing message has not come within the window', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'one')
    seq.push('a', 4, 'four')
    seq.push('a', 5, 'five')
    clock.advance(499)
    expect(seq.flush().deliver).toEqual([])
    clock.advance(1)
    const flushed = seq.flush()
    expect(seqs(flushed)).toEqual([4, 5])
    expect(flushed.gaps).toEqual([{ from: 'a', first: 2, last: 3 }])
    expect(seq.expected('a')).toBe(6)
    // the missing ones are now duplicates if they turn up after all
    expect(seq.push('a', 2, 'two')).toMatchObject({ deliver: [], duplicate: true })
  })

  it('flushes up to the highest expired message, and keeps waiting for holes after it', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'one')
    seq.push('a', 5, 'five')
    clock.advance(200)
    seq.push('a', 3, 'three')
    seq.push('a', 8, 'eight')
    clock.advance(300)
    // 5 expired; 3 is below it so it goes too even though it waited only 300 ms; 8 keeps waiting for 6 and 7
    const flushed = seq.flush()
    expect(seqs(flushed)).toEqual([3, 5])
    expect(flushed.gaps).toEqual([{ from: 'a', first: 2, last: 2 }, { from: 'a', first: 4, last: 4 }])
    expect(seq.nextFlushIn()).toBe(200)
    expect(seqs(seq.push('a', 6, 'six'))).toEqual([6])
    clock.advance(200)
    const rest = seq.flush()
    expect(seqs(rest)).toEqual([8])
    expect(rest.gaps).toEqual([{ from: 'a', first: 7, last: 7 }])
  })

  it('reports a skipped number as a gap immediately when it is next', () => {
    const { seq } = setup()
    seq.push('a', 1, 'one')
    expect(seq.skip('a', 2)).toEqual({ deliver: [], gaps: [{ from: 'a', first: 2, last: 2 }] })
    expect(seqs(seq.push('a', 3, 'three'))).toEqual([3])
  })

  it('does not wait for a skipped number: the gap comes as soon as its turn does', () => {
    const { seq } = setup()
    seq.push('a', 1, 'one')
    seq.skip('a', 3)
    seq.skip('a', 4)
    seq.push('a', 5, 'five')
    expect(seq.nextFlushIn()).toBe(500)
    // 2 arrives: 3 and 4 are known dropped, so 5 follows without waiting for the window
    const release = seq.push('a', 2, 'two')
    expect(seqs(release)).toEqual([2, 5])
    expect(release.gaps).toEqual([{ from: 'a', first: 3, last: 4 }])
    expect(seq.nextFlushIn()).toBeUndefined()
    // a dropped message that turns up later is not delivered after all
    expect(seq.push('a', 3, 'three').duplicate).toBe(true)
  })

  it('merges a lost range and the skipped numbers after it into one gap', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'one')
    seq.skip('a', 4)
    seq.push('a', 5, 'five')
    clock.advance(500)
    const flushed = seq.flush()
    expect(flushed.gaps).toEqual([{ from: 'a', first: 2, last: 4 }])
    expect(seqs(flushed)).toEqual([5])
  })

  it('makes the first skipped number of a new sender its baseline', () => {
    const { seq } = setup()
    expect(seq.skip('a', 7).gaps).toEqual([{ from: 'a', first: 7, last: 7 }])
    expect(seqs(seq.push('a', 8, 'eight'))).toEqual([8])
  })

  it('drops duplicates: already delivered, already held, or already declared missing', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'one')
    expect(seq.push('a', 1, 'again')).toEqual({ deliver: [], gaps: [], duplicate: true, invalid: false })
    seq.push('a', 3, 'three')
    expect(seq.push('a', 3, 'again').duplicate).toBe(true)
    clock.advance(500)
    seq.flush()
    expect(seq.push('a', 2, 'late').duplicate).toBe(true)
    expect(seq.skip('a', 2)).toEqual({ deliver: [], gaps: [] })
  })

  it('drops a seq that is not a positive safe integer as invalid, changing nothing', () => {
    const { seq } = setup()
    seq.push('a', 1, 'one')
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      expect(seq.push('a', bad, 'bad')).toEqual({ deliver: [], gaps: [], duplicate: false, invalid: true })
      expect(seq.skip('a', bad)).toEqual({ deliver: [], gaps: [] })
    }
    expect(seq.push('b', 0, 'bad').invalid).toBe(true)
    expect(seq.expected('b')).toBeUndefined()
    expect(seq.expected('a')).toBe(2)
  })

  it('holds at most maxHeld per sender, declaring the lowest missing ones a gap beyond it', () => {
    const { seq } = setup({ maxHeld: 3 })
    seq.push('a', 1, 'one')
    for (const n of [3, 4, 6]) expect(seq.push('a', n, String(n)).deliver).toEqual([])
    const overflow = seq.push('a', 8, 'eight')
    expect(overflow.gaps).toEqual([{ from: 'a', first: 2, last: 2 }])
    expect(seqs(overflow)).toEqual([3, 4])
    expect(seq.expected('a')).toBe(5)
    // 6 and 8 are still held, within the bound, waiting for 5 and 7
    expect(seqs(seq.push('a', 5, 'five'))).toEqual([5, 6])
  })

  it('counts skipped numbers towards maxHeld so a dropped flood cannot grow memory', () => {
    const { seq } = setup({ maxHeld: 2 })
    seq.push('a', 1, 'one')
    let gaps = 0
    let last = 0
    // only odd numbers are dropped, so every one of them waits for the even one before it
    for (let n = 3; n <= 10_001; n += 2) {
      for (const gap of seq.skip('a', n).gaps) {
        expect(gap.first).toBe(last === 0 ? 2 : last + 1)
        last = gap.last
        gaps++
      }
    }
    expect(gaps).toBeGreaterThan(0)
    expect(seq.expected('a')).toBe(last + 1)
    // just the last maxHeld skipped numbers (9,999 and 10,001) are still waiting
    expect(last).toBe(9_997)
    expect(seq.nextFlushIn()).toBe(500)
  })

  it('copes with a sender jumping ahead by billions without walking the range', () => {
    const { seq } = setup({ maxHeld: 0 })
    seq.push('a', 1, 'one')
    const jump = seq.push('a', 2 ** 50, 'far')
    expect(jump.gaps).toEqual([{ from: 'a', first: 2, last: 2 ** 50 - 1 }])
    expect(seqs(jump)).toEqual([2 ** 50])
  })

  it('keeps senders apart', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'a1')
    seq.push('b', 10, 'b10')
    seq.push('a', 3, 'a3')
    expect(seqs(seq.push('b', 11, 'b11'))).toEqual([11])
    clock.advance(500)
    const flushed = seq.flush()
    expect(flushed.deliver).toEqual([{ from: 'a', seq: 3, item: 'a3' }])
    expect(flushed.gaps).toEqual([{ from: 'a', first: 2, last: 2 }])
  })

  it('starts at the number setExpected gives, discarding held messages below it', () => {
    const { seq } = setup()
    // history ended at 4 before anything live arrived: 5 is next, and 3 can only be a late duplicate
    seq.setExpected('a', 5)
    expect(seq.expected('a')).toBe(5)
    expect(seq.push('a', 3, 'old').duplicate).toBe(true)
    expect(seq.push('a', 6, 'six').deliver).toEqual([])
    expect(seqs(seq.push('a', 5, 'five'))).toEqual([5, 6])
  })

  it('setExpected releases held messages that become consecutive, without a gap for the backlog', () => {
    const { seq } = setup()
    seq.push('a', 10, 'ten')
    seq.push('a', 12, 'twelve')
    seq.push('a', 13, 'thirteen')
    seq.push('a', 15, 'fifteen')
    // a backlog covered up to 11 (and 12 came both ways): expect 12 next
    const release = seq.setExpected('a', 12)
    expect(seqs(release)).toEqual([12, 13])
    expect(release.gaps).toEqual([])
    expect(seq.expected('a')).toBe(14)
    seq.setExpected('a', 15)
    expect(seq.expected('a')).toBe(16)
  })

  it('setExpected never moves back, so nothing is delivered twice', () => {
    const { seq } = setup()
    seq.push('a', 1, 'one')
    seq.push('a', 2, 'two')
    expect(seq.setExpected('a', 1)).toEqual({ deliver: [], gaps: [] })
    expect(seq.expected('a')).toBe(3)
    expect(seq.push('a', 2, 'two').duplicate).toBe(true)
    expect(() => seq.setExpected('a', 0)).toThrow(RangeError)
  })

  it('forgets a deleted sender, taking its next message as a new baseline', () => {
    const { seq } = setup()
    seq.push('a', 5, 'five')
    seq.push('a', 7, 'seven')
    seq.delete('a')
    expect(seq.expected('a')).toBeUndefined()
    expect(seq.nextFlushIn()).toBeUndefined()
    expect(seqs(seq.push('a', 1, 'one'))).toEqual([1])
  })

  it('reports how long until the earliest held message is due, and 0 when overdue', () => {
    const { seq, clock } = setup()
    seq.push('a', 1, 'one')
    seq.push('a', 3, 'three')
    clock.advance(100)
    seq.push('b', 1, 'one')
    seq.push('b', 3, 'three')
    expect(seq.nextFlushIn()).toBe(400)
    clock.advance(450)
    expect(seq.nextFlushIn()).toBe(0)
    expect(seq.flush().gaps).toEqual([{ from: 'a', first: 2, last: 2 }])
    expect(seq.nextFlushIn()).toBe(50)
  })

  it('releases the entry held longest, wherever it is, past maxHeldTotal for all senders', () => {
    const clock = fakeClock()
    const seq = new Sequencer<string>({ reorderWindow: 500, maxHeld: 16, maxHeldTotal: 3, now: clock.now })
    seq.push('a', 1, 'a1')
    seq.push('b', 1, 'b1')
    seq.push('a', 3, 'a3')
    clock.advance(1)
    seq.push('b', 3, 'b3')
    seq.push('b', 4, 'b4')
    expect(seq.held.entries).toBe(3)
    clock.advance(1)
    // a fourth held entry: a's 3 has waited longest, so it goes now, with 2 as a gap
    const r = seq.push('b', 6, 'b6')
    expect(r.deliver.map((d) => d.item)).toEqual(['a3'])
    expect(r.gaps).toEqual([{ from: 'a', first: 2, last: 2 }])
    expect(seq.held.entries).toBe(3)
  })

  it('releases held messages past maxHeldBytes, weighing each with weight()', () => {
    const seq = new Sequencer<string>({ reorderWindow: 500, maxHeld: 16, maxHeldBytes: 10, weight: (s) => s.length, now: fakeClock().now })
    seq.push('a', 1, 'x')
    seq.push('a', 3, 'abcd')
    seq.push('a', 5, 'efgh')
    expect(seq.held).toMatchObject({ entries: 2, bytes: 8 })
    const r = seq.push('a', 7, 'ijkl')
    expect(r.deliver.map((d) => d.item)).toEqual(['abcd'])
    expect(seq.held).toMatchObject({ entries: 2, bytes: 8 })
    // skipped numbers weigh nothing
    seq.skip('a', 9)
    expect(seq.held).toMatchObject({ entries: 3, bytes: 8 })
  })

  it('tracks at most maxSenders senders, releasing what the least recently used one held', () => {
    const seq = new Sequencer<string>({ reorderWindow: 500, maxHeld: 16, maxSenders: 2, now: fakeClock().now })
    seq.push('a', 1, 'a1')
    seq.push('a', 3, 'a3')
    seq.push('b', 1, 'b1')
    seq.push('a', 4, 'a4') // a is now the most recently used
    const r = seq.push('c', 1, 'c1')
    // b was least recently used: forgotten (it held nothing)
    expect(seq.expected('b')).toBeUndefined()
    expect(r.deliver.map((d) => d.item)).toEqual(['c1'])
    const r2 = seq.push('d', 1, 'd1')
    // then a: its held 3 and 4 are delivered, 2 reported missing, before it is forgotten
    expect(r2.deliver.map((d) => d.item)).toEqual(['a3', 'a4', 'd1'])
    expect(r2.gaps).toEqual([{ from: 'a', first: 2, last: 2 }])
    expect(seq.held).toMatchObject({ entries: 0, senders: 2 })
  })

  it('retires a sender that restarted: releases what it held, then takes its next number as a new baseline', () => {
    const { seq } = setup()
    seq.push('a', 1, 'one')
    seq.push('a', 4, 'four')
    const r = seq.retire('a')
    expect(seqs(r)).toEqual([4])
    expect(r.gaps).toEqual([{ from: 'a', first: 2, last: 3 }])
    expect(seq.held.entries).toBe(0)
    expect(seqs(seq.push('a', 1, 'one again'))).toEqual([1])
  })

  it('rejects a negative reorderWindow and a maxHeld that is not an integer >= 0', () => {
    expect(() => new Sequencer({ reorderWindow: -1, maxHeld: 1 })).toThrow(RangeError)
    expect(() => new Sequencer({ reorderWindow: 1, maxHeld: -1 })).toThrow(RangeError)
    expect(() => new Sequencer({ reorderWindow: 1, maxHeld: 0.5 })).toThrow(RangeError)
  })
})
