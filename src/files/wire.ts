/**
 * Wire formats of file transfers (`FILE_PROTOCOL`, `/p2p-rooms/3/file`). Every exchange runs on its
 * own stream over a direct WebRTC connection, framed like the room protocols (an unsigned varint
 * byte length, then that many bytes; see src/streams.ts), at most `MAX_FILE_FRAME_BYTES` a frame.
 * All integers are big-endian.
 *
 * The opener's first frame is a request:
 *
 * | bytes | field                                                                  |
 * | ----- | ---------------------------------------------------------------------- |
 * | 0     | version (`1`)                                                           |
 * | 1     | op: `1` offer, `2` manifest, `3` get, `4` notice                        |
 * | 2–3   | length of the room key, uint16; then the room key, UTF-8 (the label)    |
 * | …     | the op's body                                                           |
 *
 * - **offer** (sender or sharer → member; answered by one status frame):
 *   kind (uint8: `0` send, `1` share) · transfer ID (16 bytes) · size (uint64, < 2^53) ·
 *   chunk size (uint32) · SHA-256 of the file (32) · SHA-256 of the chunk hash list (32) ·
 *   name (uint16 length, UTF-8) · media type (uint8 length, UTF-8)
 * - **manifest** (fetcher → holder): the file's SHA-256 (32). Answered by hash frames: index of
 *   the first (uint32) · up to `MANIFEST_HASHES_PER_FRAME` SHA-256 chunk hashes (32 each), in
 *   order; no frame at all if the holder does not offer that file to the requester.
 * - **get** (fetcher → holder): the file's SHA-256 (32). Then, on the same stream, the fetcher
 *   sends want frames and the holder answers each index asked for, in order, with a chunk frame:
 *   - want: `1` · count (uint16, 1…`MAX_WANT_INDICES`) · chunk indices (uint32 each)
 *   - chunk: `2` · index (uint32) · the chunk's bytes
 *   - missing: `3` · index (uint32): the holder cannot serve it
 * - **notice** (either side, about a `sendFile` transfer; answered by one status frame):
 *   transfer ID (16) · kind (uint8: `1` rejected, `2` cancelled, `3` delivered, `4` failed
 *   verification) · the SHA-256 the receiver computed (32; zeros unless delivered)
 *
 * Status frame: code (uint8: `0` ok, `1` too large, `2` too many, `3` unknown) · a value
 * (uint64: the receiver's `maxFileBytes` for `1`, else 0).
 *
 * A manifest is the list of chunk hashes: chunk `i` is bytes `i × chunk size` up to the next
 * chunk or the end of the file, and the offer's list hash commits to the whole list, so a fetcher
 * checks a manifest from any holder before trusting a single chunk against it.
 */
import { MAX_FILE_CHUNK_BYTES, MAX_FILE_NAME_BYTES, MAX_FILE_TYPE_BYTES, MAX_WANT_INDICES, MANIFEST_HASHES_PER_FRAME, MIN_FILE_CHUNK_BYTES } from '../constants.js'

export const FILE_WIRE_VERSION = 1

export const OP_OFFER = 1
export const OP_MANIFEST = 2
export const OP_GET = 3
export const OP_NOTICE = 4

export const FRAME_WANT = 1
export const FRAME_CHUNK = 2
export const FRAME_MISSING = 3

export const NOTICE_REJECTED = 1
export const NOTICE_CANCELLED = 2
export const NOTICE_DELIVERED = 3
export const NOTICE_FAILED = 4

export const STATUS_OK = 0
export const STATUS_TOO_LARGE = 1
export const STATUS_TOO_MANY = 2
export const STATUS_UNKNOWN = 3

export const ID_BYTES = 16
export const HASH_BYTES = 32
/** Longest room key a request may carry, in bytes (a room key is a topic string, far shorter). */
export const MAX_LABEL_BYTES = 1024

export type NoticeKind = typeof NOTICE_REJECTED | typeof NOTICE_CANCELLED | typeof NOTICE_DELIVERED | typeof NOTICE_FAILED
export type StatusCode = typeof STATUS_OK | typeof STATUS_TOO_LARGE | typeof STATUS_TOO_MANY | typeof STATUS_UNKNOWN

/** What an offer says about a file: everything a receiver decides on, and the commitments it verifies against. */
export interface FileOfferInfo {
  kind: 'send' | 'share'
  /** 16 random bytes naming a `sendFile` transfer (a share has one too, unused). */
  id: Uint8Array
  /** In bytes. */
  size: number
  /** In bytes: every chunk but the last has this size. */
  chunkSize: number
  /** SHA-256 of the whole file. */
  sha256: Uint8Array
  /** SHA-256 of the concatenated chunk hashes: what a manifest must hash to. */
  listSha256: Uint8Array
  name: string
  type: string
}

export type FileRequest =
  | { op: typeof OP_OFFER, label: string, offer: FileOfferInfo }
  | { op: typeof OP_MANIFEST, label: string, sha256: Uint8Array }
  | { op: typeof OP_GET, label: string, sha256: Uint8Array }
  | { op: typeof OP_NOTICE, label: string, id: Uint8Array, kind: NoticeKind, sha256: Uint8Array }

export type GetFrame =
  | { type: typeof FRAME_CHUNK, index: number, data: Uint8Array }
  | { type: typeof FRAME_MISSING, index: number }

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Number of chunks of a file of `size` bytes cut in `chunkSize` byte chunks. */
export function chunkCount (size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize)
}

/** Whether the numbers of an offer are ones a receiver can work with (before its own size limit). */
export function validOfferNumbers (size: number, chunkSize: number): boolean {
  return Number.isSafeInteger(size) && size >= 0 &&
    Number.isInteger(chunkSize) && chunkSize >= MIN_FILE_CHUNK_BYTES && chunkSize <= MAX_FILE_CHUNK_BYTES
}

// --- requests -------------------------------------------------------------------------------

export function encodeRequest (req: FileRequest): Uint8Array {
  const w = new Writer()
  w.u8(FILE_WIRE_VERSION)
  w.u8(req.op)
  w.str16(req.label)
  switch (req.op) {
    case OP_OFFER: {
      const o = req.offer
      w.u8(o.kind === 'send' ? 0 : 1)
      w.bytes(o.id, ID_BYTES)
      w.u64(o.size)
      w.u32(o.chunkSize)
      w.bytes(o.sha256, HASH_BYTES)
      w.bytes(o.listSha256, HASH_BYTES)
      w.str16(o.name)
      w.str8(o.type)
      break
    }
    case OP_MANIFEST:
    case OP_GET:
      w.bytes(req.sha256, HASH_BYTES)
      break
    case OP_NOTICE:
      w.bytes(req.id, ID_BYTES)
      w.u8(req.kind)
      w.bytes(req.sha256, HASH_BYTES)
      break
  }
  return w.done()
}

/**
 * Parses a request frame; `undefined` for anything malformed: another version, an unknown op or
 * kind, a truncated or overlong body, a label, name or type over its bound or not UTF-8, numbers an
 * offer cannot have. Byte fields are views into `bytes`; nothing larger than the frame is allocated.
 */
export function decodeRequest (bytes: Uint8Array): FileRequest | undefined {
  const r = new Reader(bytes)
  if (r.u8() !== FILE_WIRE_VERSION) return undefined
  const op = r.u8()
  const label = r.str16(MAX_LABEL_BYTES)
  if (label === undefined) return undefined
  let req: FileRequest | undefined
  switch (op) {
    case OP_OFFER: {
      const kind = r.u8()
      const id = r.bytes(ID_BYTES)
      const size = r.u64()
      const chunkSize = r.u32()
      const sha256 = r.bytes(HASH_BYTES)
      const listSha256 = r.bytes(HASH_BYTES)
      const name = r.str16(MAX_FILE_NAME_BYTES)
      const type = r.str8(MAX_FILE_TYPE_BYTES)
      if ((kind !== 0 && kind !== 1) || id === undefined || size === undefined || chunkSize === undefined ||
        sha256 === undefined || listSha256 === undefined || name === undefined || type === undefined) return undefined
      if (!validOfferNumbers(size, chunkSize)) return undefined
      req = { op, label, offer: { kind: kind === 0 ? 'send' : 'share', id, size, chunkSize, sha256, listSha256, name, type } }
      break
    }
    case OP_MANIFEST:
    case OP_GET: {
      const sha256 = r.bytes(HASH_BYTES)
      if (sha256 === undefined) return undefined
      req = { op, label, sha256 }
      break
    }
    case OP_NOTICE: {
      const id = r.bytes(ID_BYTES)
      const kind = r.u8()
      const sha256 = r.bytes(HASH_BYTES)
      if (id === undefined || sha256 === undefined) return undefined
      if (kind !== NOTICE_REJECTED && kind !== NOTICE_CANCELLED && kind !== NOTICE_DELIVERED && kind !== NOTICE_FAILED) return undefined
      req = { op, label, id, kind, sha256 }
      break
    }
    default:
      return undefined
  }
  return r.atEnd() ? req : undefined
}

// --- status ---------------------------------------------------------------------------------

export function encodeStatus (code: StatusCode, value = 0): Uint8Array {
  const w = new Writer()
  w.u8(code)
  w.u64(value)
  return w.done()
}

export function decodeStatus (bytes: Uint8Array): { code: StatusCode, value: number } | undefined {
  const r = new Reader(bytes)
  const code = r.u8()
  const value = r.u64()
  if (code === undefined || code > STATUS_UNKNOWN || value === undefined || !r.atEnd()) return undefined
  return { code: code as StatusCode, value }
}

// --- manifest -------------------------------------------------------------------------------

/** Hash frames of a manifest: `hashes` is the chunk hashes concatenated (32 bytes each). */
export function encodeManifestFrames (hashes: Uint8Array): Uint8Array[] {
  const count = hashes.byteLength / HASH_BYTES
  const frames: Uint8Array[] = []
  for (let first = 0; first < count; first += MANIFEST_HASHES_PER_FRAME) {
    const n = Math.min(MANIFEST_HASHES_PER_FRAME, count - first)
    const out = new Uint8Array(4 + n * HASH_BYTES)
    new DataView(out.buffer).setUint32(0, first)
    out.set(hashes.subarray(first * HASH_BYTES, (first + n) * HASH_BYTES), 4)
    frames.push(out)
  }
  return frames
}

/** A hash frame: the index of its first hash and the hashes (a view); `undefined` if malformed. */
export function decodeManifestFrame (bytes: Uint8Array): { first: number, hashes: Uint8Array } | undefined {
  const r = new Reader(bytes)
  const first = r.u32()
  const rest = bytes.byteLength - 4
  if (first === undefined || rest <= 0 || rest % HASH_BYTES !== 0 || rest / HASH_BYTES > MANIFEST_HASHES_PER_FRAME) return undefined
  return { first, hashes: bytes.subarray(4) }
}

/**
 * Collects the hash frames of one manifest, in order, for a file of `count` chunks: never holds
 * more than `count` hashes. `add` returns `false` for a frame out of order or past the end.
 */
export class ManifestAssembler {
  readonly hashes: Uint8Array
  private next = 0

  constructor (readonly count: number) {
    this.hashes = new Uint8Array(count * HASH_BYTES)
  }

  add (frame: Uint8Array): boolean {
    const f = decodeManifestFrame(frame)
    if (f === undefined || f.first !== this.next) return false
    const n = f.hashes.byteLength / HASH_BYTES
    if (this.next + n > this.count) return false
    this.hashes.set(f.hashes, this.next * HASH_BYTES)
    this.next += n
    return true
  }

  get complete (): boolean {
    return this.next === this.count
  }
}

// --- get stream -----------------------------------------------------------------------------

export function encodeWant (indices: number[]): Uint8Array {
  const out = new Uint8Array(3 + indices.length * 4)
  const view = new DataView(out.buffer)
  out[0] = FRAME_WANT
  view.setUint16(1, indices.length)
  indices.forEach((index, i) => { view.setUint32(3 + i * 4, index) })
  return out
}

/** The chunk indices of a want frame; `undefined` if malformed or over `MAX_WANT_INDICES`. */
export function decodeWant (bytes: Uint8Array): number[] | undefined {
  const r = new Reader(bytes)
  if (r.u8() !== FRAME_WANT) return undefined
  const n = r.u16()
  if (n === undefined || n === 0 || n > MAX_WANT_INDICES || bytes.byteLength !== 3 + n * 4) return undefined
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(r.u32() as number)
  return out
}

export function encodeChunk (index: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.byteLength)
  out[0] = FRAME_CHUNK
  new DataView(out.buffer).setUint32(1, index)
  out.set(data, 5)
  return out
}

export function encodeMissing (index: number): Uint8Array {
  const out = new Uint8Array(5)
  out[0] = FRAME_MISSING
  new DataView(out.buffer).setUint32(1, index)
  return out
}

/** A frame from a holder on a get stream; `data` is a view into `bytes`. `undefined` if malformed. */
export function decodeGetFrame (bytes: Uint8Array): GetFrame | undefined {
  const r = new Reader(bytes)
  const type = r.u8()
  const index = r.u32()
  if (index === undefined) return undefined
  if (type === FRAME_CHUNK) {
    const data = bytes.subarray(5)
    if (data.byteLength === 0 || data.byteLength > MAX_FILE_CHUNK_BYTES) return undefined
    return { type, index, data }
  }
  if (type === FRAME_MISSING && r.atEnd()) return { type, index }
  return undefined
}

// --- helpers --------------------------------------------------------------------------------

export function toHex (bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

/** `undefined` unless `hex` is an even-length string of hex digits. */
export function fromHex (hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return undefined
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

class Writer {
  private readonly parts: Uint8Array[] = []
  private length = 0

  u8 (n: number): void { this.push(Uint8Array.of(n)) }
  u16 (n: number): void { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, n); this.push(b) }
  u32 (n: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); this.push(b) }
  u64 (n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${n} is not a size`)
    this.u32(Math.floor(n / 2 ** 32))
    this.u32(n % 2 ** 32)
  }

  bytes (b: Uint8Array, length: number): void {
    if (b.byteLength !== length) throw new RangeError(`expected ${length} bytes, got ${b.byteLength}`)
    this.push(b)
  }

  str8 (s: string): void {
    const b = encoder.encode(s)
    if (b.byteLength > 0xff) throw new RangeError('string too long')
    this.u8(b.byteLength)
    this.push(b)
  }

  str16 (s: string): void {
    const b = encoder.encode(s)
    if (b.byteLength > 0xffff) throw new RangeError('string too long')
    this.u16(b.byteLength)
    this.push(b)
  }

  done (): Uint8Array {
    const out = new Uint8Array(this.length)
    let at = 0
    for (const p of this.parts) {
      out.set(p, at)
      at += p.byteLength
    }
    return out
  }

  private push (b: Uint8Array): void {
    this.parts.push(b)
    this.length += b.byteLength
  }
}

/** Reads fields off a frame; every read past the end returns `undefined` and stays failed. */
class Reader {
  private at = 0
  private failed = false
  private readonly view: DataView

  constructor (private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  u8 (): number | undefined { return this.take(1) ? this.view.getUint8(this.at - 1) : undefined }
  u16 (): number | undefined { return this.take(2) ? this.view.getUint16(this.at - 2) : undefined }
  u32 (): number | undefined { return this.take(4) ? this.view.getUint32(this.at - 4) : undefined }

  u64 (): number | undefined {
    const hi = this.u32()
    const lo = this.u32()
    if (hi === undefined || lo === undefined || hi >= 2 ** 21) return undefined
    return hi * 2 ** 32 + lo
  }

  bytes (n: number): Uint8Array | undefined {
    return this.take(n) ? this.buf.subarray(this.at - n, this.at) : undefined
  }

  str8 (max: number): string | undefined {
    const n = this.u8()
    return n === undefined || n > max ? undefined : this.utf8(n)
  }

  str16 (max: number): string | undefined {
    const n = this.u16()
    return n === undefined || n > max ? undefined : this.utf8(n)
  }

  atEnd (): boolean {
    return !this.failed && this.at === this.buf.byteLength
  }

  private utf8 (n: number): string | undefined {
    const b = this.bytes(n)
    if (b === undefined) return undefined
    try {
      return decoder.decode(b)
    } catch {
      return undefined
    }
  }

  private take (n: number): boolean {
    if (this.failed || this.at + n > this.buf.byteLength) {
      this.failed = true
      return false
    }
    this.at += n
    return true
  }
}
