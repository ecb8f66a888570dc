/**
 * Every decoder of network bytes in src/ against random and mutated input (fast-check): it never
 * throws past the decoder (stream frames throw only their named errors, which abort the stream),
 * and never holds more than its bound: what it returns is no larger than what it was given and
 * within the format's limits, and a frame longer than allowed is refused from its length prefix.
 */
import fc from 'fast-check'
import { encode } from 'it-length-prefixed'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCEMENT_BYTES } from '../../src/constants.js'
import { deriveRoomSecrets } from '../../src/private-room.js'
import { DROP_REASONS, RoomMessages } from '../../src/room-messages.js'
import { fetchIceServers } from '../../src/ice.js'
import { decodeFrames } from '../../src/streams.js'
import {
  KIND_DATA, KIND_HANDOFF, KIND_HEARTBEAT, KIND_LEAVE, MAX_ADMISSIONS, ROOM_HEADER_BYTES, ROOM_MESSAGE_VERSION, decodeAnnouncement, decodeHandoff,
  decodeHeartbeat, decodeHistoryRequest, decodeLabelled, decodeRoomMessage, encodeAnnouncement, encodeHandoff, encodeHeartbeat,
  encodeHistoryRequest, encodeLabelled, encodeRoomMessage
} from '../../src/wire.js'

const RUNS = { numRuns: 2_000 }
const SENDER = '12D3KooWGzYpmB8tCqJvD3gTzG2Ag5rXPMhPxcXtSgQZ3fjv4y6S'

/**
 * Mutations of a valid encoding: bit flips, byte overwrites, truncation, extension with junk, and
 * bytes cut out; so inputs stay close enough to valid to reach every branch of a decoder.
 */
function mutated (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('append' as const), junk: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({ op: fc.constant('cut' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) })
  )
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([bytes, edits]) => {
    let b = Uint8Array.from(bytes)
    for (const e of edits) {
      const at = b.byteLength === 0 ? 0 : ('at' in e ? e.at % b.byteLength : 0)
      if (e.op === 'flip' && b.byteLength > 0) b[at] ^= 1 << e.bit
      else if (e.op === 'set' && b.byteLength > 0) b[at] = e.value
      else if (e.op === 'truncate') b = b.subarray(0, at)
      else if (e.op === 'append') b = Uint8Array.from([...b, ...e.junk])
      else if (e.op === 'cut') b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + e.n)])
    }
    return b
  })
}

/** Random bytes, valid encodings, and mutations of valid encodings, in equal measure; at an offset inside a larger buffer, as a received chunk often is. */
function inputs (valid: fc.Arbitrary<Uint8Array>, maxLength = 512): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.oneof(fc.uint8Array({ maxLength }), valid, mutated(valid)), fc.nat({ max: 7 })).map(([b, offset]) => {
    const buffer = new Uint8Array(b.byteLength + offset + 3)
    buffer.set(b, offset)
    return buffer.subarray(offset, offset + b.byteLength)
  })
}

const peerIdLike = fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{1,60}$/)
const rank = fc.double({ noNaN: true, noDefaultInfinity: true })
const header = fc.record({
  kind: fc.constantFrom(KIND_DATA, KIND_HEARTBEAT, KIND_HANDOFF, KIND_LEAVE),
  seq: fc.integer({ min: 1, max: 0xffffffff }),
  incarnation: fc.integer({ min: 0, max: 0xffffffff }),
  rank,
  settled: fc.boolean()
}).map((h) => ({ ...h, seq: h.kind === KIND_DATA ? h.seq : 0 }))
const roomMessage = fc.tuple(header, fc.uint8Array({ maxLength: 256 })).map(([h, body]) => encodeRoomMessage(h, body))

describe('decoders of network bytes, under random and mutated input', () => {
  it('announcement JSON: never throws; accepts only its own addresses, within the limits', () => {
    const addr = fc.constantFrom(`/ip4/127.0.0.1/tcp/1/ws/p2p/R/p2p-circuit/webrtc/p2p/${SENDER}`, `/p2p/${SENDER}`, '/ip4/10.0.0.1/tcp/1', `/p2p/${SENDER}x`)
    const valid = fc.oneof(
      fc.array(addr, { maxLength: MAX_ANNOUNCED_ADDRS + 2 }).map((addrs) => encodeAnnouncement({ v: 1, kind: 'announce', addrs })),
      fc.constant(encodeAnnouncement({ v: 1, kind: 'leave' })),
      fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v)))
    )
    fc.assert(fc.property(inputs(valid, MAX_ANNOUNCEMENT_BYTES + 64), (bytes) => {
      const a = decodeAnnouncement(bytes, SENDER)
      if (a === undefined) return
      expect(bytes.byteLength).toBeLessThanOrEqual(MAX_ANNOUNCEMENT_BYTES)
      if (a.kind === 'announce') {
        expect(a.addrs.length).toBeGreaterThan(0)
        expect(a.addrs.length).toBeLessThanOrEqual(MAX_ANNOUNCED_ADDRS)
        for (const x of a.addrs) expect(x.endsWith(`/p2p/${SENDER}`)).toBe(true)
      }
    }), RUNS)
    // over the bound, it is not even parsed
    expect(decodeAnnouncement(new Uint8Array(10 * MAX_ANNOUNCEMENT_BYTES).fill(0x20), SENDER)).toBeUndefined()
  })

  it('room message: never throws; a decoded header is valid and its body a view of the input, not a copy', () => {
    fc.assert(fc.property(inputs(roomMessage), (bytes) => {
      const m = decodeRoomMessage(bytes)
      if (m === undefined) return
      expect(bytes[0]).toBe(ROOM_MESSAGE_VERSION)
      expect([KIND_DATA, KIND_HEARTBEAT, KIND_HANDOFF, KIND_LEAVE]).toContain(m.kind)
      expect(Number.isFinite(m.rank)).toBe(true)
      expect(m.kind === KIND_DATA ? m.seq > 0 : m.seq === 0).toBe(true)
      expect(m.header.byteLength + m.body.byteLength).toBe(bytes.byteLength)
      expect(m.header.byteLength).toBe(ROOM_HEADER_BYTES)
      expect(m.body.buffer).toBe(bytes.buffer)
    }), RUNS)
  })

  it('handoff body: never throws; a decoded handoff names a short peer ID and a finite rank', () => {
    const valid = fc.tuple(peerIdLike, rank).map(([to, r]) => encodeHandoff(to, r))
    fc.assert(fc.property(inputs(valid, 200), (bytes) => {
      const h = decodeHandoff(bytes)
      if (h === undefined) return
      expect(Number.isFinite(h.rank)).toBe(true)
      expect(new TextEncoder().encode(h.to).byteLength).toBeLessThanOrEqual(128)
      expect(bytes.byteLength).toBeLessThanOrEqual(8 + 128)
    }), RUNS)
  })

  it('heartbeat body: never throws; at most MAX_ADMISSIONS admissions, each a short peer ID and a finite rank', () => {
    const valid = fc.array(fc.record({ peerId: peerIdLike, rank }), { maxLength: MAX_ADMISSIONS }).map(encodeHeartbeat)
    fc.assert(fc.property(inputs(valid, 3_000), (bytes) => {
      const admissions = decodeHeartbeat(bytes)
      if (admissions === undefined) return
      expect(admissions.length).toBeLessThanOrEqual(MAX_ADMISSIONS)
      for (const a of admissions) {
        expect(Number.isFinite(a.rank)).toBe(true)
        const len = new TextEncoder().encode(a.peerId).byteLength
        expect(len).toBeGreaterThan(0)
        expect(len).toBeLessThanOrEqual(128)
      }
      expect(encodeHeartbeat(admissions).byteLength).toBeLessThanOrEqual(bytes.byteLength)
    }), RUNS)
  })

  it('labelled frame and history request: never throw; the rest is a view of the input', () => {
    const valid = fc.oneof(
      fc.tuple(fc.string({ maxLength: 80 }), fc.uint8Array({ maxLength: 128 })).map(([label, rest]) => encodeLabelled(label, rest)),
      fc.tuple(fc.string({ maxLength: 80 }), fc.nat()).map(([topic, n]) => encodeHistoryRequest(topic, n))
    )
    fc.assert(fc.property(inputs(valid), (bytes) => {
      const l = decodeLabelled(bytes)
      if (l !== undefined) {
        expect(2 + new TextEncoder().encode(l.label).byteLength + l.rest.byteLength).toBeLessThanOrEqual(bytes.byteLength)
        expect(l.rest.buffer).toBe(bytes.buffer)
      }
      const r = decodeHistoryRequest(bytes)
      if (r !== undefined) {
        expect(Number.isSafeInteger(r.maxMessages) && r.maxMessages >= 0 && r.maxMessages <= 0xffffffff).toBe(true)
      }
    }), RUNS)
  })
})

describe('stream frames (length-prefixed, with their bound), under random and mutated input', () => {
  const MAX = 1_024
  /** The errors a frame decoder may end with: the stream is aborted with them. */
  const NAMED = ['FrameTooLargeError', 'InvalidDataLengthLengthError', 'UnexpectedEOFError', 'InvalidMessageLengthError']

  /** Valid frames (some over the bound), length-prefixed, concatenated, mutated or not, then cut into random chunks. */
  const streams = fc.tuple(
    fc.oneof(
      fc.array(fc.uint8Array({ maxLength: MAX + 64 }), { maxLength: 6 }).map((frames) => Uint8Array.from(frames.flatMap((f) => [...encode.single(f).subarray()]))),
      fc.uint8Array({ maxLength: 4_096 })
    ),
    fc.boolean(),
    fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 })
  ).chain(([bytes, mutate, cuts]) => (mutate ? mutated(fc.constant(bytes)) : fc.constant(bytes)).map((b) => ({ bytes: b, cuts })))

  function chunks (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
    const out: Uint8Array[] = []
    let at = 0
    for (let i = 0; at < bytes.byteLength; i++) {
      const n = cuts[i % cuts.length]
      out.push(bytes.subarray(at, at + n))
      at += n
    }
    return out
  }

  it('yields only frames within the bound, or ends with a named error; never anything else', async () => {
    await fc.assert(fc.asyncProperty(streams, async ({ bytes, cuts }) => {
      let total = 0
      try {
        for await (const frame of decodeFrames(chunks(bytes, cuts), MAX)) {
          expect(frame.byteLength).toBeLessThanOrEqual(MAX)
          total += frame.byteLength
        }
      } catch (err: any) {
        expect(NAMED).toContain(err?.name)
      }
      expect(total).toBeLessThanOrEqual(bytes.byteLength)
    }), RUNS)
  })

  it('refuses a frame over the bound from its length prefix, before reading what the prefix announces', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: MAX + 1, max: 2 ** 40 }), fc.integer({ min: 1, max: 64 }), async (length, chunk) => {
      let pulled = 0
      // the sender would send `length` bytes; a decoder that buffered them would pull them all
      async function * source (): AsyncGenerator<Uint8Array> {
        const varint: number[] = []
        for (let n = length; ; n = Math.floor(n / 128)) {
          if (n < 128) { varint.push(n); break }
          varint.push((n % 128) | 0x80)
        }
        pulled += varint.length
        yield Uint8Array.from(varint)
        for (;;) {
          pulled += chunk
          yield new Uint8Array(chunk)
        }
      }
      await expect(async () => { for await (const _ of decodeFrames(source(), MAX)) { void _ } }).rejects.toHaveProperty('name', 'FrameTooLargeError')
      expect(pulled).toBeLessThanOrEqual(8)
    }), { numRuns: 300 })
  })
})

describe('the backlog opener and the room message opener, under random and mutated input', () => {
  it('never throw; a backlog yields at most historySize messages, each within maxMessageBytes', async () => {
    const { master } = await deriveRoomSecrets('r', 'broadcast', 'secret', 1000)
    for (const key of [undefined, master]) {
      const sender = new RoomMessages({ topic: 't', maxMessageBytes: 64, messagesPerSecond: 1e9, burst: 1e9, historySize: 0, historyRequestsPerMinute: 1, master: key, incarnation: 5 })
      const encoded = await Promise.all(Array.from({ length: 8 }, async (_, i) => sender.encode(SENDER, { kind: KIND_DATA, seq: i + 1, rank: 1, settled: true }, new Uint8Array(i * 10))))
      const frame = fc.oneof(
        fc.constantFrom(...encoded).map((raw) => encodeLabelled(SENDER, raw)),
        mutated(fc.constantFrom(...encoded).map((raw) => encodeLabelled(SENDER, raw))),
        fc.uint8Array({ maxLength: 300 })
      )
      await fc.assert(fc.asyncProperty(fc.array(frame, { maxLength: 20 }), async (frames) => {
        const receiver = new RoomMessages({ topic: 't', maxMessageBytes: 64, messagesPerSecond: 10, burst: 5, historySize: 6, historyRequestsPerMinute: 1, master: key })
        const backlog = await receiver.openBacklog('me', frames)
        expect(backlog.length).toBeLessThanOrEqual(Math.min(6, frames.length))
        for (const d of backlog) {
          expect(d.data.byteLength).toBeLessThanOrEqual(64)
          expect(d.history).toBe(true)
        }
        for (const f of frames) {
          const opened = await receiver.open(SENDER, f, { rateKey: SENDER, pair: false })
          if (typeof opened === 'string') expect(DROP_REASONS).toContain(opened)
          else expect(opened.body.byteLength).toBeLessThanOrEqual(4_096)
        }
      }), { numRuns: 300 })
    }
  })
})

describe('the /ice-servers answer, under random and mutated input', () => {
  afterEach(() => { vi.unstubAllGlobals() })

  it('yields only well-formed RTCIceServers with their known fields, or IceServersFetchError; never anything else', async () => {
    const server = fc.record({
      urls: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.jsonValue()),
      username: fc.option(fc.oneof(fc.string(), fc.jsonValue()), { nil: undefined }),
      credential: fc.option(fc.oneof(fc.string(), fc.jsonValue()), { nil: undefined }),
      extra: fc.option(fc.jsonValue(), { nil: undefined })
    }, { requiredKeys: ['urls'] })
    const valid = fc.oneof(
      fc.record({ iceServers: fc.array(server, { maxLength: 4 }), ttl: fc.option(fc.integer(), { nil: undefined }) }).map((v) => new TextEncoder().encode(JSON.stringify(v))),
      fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v)))
    )
    await fc.assert(fc.asyncProperty(inputs(valid, 1_024), fc.constantFrom(200, 200, 200, 404, 500), async (body, status) => {
      vi.stubGlobal('fetch', async () => new Response(Uint8Array.from(body), { status }))
      try {
        const servers = await fetchIceServers('http://relay.example/ice-servers')
        for (const s of servers) {
          expect(Object.keys(s).every((k) => ['urls', 'username', 'credential'].includes(k))).toBe(true)
          expect(typeof s.urls === 'string' || (Array.isArray(s.urls) && s.urls.length > 0 && s.urls.every((u) => typeof u === 'string'))).toBe(true)
        }
      } catch (err: any) {
        expect(err?.name).toBe('IceServersFetchError')
      }
    }), { numRuns: 1_000 })
  })
})
