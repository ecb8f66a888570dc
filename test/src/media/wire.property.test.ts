/**
 * The media signalling decoder (src/media/wire.ts) against random, mutated and hostile input
 * (fast-check): it returns a well-formed message within its bounds or throws
 * `InvalidSignalError`, and nothing else; every message it encodes decodes to itself.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_CANDIDATE_LENGTH, MAX_MEDIA_FRAME_BYTES, MAX_SDP_LENGTH, MAX_STREAM_METADATA_BYTES } from '../../../src/constants.js'
import { InvalidSignalError, MAX_STREAM_ID_LENGTH, decodeSignal, encodeSignal, metadataProblem } from '../../../src/media/wire.js'
import type { MediaSignal } from '../../../src/media/wire.js'

const RUNS = { numRuns: 2_000 }
const encoder = new TextEncoder()

const streamId = fc.stringMatching(/^[\x21-\x7e]{1,64}$/)
const meta = fc.jsonValue({ maxDepth: 3 }).filter((v) => metadataProblem(v) === undefined)
const body: fc.Arbitrary<MediaSignal> = fc.oneof(
  fc.record({ t: fc.constant('sdp' as const), type: fc.constantFrom('offer' as const, 'answer' as const), sdp: fc.string({ minLength: 1, maxLength: 2000 }) }),
  fc.record({
    t: fc.constant('ice' as const),
    candidate: fc.string({ maxLength: 200 }),
    sdpMid: fc.string({ maxLength: 8 }),
    sdpMLineIndex: fc.integer({ min: 0, max: 0xffff }),
    usernameFragment: fc.string({ maxLength: 16 })
  }, { requiredKeys: ['t', 'candidate'] }),
  fc.record({ t: fc.constant('add' as const), id: streamId, meta }, { requiredKeys: ['t', 'id'] }),
  fc.record({ t: fc.constant('remove' as const), id: streamId }),
  fc.constant({ t: 'hello' as const })
)
/** with the sender's media session ID, or without */
const signal: fc.Arbitrary<MediaSignal> = fc.tuple(body, fc.option(fc.stringMatching(/^[\x21-\x7e]{1,64}$/), { nil: undefined }))
  .map(([b, session]) => session === undefined ? b : { ...b, s: session })

/** A valid encoding with a few bytes flipped, set, cut or appended. */
const mutated = fc.tuple(signal.map(encodeSignal), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'append')), { minLength: 1, maxLength: 4 }))
  .map(([bytes, edits]) => {
    let b = Uint8Array.from(bytes)
    for (const [at, value, op] of edits) {
      const i = b.byteLength === 0 ? 0 : at % b.byteLength
      if (op === 'set' && b.byteLength > 0) b[i] = value
      else if (op === 'cut') b = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1)])
      else b = Uint8Array.from([...b, value])
    }
    return b
  })

/** JSON objects shaped almost like messages: right and wrong `v`, `t`, field types and sizes. */
const lookalike = fc.record({
  v: fc.oneof(fc.constant(1), fc.jsonValue({ maxDepth: 1 })),
  t: fc.oneof(fc.constantFrom('sdp', 'ice', 'add', 'remove', 'hello', 'bye'), fc.jsonValue({ maxDepth: 1 })),
  type: fc.oneof(fc.constantFrom('offer', 'answer', 'rollback'), fc.jsonValue({ maxDepth: 1 })),
  sdp: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })),
  candidate: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })),
  sdpMid: fc.jsonValue({ maxDepth: 1 }),
  sdpMLineIndex: fc.oneof(fc.integer(), fc.double(), fc.jsonValue({ maxDepth: 1 })),
  id: fc.oneof(streamId, fc.string(), fc.jsonValue({ maxDepth: 1 })),
  s: fc.oneof(streamId, fc.string({ maxLength: 80 }), fc.jsonValue({ maxDepth: 1 })),
  meta: fc.jsonValue({ maxDepth: 4 })
}, { requiredKeys: [] }).map((o) => encoder.encode(JSON.stringify(o)))

/** Decodes, and returns the message or the error; any other kind of error fails the property. */
function decodeOrError (bytes: Uint8Array): MediaSignal | InvalidSignalError {
  try {
    return decodeSignal(bytes)
  } catch (err) {
    if (err instanceof InvalidSignalError) return err
    throw err
  }
}

function withinBounds (msg: MediaSignal): boolean {
  if (msg.s !== undefined && !/^[\x21-\x7e]{1,64}$/.test(msg.s)) return false
  switch (msg.t) {
    case 'sdp': return (msg.type === 'offer' || msg.type === 'answer') && msg.sdp.length > 0 && msg.sdp.length <= MAX_SDP_LENGTH
    case 'ice': return msg.candidate.length <= MAX_CANDIDATE_LENGTH && (msg.sdpMLineIndex === undefined || (Number.isInteger(msg.sdpMLineIndex) && msg.sdpMLineIndex >= 0))
    case 'add': return msg.id.length <= MAX_STREAM_ID_LENGTH && (msg.meta === undefined || encoder.encode(JSON.stringify(msg.meta)).byteLength <= MAX_STREAM_METADATA_BYTES)
    case 'remove': return msg.id.length > 0 && msg.id.length <= MAX_STREAM_ID_LENGTH
    case 'hello': return Object.keys(msg).every((k) => k === 't' || k === 's')
  }
}

describe('media signalling decoder', () => {
  it('decodes every message it encodes to itself (as JSON has it: -0 is 0)', () => {
    fc.assert(fc.property(signal, (msg) => {
      expect(decodeSignal(encodeSignal(msg))).toEqual(JSON.parse(JSON.stringify(msg)))
    }), RUNS)
  })

  it('returns a message within bounds or throws InvalidSignalError, for random, mutated and look-alike input', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated, lookalike), (bytes) => {
      const out = decodeOrError(bytes)
      if (!(out instanceof InvalidSignalError)) expect(withinBounds(out)).toBe(true)
    }), RUNS)
  })

  it('refuses fields over their bounds', () => {
    const big = (n: number): string => 'a'.repeat(n)
    const cases: unknown[] = [
      { v: 1, t: 'sdp', type: 'offer', sdp: big(MAX_SDP_LENGTH + 1) },
      { v: 1, t: 'ice', candidate: big(MAX_CANDIDATE_LENGTH + 1) },
      { v: 1, t: 'add', id: big(MAX_STREAM_ID_LENGTH + 1) },
      { v: 1, t: 'add', id: 'has space' },
      { v: 1, t: 'add', id: 'x', meta: big(MAX_STREAM_METADATA_BYTES) },
      { v: 2, t: 'remove', id: 'x' },
      { v: 1, t: 'remove', id: 'x', s: big(65) },
      { v: 1, t: 'remove', id: 'x', s: 7 },
      // found by the property above: a version whose toString is not a function must not throw a TypeError
      { v: { toString: '' }, t: 'remove', id: 'x' },
      [1, 2, 3],
      null
    ]
    for (const c of cases) expect(() => decodeSignal(encoder.encode(JSON.stringify(c)))).toThrow(InvalidSignalError)
    expect(() => decodeSignal(new Uint8Array(MAX_MEDIA_FRAME_BYTES + 1))).toThrow(InvalidSignalError)
    expect(() => decodeSignal(Uint8Array.from([0xff, 0xfe, 0x7b]))).toThrow(/not UTF-8 JSON/)
  })

  it('checks metadata before it is sent', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(metadataProblem(undefined)).toBeUndefined()
    expect(metadataProblem({ name: 'cam' })).toBeUndefined()
    expect(metadataProblem(cyclic)).toMatch(/not JSON/)
    expect(metadataProblem(() => {})).toMatch(/not JSON/)
    expect(metadataProblem('x'.repeat(MAX_STREAM_METADATA_BYTES))).toMatch(/over 4096/)
  })
})
