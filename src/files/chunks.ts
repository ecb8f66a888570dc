/**
 * Reading a Blob chunk by chunk and hashing its chunks: the one loop behind a manifest, run in the
 * hashing worker (hash-worker.ts) or, where there is none, in the page (manifest.ts). Imports
 * nothing that a worker bundle should not carry.
 */
import { HASH_BYTES, chunkCount } from './wire.js'

/** Byte range `[start, end)` of chunk `index`. */
export function chunkRange (size: number, chunkSize: number, index: number): [number, number] {
  const start = index * chunkSize
  return [start, Math.min(size, start + chunkSize)]
}

/** Reads chunk `index` of `blob` (one slice: the blob is never read whole). */
export async function readChunk (blob: Blob, chunkSize: number, index: number): Promise<Uint8Array> {
  const [start, end] = chunkRange(blob.size, chunkSize, index)
  return new Uint8Array(await blob.slice(start, end).arrayBuffer())
}

/**
 * The SHA-256 of every chunk of `blob` (32 bytes each, concatenated), reading one chunk ahead of
 * the one being hashed and feeding each, in order, to `whole` (the whole file's hash).
 * `throwIfAborted` is called before each chunk.
 */
export async function hashChunks (blob: Blob, chunkSize: number, whole: { update: (data: Uint8Array) => void }, throwIfAborted: () => void): Promise<Uint8Array> {
  const count = chunkCount(blob.size, chunkSize)
  const hashes = new Uint8Array(count * HASH_BYTES)
  let next = count > 0 ? readChunk(blob, chunkSize, 0) : undefined
  for (let i = 0; i < count; i++) {
    throwIfAborted()
    const data = await (next as Promise<Uint8Array>)
    next = i + 1 < count ? readChunk(blob, chunkSize, i + 1) : undefined
    // WebCrypto's digest runs on another thread while `whole` takes the same bytes here
    const digest = crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>)
    whole.update(data)
    hashes.set(new Uint8Array(await digest), i * HASH_BYTES)
  }
  return hashes
}
