import { describe, expect, it } from 'vitest'
import { MAX_HELD_BYTES_PER_ROOM, MAX_HELD_PER_ROOM, MAX_TRACKED_SENDERS } from '../../src/constants.js'
import { deriveRoomSecrets } from '../../src/private-room.js'
import { RoomMessages } from '../../src/room-messages.js'
import { KIND_DATA, KIND_HEARTBEAT, encodeLabelled } from '../../src/wire.js'
import type { Delivery, OpenOptions, RoomMessagesInit } from '../../src/room-messages.js'
import type { Release } from '../../src/sequence.js'

const TOPIC = '/p2p-rooms/2/room/broadcast/test'
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (data: Uint8Array): string => new TextDecoder().decode(data)

function messages (init: Partial<RoomMessagesInit> = {}, clock = { t: 0 }): RoomMessages {
  return new RoomMessages({ topic: TOPIC, maxMessageBytes: 64, messagesPerSecond: 10, burst: 5, historySize: 3, historyRequestsPerMinute: 2, now: () => clock.t, ...init })
}

/** A member's side: numbers and encodes its messages as the room does. */
function sender (name: string, init: Partial<RoomMessagesInit> = {}): { data: (seq: number, body?: string) => Promise<Uint8Array>, heartbeat: (rank?: number) => Promise<Uint8Array>, name: string } {
  const m = messages({ messagesPerSecond: 1e9, burst: 1e9, incarnation: 1, ...init })
  return {
    name,
    data: async (seq, body = `${name}${seq}`) => m.encode(name, { kind: KIND_DATA, seq, rank: 1, settled: true }, bytes(body)),
    heartbeat: async (rank = 1) => m.encode(name, { kind: KIND_HEARTBEAT, seq: 0, rank, settled: true }, new Uint8Array(0))
  }
}

/**
 * The room's receive path for data (room.ts `validate` / `onPairwiseFrame` → `receiveData`):
 * opens, and orders what passed, collecting deliveries and gap events (after a final flush).
 */
class Receiver {
  readonly m: RoomMessages
  readonly delivered: Delivery[] = []
  readonly gaps: Array<{ from: string, first: number, last: number }> = []
  constructor (m: RoomMessages) { this.m = m }

  async receive (from: string, raw: Uint8Array, opts: OpenOptions = { rateKey: from, pair: false }): Promise<string | undefined> {
    const opened = await this.m.open(from, raw, opts)
    if (typeof opened === 'string') return opened
    if (opened.kind !== KIND_DATA) return undefined
    this.take(this.m.order({ from, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, opts.pair))
    return undefined
  }

  take (r: Release<Delivery>): void {
    this.gaps.push(...r.gaps)
    this.delivered.push(...r.deliver.map((d) => d.item))
  }

  texts (from?: string): string[] {
    return this.delivered.filter((d) => from === undefined || d.from === from).map((d) => text(d.data))
  }
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

  it('draws a new incarnation for every room session', () => {
    expect(new Set(Array.from({ length: 20 }, () => messages({ incarnation: undefined }).incarnation)).size).toBe(20)
  })
})

describe('room messages at a receiver', () => {
  it('holds a flooding sender to burst + rate, whatever it sends', async () => {
    const clock = { t: 0 }
    const flooder = sender('flooder')
    const r = new Receiver(messages({}, clock))
    for (let i = 1; i <= 1000; i++) {
      clock.t = i // 1,000 messages over one simulated second
      await r.receive('flooder', await flooder.data(i))
    }
    clock.t += 1000
    r.take(r.m.flush())
    expect(r.delivered.length).toBeLessThanOrEqual(5 + 10)
    expect(r.m.counters.dropped.rateLimited).toBeGreaterThanOrEqual(1000 - 15)
    // every dropped number is reported, and no number twice
    expect(r.m.counters.gaps).toBe(1000 - r.delivered.length)
  })

  it('drops a payload over its own maxMessageBytes, and malformed bytes', async () => {
    const big = sender('a', { maxMessageBytes: 1000 })
    const receiver = messages()
    expect(await receiver.open('a', await big.data(1, 'x'.repeat(65)), { rateKey: 'a', pair: false })).toBe('tooLarge')
    expect(await receiver.open('a', bytes('junk'), { rateKey: 'a', pair: false })).toBe('malformed')
    expect(receiver.counters.dropped).toMatchObject({ tooLarge: 1, malformed: 1 })
  })

  it('opens a sealed message only with the right secret, sender, session and topic', async () => {
    const right = await deriveRoomSecrets('r', 'broadcast', 'secret', 1000)
    const wrong = await deriveRoomSecrets('r', 'broadcast', 'guess', 1000)
    const raw = await sender('alice', { master: right.master }).heartbeat(7)
    expect(await messages({ master: right.master }).open('alice', raw, { pair: false })).toMatchObject({ kind: KIND_HEARTBEAT, rank: 7 })
    expect(await messages({ master: wrong.master }).open('alice', raw, { pair: false })).toBe('unauthenticated')
    // replayed under another sender's name, into another room, or under another incarnation
    expect(await messages({ master: right.master }).open('mallory', raw, { pair: false })).toBe('unauthenticated')
    expect(await messages({ master: right.master, topic: `${TOPIC}-other` }).open('alice', raw, { pair: false })).toBe('unauthenticated')
    const otherSession = raw.slice()
    otherSession[10] ^= 1
    expect(await messages({ master: right.master }).open('alice', otherSession, { pair: false })).toBe('unauthenticated')
  })

  it('drops data it does not take from this sender before it costs a token or any state', async () => {
    const r = new Receiver(messages())
    const rogue = sender('rogue')
    for (let i = 1; i <= 100; i++) expect(await r.receive('rogue', await rogue.data(i), { rateKey: 'rogue', pair: false, refuseData: 'notHost' })).toBe('notHost')
    expect(r.m.counters.dropped).toMatchObject({ notHost: 100, rateLimited: 0 })
    expect(r.m.retained).toMatchObject({ held: 0, senders: 0, sessions: 0, openGaps: 0, outbox: 0 })
    // its heartbeats still count: it is a member, just not one that publishes here
    expect(await r.m.open('rogue', await rogue.heartbeat(), { rateKey: 'rogue', pair: false, refuseData: 'notHost' })).toMatchObject({ kind: KIND_HEARTBEAT })
  })
})

describe('room messages under a flood', () => {
  const FLOOD = 200_000

  /** 200,000 data messages at 1,000/s from one member; then an honest member's first message. */
  async function flood (opts: OpenOptions & { from?: string }): Promise<{ r: Receiver, honestMs: number }> {
    const clock = { t: 0 }
    const r = new Receiver(messages({ messagesPerSecond: 50, burst: 100, maxMessageBytes: 65536, historySize: 100 }, clock))
    const from = opts.from ?? 'flooder'
    const raw = await sender(from).data(1, 'x')
    for (let i = 1; i <= FLOOD; i++) {
      clock.t += 1
      // the same bytes with the number patched in: encoding 200,000 messages is not what is tested
      new DataView(raw.buffer, raw.byteOffset).setUint32(3, i)
      await r.receive(from, raw, opts)
      if (i % 1000 === 0) r.take(r.m.flush())
    }
    const started = performance.now()
    await r.receive('honest', await sender('honest').data(1), { rateKey: 'honest', pair: opts.pair })
    const honestMs = performance.now() - started
    clock.t += 2000
    r.take(r.m.flush())
    return { r, honestMs }
  }

  it('keeps nothing of a one-way room\'s non-host flood but counters', async () => {
    const { r } = await flood({ rateKey: 'flooder', pair: false, refuseData: 'notHost' })
    expect(r.m.counters.dropped.notHost).toBe(FLOOD)
    expect(r.gaps).toEqual([])
    expect(r.m.retained).toMatchObject({ held: 0, openGaps: 0, outbox: 0 })
    expect(r.texts('honest')).toEqual(['honest1'])
  })

  it('keeps nothing of a pairwise room\'s flood on the room topic but counters', async () => {
    const { r } = await flood({ rateKey: 'flooder', pair: false, refuseData: 'wrongType' })
    expect(r.m.counters.dropped.wrongType).toBe(FLOOD)
    expect(r.m.retained).toMatchObject({ held: 0, openGaps: 0, outbox: 0 })
  })

  for (const pair of [true, false]) {
    it(`holds a ${pair ? 'pairwise' : 'broadcast'} flood to the rate in bounded memory, with one gap event per run of drops`, async () => {
      const { r, honestMs } = await flood({ rateKey: 'flooder', pair })
      const delivered = r.delivered.filter((d) => d.from === 'flooder').length
      // the bucket: a burst of 100, then 50/s over 200 s
      expect(delivered).toBeGreaterThanOrEqual(100 + 50 * 199)
      expect(delivered).toBeLessThanOrEqual(100 + 50 * 200 + 1)
      expect(r.m.counters.gaps).toBe(FLOOD - delivered)
      // merged: a gap between two delivered messages is one event, not one per number
      const gapEvents = r.gaps.filter((g) => g.from === 'flooder')
      expect(gapEvents.length).toBeLessThanOrEqual(delivered + 1)
      expect(gapEvents.reduce((n, g) => n + g.last - g.first + 1, 0)).toBe(FLOOD - delivered)
      expect(r.m.retained).toMatchObject({ held: 0, openGaps: 0, outbox: 0 })
      expect(r.texts('honest')).toEqual(['honest1'])
      // nothing queued behind the honest message
      expect(honestMs).toBeLessThan(50)
    })
  }

  it('bounds what many senders holding out-of-order messages make it hold, per room', async () => {
    const clock = { t: 0 }
    const r = new Receiver(messages({ messagesPerSecond: 50, burst: 100, maxMessageBytes: 65536 }, clock))
    const payload = 'y'.repeat(8 * 1024)
    let peak = { held: 0, heldBytes: 0 }
    for (let s = 0; s < 200; s++) {
      const origin = sender(`origin-${s}`)
      // each sends 1, then 3…60: the numbers after the missing 2 wait in the reorder window
      for (const seq of [1, ...Array.from({ length: 58 }, (_, i) => i + 3)]) {
        clock.t += 0.001
        await r.receive(origin.name, await origin.data(seq, payload), { rateKey: origin.name, pair: false })
        const now = r.m.retained
        peak = { held: Math.max(peak.held, now.held), heldBytes: Math.max(peak.heldBytes, now.heldBytes) }
      }
    }
    // 200 × 58 × 16 KiB would be 190 MB; the room's bounds release the oldest held first
    expect(peak.heldBytes).toBeGreaterThan(MAX_HELD_BYTES_PER_ROOM / 2)
    expect(peak.held).toBeLessThanOrEqual(MAX_HELD_PER_ROOM)
    expect(peak.heldBytes).toBeLessThanOrEqual(MAX_HELD_BYTES_PER_ROOM)
    // what was released early was delivered, with the missing 2 of each as a gap: nothing lost
    clock.t += 2000
    r.take(r.m.flush())
    expect(r.delivered.length).toBe(200 * 59)
    expect(r.m.counters.gaps).toBe(200)
  })

  it('charges every origin that reaches it only through others to one shared bucket', async () => {
    const r = new Receiver(messages({ messagesPerSecond: 50, burst: 100 }))
    for (let s = 0; s < 200; s++) {
      const forged = sender(`forged-${s}`)
      for (let seq = 1; seq <= 10; seq++) await r.receive(forged.name, await forged.data(seq), { rateKey: 'forwarded', pair: false })
    }
    expect(r.delivered.length).toBe(100)
    expect(r.m.counters.dropped.rateLimited).toBe(200 * 10 - 100)
  })

  it('bounds the senders it tracks, however many there are', async () => {
    const r = new Receiver(messages({ messagesPerSecond: 1e9, burst: 1e9 }))
    for (let s = 0; s < MAX_TRACKED_SENDERS + 500; s++) await r.receive(`s${s}`, await sender(`s${s}`).data(1), { pair: false })
    expect(r.m.retained.senders).toBeLessThanOrEqual(MAX_TRACKED_SENDERS)
    expect(r.m.retained.sessions).toBeLessThanOrEqual(MAX_TRACKED_SENDERS)
    expect(r.delivered.length).toBe(MAX_TRACKED_SENDERS + 500)
  })
})

describe('room messages across a restart of their sender', () => {
  it('delivers a reloaded member\'s new numbering from 1, and drops what its old session sends late', async () => {
    const r = new Receiver(messages({ messagesPerSecond: 1e9, burst: 1e9 }))
    const before = sender('alice', { incarnation: 1 })
    for (let i = 1; i <= 500; i++) await r.receive('alice', await before.data(i))
    const after = sender('alice', { incarnation: 2 })
    const first = await r.m.open('alice', await after.data(1), { pair: false })
    expect(first).toMatchObject({ restarted: true, seq: 1 })
    await r.receive('alice', await after.data(2))
    expect(r.texts('alice').slice(-1)).toEqual(['alice2'])
    // a late message of the old session, after the new one started
    expect(await r.receive('alice', await before.data(501))).toBe('duplicate')
    expect(r.m.counters.dropped.duplicate).toBe(1)
  })
})

describe('room messages in a backlog', () => {
  it('checks each message like a live one, keeps each sender session in order, and delivers it', async () => {
    const { master } = await deriveRoomSecrets('r', 'broadcast', 'secret', 1000)
    const alice = sender('alice', { master })
    const bob = sender('bob', { master })
    const forger = sender('alice', { master: (await deriveRoomSecrets('r', 'broadcast', 'guess', 1000)).master })
    const frames = [
      encodeLabelled('alice', await alice.data(1)), encodeLabelled('bob', await bob.data(4)), encodeLabelled('alice', await alice.data(2)),
      encodeLabelled('alice', await alice.data(2)), // again
      encodeLabelled('alice', await forger.data(3)), // sealed without the secret
      encodeLabelled('me', await alice.data(9)), // our own
      bytes('junk')
    ]
    const receiver = messages({ master, historySize: 100 })
    const backlog = await receiver.openBacklog('me', frames)
    expect(backlog.map((d) => text(d.data))).toEqual(['alice1', 'bob4', 'alice2'])
    expect(backlog.every((d) => d.history)).toBe(true)
    expect(receiver.counters.dropped).toMatchObject({ duplicate: 1, unauthenticated: 1, malformed: 1 })
    expect(receiver.counters.received).toBe(3)
  })

  it('cannot stop a member\'s live messages: a frame labelled with its peer ID and seq 0xFFFFFFFF changes nothing', async () => {
    const r = new Receiver(messages({ messagesPerSecond: 1e9, burst: 1e9, historySize: 100 }))
    const victim = sender('victim')
    // the serving member forges a message of the victim's, numbered as high as numbers go
    const poisoned = await r.m.openBacklog('me', [encodeLabelled('victim', await victim.data(0xffffffff, 'forged'))])
    expect(poisoned).toHaveLength(1)
    for (let i = 1; i <= 1000; i++) await r.receive('victim', await victim.data(i))
    r.take(r.m.flush())
    expect(r.texts('victim')).toHaveLength(1000)
    expect(r.texts('victim')).toEqual(Array.from({ length: 1000 }, (_, i) => `victim${i + 1}`))
    expect(r.m.counters.dropped.duplicate).toBe(0)
  })

  it('drops a live copy of a backlog message once, and only an exact copy', async () => {
    const r = new Receiver(messages({ messagesPerSecond: 1e9, burst: 1e9, historySize: 100 }))
    const alice = sender('alice')
    const served = [await alice.data(1), await alice.data(2), await alice.data(3, 'not what alice sent')]
    await r.m.openBacklog('me', served.map((raw) => encodeLabelled('alice', raw)))
    // 2 arrives live too (it was in flight while the backlog was served), then 3 as alice sent it
    await r.receive('alice', await alice.data(2))
    await r.receive('alice', await alice.data(3))
    await r.receive('alice', await alice.data(4))
    expect(r.texts('alice')).toEqual(['alice3', 'alice4'])
    expect(r.m.counters.dropped.duplicate).toBe(1)
  })

  it('looks at no more than historySize frames', async () => {
    const receiver = messages({ historySize: 3 })
    const alice = sender('alice')
    const frames = await Promise.all(Array.from({ length: 10 }, async (_, i) => encodeLabelled('alice', await alice.data(i + 1))))
    expect((await receiver.openBacklog('me', frames)).map((d) => d.seq)).toEqual([8, 9, 10])
  })

  it('keeps only the last historySize messages for late joiners, and serves the newest asked for', () => {
    const m = messages()
    for (let i = 1; i <= 5; i++) m.remember('a', bytes(String(i)))
    expect(m.backlog().map((e) => text(e.raw))).toEqual(['3', '4', '5'])
    expect(m.backlog(2).map((e) => text(e.raw))).toEqual(['4', '5'])
    expect(m.backlog(0)).toEqual([])
  })

  it('says in each header whether its backlog is empty, this message aside (FLAG_NO_BACKLOG)', async () => {
    const m = messages({ incarnation: 1 })
    const receiver = messages()
    const flag = async (raw: Uint8Array): Promise<boolean | undefined> => {
      const opened = await receiver.open('me', raw, { pair: false })
      return typeof opened === 'string' ? undefined : opened.noBacklog
    }
    const first = await m.encode('me', { kind: KIND_DATA, seq: m.nextSeq(), rank: 1, settled: true }, bytes('1'))
    expect(await flag(await m.encode('me', { kind: KIND_HEARTBEAT, seq: 0, rank: 1, settled: true }, new Uint8Array(0)))).toBe(true)
    expect(await flag(first)).toBe(true)
    m.sent('me', first, true)
    expect(await flag(await m.encode('me', { kind: KIND_HEARTBEAT, seq: 0, rank: 1, settled: true }, new Uint8Array(0)))).toBe(false)
    // a room that keeps no backlog always says so
    const none = messages({ historySize: 0 })
    none.remember('a', bytes('x'))
    expect(await flag(await none.encode('me', { kind: KIND_HEARTBEAT, seq: 0, rank: 1, settled: true }, new Uint8Array(0)))).toBe(true)
  })

  it('serves each peer at most historyRequestsPerMinute backlogs a minute', () => {
    const clock = { t: 0 }
    const m = messages({ historyRequestsPerMinute: 2 }, clock)
    expect([m.admitHistoryRequest('a'), m.admitHistoryRequest('a'), m.admitHistoryRequest('a'), m.admitHistoryRequest('b')]).toEqual([true, true, false, true])
    clock.t += 30_000
    expect(m.admitHistoryRequest('a')).toBe(true)
    expect(m.admitHistoryRequest('a')).toBe(false)
  })
})
