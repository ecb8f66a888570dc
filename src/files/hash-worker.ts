/**
 * The files' hashing worker: SHA-256 off the page's main thread, where every data channel message
 * of a transfer is sent and received. Bundlers start it from `new URL('./hash-worker.js',
 * import.meta.url)` (hashing.ts), with hash-wasm bundled in.
 *
 * Messages in (`id` names a job): `describe` (a Blob and a chunk size: the chunk hashes and the
 * whole file's hash, reading the blob itself one chunk ahead), `abort` (a describe), `update`
 * (the next bytes of whole-file hash `id`, created on first use), `digest` (ends hash `id`).
 * Messages out: `{ id, hashes?, sha256 }` or `{ id, error }`; `{ ready: true }` once loaded.
 */
import { createSHA256 } from 'hash-wasm'
import { hashChunks } from './chunks.js'
import type { IHasher } from 'hash-wasm'

export type HashRequest =
  | { op: 'describe', id: number, blob: Blob, chunkSize: number }
  | { op: 'abort', id: number }
  | { op: 'update', id: number, data: Uint8Array }
  | { op: 'digest', id: number }

export type HashReply =
  | { ready: true }
  | { id: number, hashes?: Uint8Array, sha256: Uint8Array }
  | { id: number, error: string }

const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<HashRequest>) => void) | null, postMessage: (m: HashReply, transfer?: Transferable[]) => void }
const hashers = new Map<number, Promise<IHasher>>()
const aborted = new Set<number>()

async function hasher (id: number): Promise<IHasher> {
  let h = hashers.get(id)
  if (h === undefined) {
    h = createSHA256().then((x) => { x.init(); return x })
    hashers.set(id, h)
  }
  return h
}

async function describe (id: number, blob: Blob, chunkSize: number): Promise<{ hashes: Uint8Array, sha256: Uint8Array }> {
  const whole = await createSHA256()
  whole.init()
  const hashes = await hashChunks(blob, chunkSize, whole, () => { if (aborted.has(id)) throw new Error('aborted') })
  return { hashes, sha256: whole.digest('binary') }
}

async function run (m: HashRequest): Promise<void> {
  switch (m.op) {
    case 'describe': {
      try {
        const { hashes, sha256 } = await describe(m.id, m.blob, m.chunkSize)
        scope.postMessage({ id: m.id, hashes, sha256 }, [hashes.buffer, sha256.buffer])
      } finally {
        aborted.delete(m.id)
      }
      return
    }
    case 'abort':
      aborted.add(m.id)
      return
    case 'update':
      (await hasher(m.id)).update(m.data)
      return
    case 'digest': {
      const sha256 = (await hasher(m.id)).digest('binary')
      hashers.delete(m.id)
      scope.postMessage({ id: m.id, sha256 }, [sha256.buffer])
    }
  }
}

// updates of one hash must be applied in the order they came: each job waits for the one before
let queue = Promise.resolve()
scope.onmessage = (e) => {
  const m = e.data
  if (m.op === 'abort') {
    aborted.add(m.id)
    return
  }
  const job = queue.then(async () => run(m))
  // a describe reads its blob for a while: other jobs need not wait for it
  if (m.op !== 'describe') queue = job.catch(() => {})
  job.catch((err: Error) => { scope.postMessage({ id: m.id, error: `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}` }) })
}
scope.postMessage({ ready: true })
