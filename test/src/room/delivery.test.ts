import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { REORDER_WINDOW_MS } from '../../../src/constants.js'
import { RoomMessages } from '../../../src/room-messages.js'
import { Delivery } from '../../../src/room/delivery.js'
import { KIND_DATA, roomTopics } from '../../../src/wire.js'
import { fakeTimers } from './stubs.js'
import type { Gap } from '../../../src/sequence.js'

const BOB = 'peer-bob'

function messages (): RoomMessages {
  return new RoomMessages({ topic: roomTopics('test', 'broadcast').room, maxMessageBytes: 1024, messagesPerSecond: 50, burst: 100, historySize: 10, historyRequestsPerMinute: 10 })
}

beforeEach(() => { fakeTimers() })
afterEach(() => { vi.useRealTimers() })

describe('room delivery', () => {
  it('holds a message that overtook another, and after REORDER_WINDOW_MS delivers it with a gap for the missing one', async () => {
    const ours = messages()
    const bob = messages()
    const delivered: Array<[string, number]> = []
    const gaps: Gap[] = []
    const delivery = new Delivery({ room: 'test', messages: ours, onMessage: (m) => { delivered.push([new TextDecoder().decode(m.data), m.seq]) }, onGap: (g) => { gaps.push(g) } })
    const raws = await Promise.all(['one', 'two', 'three'].map(async (words) => bob.encode(BOB, { kind: KIND_DATA, seq: bob.nextSeq(), rank: 1, settled: true }, new TextEncoder().encode(words))))
    const receive = async (raw: Uint8Array): Promise<void> => {
      const opened = await ours.open(BOB, raw, { pair: false })
      if (typeof opened === 'string') throw new Error(opened)
      delivery.receive({ from: BOB, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, false)
    }
    // the first and the third arrive; the second never does
    await receive(raws[0])
    await receive(raws[2])
    expect(delivered).toEqual([['one', 1]])
    await vi.advanceTimersByTimeAsync(REORDER_WINDOW_MS + 1)
    expect(gaps).toEqual([{ from: BOB, first: 2, last: 2 }])
    expect(delivered).toEqual([['one', 1], ['three', 3]])
    // and the mailbox has both, for a backlog we serve
    expect(ours.backlog()).toHaveLength(2)
  })

  it('delivers nothing once stopped: its flush timer is gone', async () => {
    const ours = messages()
    const bob = messages()
    const delivered: number[] = []
    const delivery = new Delivery({ room: 'test', messages: ours, onMessage: (m) => { delivered.push(m.seq) }, onGap: () => {} })
    for (const seq of [bob.nextSeq(), bob.nextSeq(), bob.nextSeq()]) {
      // the second never arrives: the third waits for it
      if (seq === 2) continue
      const raw = await bob.encode(BOB, { kind: KIND_DATA, seq, rank: 1, settled: true }, new Uint8Array([seq]))
      const opened = await ours.open(BOB, raw, { pair: false })
      if (typeof opened === 'string') throw new Error(opened)
      delivery.receive({ from: BOB, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, false)
    }
    expect(delivered).toEqual([1])
    delivery.stop()
    delivery.stop()
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(REORDER_WINDOW_MS * 2)
    expect(delivered).toEqual([1])
  })
})
