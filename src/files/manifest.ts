/**
 * A file's manifest: its size, chunk size, the SHA-256 of every chunk and of the whole. A sender
 * computes it once per `Blob` by reading the blob slice by slice (never whole), hashing each chunk
 * with WebCrypto and the whole incrementally with hash-wasm (WebCrypto has no incremental digest,
 * and a file may not fit in memory), in the hashing worker (hashing.ts) where there is one.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { createSHA256 } from 'hash-wasm'
import { hashChunks } from './chunks.js'
import { describeInWorker, workerFileHasher } from './hashing.js'
import { HASH_BYTES, chunkCount } from './wire.js'

export interface Manifest {
  /** In bytes. */
  size: number
  /** In bytes. */
  chunkSize: number
  /** Number of chunks. */
  count: number
  /** SHA-256 of the whole file. */
  sha256: Uint8Array
  /** The chunk hashes, concatenated (32 bytes each). */
  hashes: Uint8Array
  /** SHA-256 of `hashes`: what an offer commits to. */
  listSha256: Uint8Array
}

/** SHA-256 of `data` (WebCrypto). */
export async function sha256 (data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>))
}

/** An incremental SHA-256 of the whole file, fed chunk by chunk in order; `update` keeps no reference to `data`. */
export interface WholeFileHasher { update: (data: Uint8Array) => void, digest: () => Promise<Uint8Array> }

/**
 * The hashing worker's, so a receiver's main thread only copies each chunk; else hash-wasm's
 * SHA-256 here (WebAssembly, 2.3 times @noble/hashes' speed), or @noble/hashes' where WebAssembly
 * cannot be compiled (a page whose Content-Security-Policy lacks 'wasm-unsafe-eval').
 */
export async function wholeFileHasher (): Promise<WholeFileHasher> {
  const inWorker = await workerFileHasher()
  if (inWorker !== undefined) return inWorker
  return localFileHasher()
}

/** hash-wasm's SHA-256 in this thread, or @noble/hashes'. */
export async function localFileHasher (): Promise<WholeFileHasher> {
  try {
    const h = await createSHA256()
    h.init()
    return { update: (data) => { h.update(data) }, digest: async () => h.digest('binary') }
  } catch {
    const h = nobleSha256.create()
    return { update: (data) => { h.update(data) }, digest: async () => h.digest() }
  }
}

export { chunkRange, readChunk } from './chunks.js'

const described = new WeakMap<Blob, Map<number, Promise<Manifest>>>()

/**
 * The manifest of `blob` cut in `chunkSize` chunks; computed once per blob and chunk size (a blob
 * never changes), reading one chunk ahead of the one being hashed.
 */
export async function describeBlob (blob: Blob, chunkSize: number, signal?: AbortSignal): Promise<Manifest> {
  let byBlob = described.get(blob)
  if (byBlob === undefined) {
    byBlob = new Map()
    described.set(blob, byBlob)
  }
  let manifest = byBlob.get(chunkSize)
  if (manifest === undefined) {
    manifest = computeManifest(blob, chunkSize, signal)
    byBlob.set(chunkSize, manifest)
    // a failed or aborted description must not stay cached
    manifest.catch(() => { if (byBlob?.get(chunkSize) === manifest) byBlob.delete(chunkSize) })
  }
  return manifest
}

async function computeManifest (blob: Blob, chunkSize: number, signal?: AbortSignal): Promise<Manifest> {
  const size = blob.size
  const count = chunkCount(size, chunkSize)
  const inWorker = await describeInWorker(blob, chunkSize, signal)
  if (inWorker !== undefined) return { size, chunkSize, count, sha256: inWorker.sha256, hashes: inWorker.hashes, listSha256: await sha256(inWorker.hashes) }
  const whole = await localFileHasher()
  const hashes = await hashChunks(blob, chunkSize, whole, () => { signal?.throwIfAborted() })
  return { size, chunkSize, count, sha256: await whole.digest(), hashes, listSha256: await sha256(hashes) }
}

/** The expected hash of chunk `index`, a view into `hashes`. */
export function chunkHash (hashes: Uint8Array, index: number): Uint8Array {
  return hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES)
}
