/**
 * The decoders of file transfers' network bytes (src/files/wire.ts, and the framing reader of
 * src/files/stream-io.ts), property-based with fast-check: valid frames round-trip, and random or
 * mutated bytes never throw out of a decoder and never make it hold more than its bound (byte
 * fields stay views into the frame; lists and strings stay within their limits).
 */
import fc from 'fast-check'
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import {
  MAX_FILE_CHUNK_BYTES, MAX_FILE_NAME_BYTES, MAX_FILE_TYPE_BYTES, MAX_WANT_INDICES, MANIFEST_HASHES_PER_FRAME, MIN_FILE_CHUNK_BYTES
} from '../../../src/constants.js'
import { readFrames } from '../../../src/files/stream-io.js'
import {
  FRAME_CHUNK, FRAME_MISSING, HASH_BYTES, ID_BYTES, MAX_LABEL_BYTES, ManifestAssembler, OP_GET, OP_MANIFEST, OP_NOTICE,
  OP_OFFER, STATUS_TOO_LARGE, decodeGetFrame, decodeManifestFrame, decodeRequest, decodeStatus, decodeWant, encodeChunk,
  encodeManifestFrames, encodeMissing, encodeRequest, encodeStatus, encodeWant, equalBytes
} from '../../../src/files/wire.js'
import type { FileRequest } from '../../../src/files/wire.js'
import type { Stream } from '@libp2p/interface'

const RUNS = { numRuns: 500 }
const encoder = new TextEncoder()

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n })
/** Strings whose UTF-8 fits in `max` bytes. */
const utf8 = (max: number): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength: max }).filter((s) => encoder.encode(s).byteLength <= max)

const offer = fc.record({
  kind: fc.constantFrom('send' as const, 'share' as const),
  id: bytes(ID_BYTES),
  size: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
  chunkSize: fc.integer({ min: MIN_FILE_CHUNK_BYTES, max: MAX_FILE_CHUNK_BYTES }),
  sha256: bytes(HASH_BYTES),
  listSha256: bytes(HASH_BYTES),
  name: utf8(64),
  type: utf8(32)
})
const label = utf8(128)
const request: fc.Arbitrary<FileRequest> = fc.oneof(
  fc.record({ op: fc.constant(OP_OFFER), label, offer }),
  fc.record({ op: fc.constantFrom(OP_MANIFEST, OP_GET), label, sha256: bytes(HASH_BYTES) }),
  fc.record({ op: fc.constant(OP_NOTICE), label, id: bytes(ID_BYTES), kind: fc.constantFrom(1, 2, 3, 4) as fc.Arbitrary<1 | 2 | 3 | 4>, sha256: bytes(HASH_BYTES) })
) as fc.Arbitrary<FileRequest>

/** A valid frame changed: bytes flipped, cut short or extended. */
function mutated (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), fc.uint8Array({ maxLength: 16 }), fc.boolean())
    .map(([frame, flips, cut, extra, shorten]) => {
      const out = frame.slice()
      for (const [at, value] of flips) if (out.byteLength > 0) out[at % out.byteLength] = value
      if (shorten) return out.subarray(0, cut % (out.byteLength + 1))
      const longer = new Uint8Array(out.byteLength + extra.byteLength)
      longer.set(out)
      longer.set(extra, out.byteLength)
      return longer
    })
}

/** Whether every byte field of `req` is a view into `frame` and within its bounds. */
function withinBounds (req: FileRequest, frame: Uint8Array): boolean {
  const views: Uint8Array[] = []
  if (encoder.encode(req.label).byteLength > MAX_LABEL_BYTES) return false
  if (req.op === OP_OFFER) {
    const o = req.offer
    views.push(o.id, o.sha256, o.listSha256)
    if (o.id.byteLength !== ID_BYTES || o.sha256.byteLength !== HASH_BYTES || o.listSha256.byteLength !== HASH_BYTES) return false
    if (encoder.encode(o.name).byteLength > MAX_FILE_NAME_BYTES || encoder.encode(o.type).byteLength > MAX_FILE_TYPE_BYTES) return false
    if (!Number.isSafeInteger(o.size) || o.size < 0 || o.chunkSize < MIN_FILE_CHUNK_BYTES || o.chunkSize > MAX_FILE_CHUNK_BYTES) return false
  } else if (req.op === OP_NOTICE) {
    views.push(req.id, req.sha256)
  } else {
    views.push(req.sha256)
  }
  return views.every((v) => v.buffer === frame.buffer)
}

describe('file wire format', () => {
  it('round-trips every request', () => {
    fc.assert(fc.property(request, (req) => {
      expect(decodeRequest(encodeRequest(req))).toEqual(req)
    }), RUNS)
  })

  it('decodes random bytes as a request without throwing, within bounds', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (frame) => {
      const req = decodeRequest(frame)
      return req === undefined || withinBounds(req, frame)
    }), RUNS)
  })

  it('decodes mutated requests without throwing, within bounds', () => {
    fc.assert(fc.property(mutated(request.map(encodeRequest)), (frame) => {
      const req = decodeRequest(frame)
      return req === undefined || withinBounds(req, frame)
    }), { numRuns: 2000 })
  })

  it('refuses an offer whose numbers a receiver cannot work with', () => {
    const base: FileRequest = { op: OP_OFFER, label: 'room', offer: { kind: 'send', id: new Uint8Array(ID_BYTES), size: 10, chunkSize: MIN_FILE_CHUNK_BYTES, sha256: new Uint8Array(32), listSha256: new Uint8Array(32), name: 'a', type: '' } }
    const frame = encodeRequest(base)
    // chunk size below the minimum: its field sits after kind, id and size
    const chunkAt = 2 + 2 + 4 + 1 + ID_BYTES + 8
    new DataView(frame.buffer).setUint32(chunkAt, MIN_FILE_CHUNK_BYTES - 1)
    expect(decodeRequest(frame)).toBeUndefined()
    new DataView(frame.buffer).setUint32(chunkAt, MAX_FILE_CHUNK_BYTES + 1)
    expect(decodeRequest(frame)).toBeUndefined()
    // a size of 2^53 or more
    new DataView(frame.buffer).setUint32(chunkAt, MIN_FILE_CHUNK_BYTES)
    new DataView(frame.buffer).setUint32(chunkAt - 8, 2 ** 21)
    expect(decodeRequest(frame)).toBeUndefined()
  })

  it('round-trips status frames and decodes random ones without throwing', () => {
    expect(decodeStatus(encodeStatus(STATUS_TOO_LARGE, 2 ** 40))).toEqual({ code: STATUS_TOO_LARGE, value: 2 ** 40 })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 32 }), (frame) => {
      const s = decodeStatus(frame)
      return s === undefined || (s.code <= 3 && Number.isSafeInteger(s.value))
    }), RUNS)
  })

  it('round-trips want frames and keeps random ones within MAX_WANT_INDICES', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: 2 ** 32 - 1 }), { minLength: 1, maxLength: MAX_WANT_INDICES }), (indices) => {
      expect(decodeWant(encodeWant(indices))).toEqual(indices)
    }), RUNS)
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 4096 }), mutated(fc.array(fc.nat(), { minLength: 1, maxLength: 40 }).map(encodeWant))), (frame) => {
      const want = decodeWant(frame)
      return want === undefined || (want.length > 0 && want.length <= MAX_WANT_INDICES && want.length === (frame.byteLength - 3) / 4)
    }), RUNS)
  })

  it('round-trips chunk and missing frames; a chunk\'s data stays a view, at most MAX_FILE_CHUNK_BYTES', () => {
    fc.assert(fc.property(fc.nat({ max: 2 ** 32 - 1 }), fc.uint8Array({ minLength: 1, maxLength: 4096 }), (index, data) => {
      const f = decodeGetFrame(encodeChunk(index, data))
      expect(f).toMatchObject({ type: FRAME_CHUNK, index })
      expect(f?.type === FRAME_CHUNK && f.data).toEqual(data)
      expect(decodeGetFrame(encodeMissing(index))).toEqual({ type: FRAME_MISSING, index })
    }), RUNS)
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 4096 }), mutated(fc.uint8Array({ minLength: 1, maxLength: 64 }).map((d) => encodeChunk(7, d)))), (frame) => {
      const f = decodeGetFrame(frame)
      if (f === undefined || f.type === FRAME_MISSING) return true
      return f.data.buffer === frame.buffer && f.data.byteLength <= MAX_FILE_CHUNK_BYTES
    }), RUNS)
  })

  it('assembles a manifest from its frames, and never holds more hashes than the file has chunks', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 3 * MANIFEST_HASHES_PER_FRAME }), (count) => {
      const hashes = new Uint8Array(count * HASH_BYTES).map((_, i) => i % 251)
      const m = new ManifestAssembler(count)
      for (const frame of encodeManifestFrames(hashes)) expect(m.add(frame)).toBe(true)
      expect(m.complete).toBe(true)
      expect(equalBytes(m.hashes, hashes)).toBe(true)
    }), { numRuns: 30 })
    fc.assert(fc.property(fc.integer({ min: 0, max: 64 }), fc.array(fc.oneof(fc.uint8Array({ maxLength: 3000 }), mutated(fc.constant(encodeManifestFrames(new Uint8Array(4 * HASH_BYTES))[0]))), { maxLength: 10 }), (count, frames) => {
      const m = new ManifestAssembler(count)
      for (const frame of frames) {
        const f = decodeManifestFrame(frame)
        if (f !== undefined) expect(f.hashes.byteLength).toBeLessThanOrEqual(MANIFEST_HASHES_PER_FRAME * HASH_BYTES)
        m.add(frame)
      }
      return m.hashes.byteLength === count * HASH_BYTES
    }), RUNS)
  })
})

/** A stream that delivers `chunks` as message events, then ends. */
function fakeStream (chunks: Uint8Array[]): Stream {
  const s = new TypedEventEmitter<any>() as any
  s.status = 'open'
  s.readableEnded = false
  s.protocol = '/test'
  queueMicrotask(() => {
    for (let n = 0; n < chunks.length; n++) s.safeDispatchEvent('message', { detail: undefined })
    s.readableEnded = true
    s.safeDispatchEvent('end')
  })
  // the reader takes `evt.data.subarray()`
  const dispatch = s.safeDispatchEvent.bind(s)
  let i = 0
  s.safeDispatchEvent = (type: string, init: any) => {
    if (type !== 'message') return dispatch(type, init)
    const data = chunks[i++]
    const evt = new Event('message') as any
    evt.data = { subarray: () => data }
    return s.dispatchEvent(evt)
  }
  return s as Stream
}

describe('file stream framing', () => {
  it('reads random bytes into frames of at most the bound, or stops with a length error', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 8 }), fc.integer({ min: 1, max: 512 }), async (chunks, max) => {
      try {
        for await (const frame of readFrames(fakeStream(chunks), max)) {
          if (frame.byteLength > max) return false
        }
      } catch (err: any) {
        // a length prefix over the bound, or a varint that never ends, is refused before any allocation for it
        return ['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'UnexpectedEOFError', 'InvalidMessageLengthError'].includes(err.name)
      }
      return true
    }), { numRuns: 300 })
  })

  it('refuses a frame announcing more than the bound without reading it', async () => {
    // varint of 2^30 and nothing after it
    const huge = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x04])
    await expect((async () => { for await (const frame of readFrames(fakeStream([huge]), 1024)) expect(frame).toBeUndefined() })()).rejects.toMatchObject({ name: 'InvalidDataLengthError' })
  })
})
