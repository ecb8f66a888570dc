/**
 * SHA-256 of whole files in a worker (hash-worker.ts), so hashing never holds up the main thread
 * that sends and receives every data channel message: a sender's manifest (each chunk and the
 * whole), a receiver's whole-file hash fed chunk by chunk. Where no worker starts (Node, a page
 * whose Content-Security-Policy refuses it) the same hashes are computed in this thread.
 *
 * One worker per page, started on first use and shared by every node of the page (hashing keeps
 * no state between jobs), like the per-Blob manifest cache of manifest.ts.
 */
import type { HashReply, HashRequest } from './hash-worker.js'

/** How long a worker has to load and say it is ready before hashing runs in this thread, in ms. */
const WORKER_START_MS = 10_000

interface Job { resolve: (r: { hashes?: Uint8Array, sha256: Uint8Array }) => void, reject: (e: Error) => void }

class HashWorker {
  private readonly worker: Worker
  private readonly jobs = new Map<number, Job>()
  private nextId = 0

  constructor (worker: Worker) {
    this.worker = worker
    worker.onmessage = (e: MessageEvent<HashReply>) => {
      const m = e.data
      if ('ready' in m) return
      const job = this.jobs.get(m.id)
      if (job === undefined) return
      this.jobs.delete(m.id)
      if ('error' in m) job.reject(new Error(`hashing failed: ${m.error}`))
      else job.resolve(m)
    }
    worker.onerror = (e) => {
      for (const job of this.jobs.values()) job.reject(new Error(`the hashing worker failed: ${e.message}`))
      this.jobs.clear()
    }
  }

  id (): number {
    return this.nextId++
  }

  post (m: HashRequest, transfer: Transferable[] = []): void {
    this.worker.postMessage(m, transfer)
  }

  /** Posts `m` and resolves with the worker's answer to it. */
  async ask (m: HashRequest): Promise<{ hashes?: Uint8Array, sha256: Uint8Array }> {
    return new Promise((resolve, reject) => {
      this.jobs.set(m.id, { resolve, reject })
      this.post(m)
    })
  }
}

let started: Promise<HashWorker | undefined> | undefined

/** The page's hashing worker, or `undefined` where none starts. */
export async function hashWorker (): Promise<HashWorker | undefined> {
  started ??= start()
  return started
}

async function start (): Promise<HashWorker | undefined> {
  if (typeof Worker === 'undefined') return undefined
  let worker: Worker
  try {
    worker = new Worker(new URL('./hash-worker.js', import.meta.url), { type: 'module' })
  } catch {
    return undefined
  }
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => { resolve(false) }, WORKER_START_MS)
    worker.onmessage = (e: MessageEvent<HashReply>) => { if ('ready' in e.data) { clearTimeout(timer); resolve(true) } }
    worker.onerror = () => { clearTimeout(timer); resolve(false) }
  })
  if (!ready) {
    worker.terminate()
    return undefined
  }
  return new HashWorker(worker)
}

/**
 * The chunk hashes (32 bytes each, concatenated) and whole-file SHA-256 of `blob` cut in
 * `chunkSize` chunks, computed by the worker; `undefined` where there is none.
 */
export async function describeInWorker (blob: Blob, chunkSize: number, signal?: AbortSignal): Promise<{ hashes: Uint8Array, sha256: Uint8Array } | undefined> {
  const w = await hashWorker()
  if (w === undefined) return undefined
  signal?.throwIfAborted()
  const id = w.id()
  const onAbort = (): void => { w.post({ op: 'abort', id }) }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const r = w.ask({ op: 'describe', id, blob, chunkSize })
    const aborted = new Promise<never>((_resolve, reject) => {
      signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
    })
    aborted.catch(() => {})
    const { hashes, sha256 } = await Promise.race([r, aborted])
    return { hashes: hashes as Uint8Array, sha256 }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}

/** An incremental whole-file SHA-256 in the worker: `update` hands over a copy of the bytes and returns at once. */
export async function workerFileHasher (): Promise<{ update: (data: Uint8Array) => void, digest: () => Promise<Uint8Array> } | undefined> {
  const w = await hashWorker()
  if (w === undefined) return undefined
  const id = w.id()
  return {
    update: (data) => {
      const copy = data.slice()
      w.post({ op: 'update', id, data: copy }, [copy.buffer])
    },
    digest: async () => (await w.ask({ op: 'digest', id })).sha256
  }
}
