import { describe, expect, it } from 'vitest'
import { deriveRoomSecrets } from '../../src/private-room.js'
import { RoomMessages } from '../../src/room-messages.js'
import { KIND_DATA, KIND_HEARTBEAT, encodeLabelled } from '../../src/wire.js'
import type { RoomMessagesInit } from '../../src/room-messages.js'

const TOPIC = '/p2p-rooms/2/room/broadcast/test'
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

function messages (init: Partial<RoomMessagesInit> = {}, clock = { t: 0 }): RoomMessages {
  return new RoomMessages({ topic: TOPIC, maxMessageBytes: 64, messagesPerSecond: 10, burst: 5, historySize: 3, now: () => clock.t, ...init })
}

describe('room messages at the sender', () => {
  it('refuses a payload over maxMessageBytes', () => {
    expect(() => { messages().admit(new Uint8Array(65)) }).toThrow(expect.objectContaining({ name: 'MessageTooLargeError' }))
  })

  it('lets a burst through, then refuses with the time to wait', () => {
    const m = messages()
    for (let i = 0; i < 5; i++) m.admit(bytes('x'))
    try {
      m.admit(bytes('x'))
      expect.unreachable()
    } catch (err: any) {
      expect(err.name).toBe('RateLimitedError')
      expect(err.retryAfterMs).toBe(100)
    }
  })

  it('numbers broadcast messages and each pair on its own', () => {
    const m = messages()
    expect([m.nextSeq(), m.nextSeq(), m.nextSeq('b'), m.nextSeq('c'), m.nextSeq('b')]).toEqual([1, 2, 1, 1, 2])
  })
})

describe('room messages at a receiver', () => {
  it('holds a flooding sender to burst + rate, whatever it sends', async () => {
    const clock = { t: 0 }
    const sender = messages({}, clock)
    const receiver = messages({}, clock)
    let delivered = 0
    for (let i = 1; i <= 1000; i++) {
      clock.t = i // 1,000 messages over one simulated second
      const opened = await receiver.open('flooder', await sender.encode('flooder', KIND_DATA, i, 1, bytes(`m${i}`)), { rateLimit: true, pair: false })
      if (typeof opened !== 'string') delivered += receiver.order({ from: 'flooder', seq: opened.seq, data: opened.body, history: false, raw: opened.raw }).deliver.length
    }
    delivered += receiver.flush().deliver.length
    expect(delivered).toBeLessThanOrEqual(5 + 10)
    expect(receiver.counters.dropped.rateLimited).toBeGreaterThanOrEqual(1000 - 15)
    // the dropped numbers are gaps, reported without waiting for them
    expect(receiver.counters.gaps).toBeGreaterThan(0)
  })

  it('drops a payload over its own maxMessageBytes, and malformed bytes', async () => {
    const big = messages({ maxMessageBytes: 1000 })
    const receiver = messages()
    expect(await receiver.open('a', await big.encode('a', KIND_DATA, 1, 1, new Uint8Array(65)), { rateLimit: true, pair: false })).toBe('tooLarge')
    expect(await receiver.open('a', bytes('junk'), { rateLimit: true, pair: false })).toBe('malformed')
    expect(receiver.counters.dropped).toMatchObject({ tooLarge: 1, malformed: 1 })
  })

  it('opens a sealed message only with the right key, sender and topic', async () => {
    const right = await deriveRoomSecrets('r', 'broadcast', 'secret')
    const wrong = await deriveRoomSecrets('r', 'broadcast', 'guess')
    const alice = messages({ key: right.key })
    const raw = await alice.encode('alice', KIND_HEARTBEAT, 0, 7, new Uint8Array(0))
    expect(await messages({ key: right.key }).open('alice', raw, { rateLimit: true, pair: false })).toMatchObject({ kind: KIND_HEARTBEAT, rank: 7 })
    expect(await messages({ key: wrong.key }).open('alice', raw, { rateLimit: true, pair: false })).toBe('unauthenticated')
    // replayed under another sender's name, or into another room
    expect(await messages({ key: right.key }).open('mallory', raw, { rateLimit: true, pair: false })).toBe('unauthenticated')
    expect(await messages({ key: right.key, topic: `${TOPIC}-other` }).open('alice', raw, { rateLimit: true, pair: false })).toBe('unauthenticated')
  })

  it('delivers once, in order, and skips what a backlog already delivered', () => {
    const m = messages()
    const d = (seq: number) => ({ from: 'a', seq, data: bytes(String(seq)), history: false, raw: bytes(String(seq)) })
    m.continueAfter('a', 3)
    expect(m.order(d(2)).deliver).toEqual([])
    expect(m.counters.dropped.duplicate).toBe(1)
    expect(m.order(d(5)).deliver).toEqual([])
    expect(m.order(d(4)).deliver.map((x) => x.seq)).toEqual([4, 5])
  })

  it('keeps only the last historySize messages for late joiners', () => {
    const m = messages()
    for (let i = 1; i <= 5; i++) m.remember('a', bytes(String(i)))
    expect(m.backlog().map((e) => new TextDecoder().decode(e.raw))).toEqual(['3', '4', '5'])
  })
})

describe('room messages in a backlog', () => {
  it('checks each message like a live one, keeps each sender in order and says where live ones continue', async () => {
    const key = (await deriveRoomSecrets('r', 'broadcast', 'secret')).key
    const alice = messages({ key })
    const bob = messages({ key })
    const forger = messages({ key: (await deriveRoomSecrets('r', 'broadcast', 'guess')).key })
    const frame = async (m: RoomMessages, from: string, seq: number): Promise<Uint8Array> => encodeLabelled(from, await m.encode(from, KIND_DATA, seq, 1, bytes(`${from}${seq}`)))
    const frames = [
      await frame(alice, 'alice', 1), await frame(bob, 'bob', 4), await frame(alice, 'alice', 2),
      await frame(alice, 'alice', 2), // again
      await frame(forger, 'alice', 3), // sealed without the secret
      await frame(alice, 'me', 9), // our own
      bytes('junk')
    ]
    const receiver = messages({ key })
    const { backlog, last } = await receiver.openBacklog('me', frames)
    expect(backlog.map((d) => new TextDecoder().decode(d.data))).toEqual(['alice1', 'bob4', 'alice2'])
    expect(backlog.every((d) => d.history)).toBe(true)
    expect([...last]).toEqual([['alice', 2], ['bob', 4]])
    expect(receiver.counters.dropped).toMatchObject({ duplicate: 1, unauthenticated: 1, malformed: 1 })
    expect(receiver.counters.received).toBe(3)
  })
})
