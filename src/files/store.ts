/**
 * Where a receiver keeps the verified chunks of a file while it arrives, so that a transfer
 * interrupted by a dropped connection or a reload resumes from them, and the delivered file reads
 * from disk rather than memory. Entries are keyed by the file's SHA-256 and chunk size.
 *
 * - OPFS (opfs-store.ts): one file written in place as chunks arrive, by a worker holding a
 *   synchronous access handle; the delivered `File` reads from it.
 * - IndexedDB (idb-store.ts) where OPFS is missing: one Blob per chunk.
 * - memory (here): Node, or a browser with neither; nothing survives the page.
 *
 * A page holds the Web Lock `FILE_LOCK_PREFIX + entry` while it uses an entry (receiving it, or
 * the delivered file reading from it). An entry nobody holds is removed by `sweep` once it was
 * delivered, or once it is older than the TTL; a cancelled one at once.
 */
import { FILE_LOCK_PREFIX } from '../constants.js'
import { FileStorageError } from '../errors.js'

/** The kept state of one file being received. */
export interface KeptFile {
  /** Which chunks are kept: one byte per chunk, 1 when kept (written after its bytes). */
  readonly kept: Uint8Array
  /** Stores chunk `index` (verified by the caller) and marks it kept. */
  write(index: number, data: Uint8Array): Promise<void>
  /** Reads kept chunk `index` back. */
  read(index: number): Promise<Uint8Array>
  /** Every chunk is kept: finishes the entry and returns the file, read from storage. */
  deliver(name: string, type: string): Promise<File>
  /** Removes the entry and its chunks (cancelled, or failed verification). */
  discard(): Promise<void>
  /** Stops using the entry and keeps its chunks for a later resume (until the TTL). */
  close(): Promise<void>
}

export interface FileStore {
  readonly kind: 'opfs' | 'indexeddb' | 'memory'
  /**
   * Opens the entry of a file (`key`: its SHA-256 and chunk size) of `count` chunks and `size`
   * bytes, creating it if new; its `kept` says which chunks an earlier page already verified.
   *
   * @throws FileStorageError when storage is unavailable or full
   */
  open(key: string, size: number, chunkSize: number, count: number): Promise<KeptFile>
  /** Removes entries no page uses that were delivered, or are older than `ttlMs`. */
  sweep(ttlMs: number): Promise<void>
  /** Releases what the store holds (a worker). */
  stop(): void
}

/** Nothing survives the page: for Node, and browsers without OPFS and IndexedDB. */
export class MemoryStore implements FileStore {
  readonly kind = 'memory' as const
  private readonly entries = new Map<string, { chunks: Map<number, Uint8Array>, kept: Uint8Array, users: number }>()

  async open (key: string, size: number, chunkSize: number, count: number): Promise<KeptFile> {
    let entry = this.entries.get(key)
    if (entry === undefined || entry.kept.byteLength !== count) {
      entry = { chunks: new Map(), kept: new Uint8Array(count), users: 0 }
      this.entries.set(key, entry)
    }
    const e = entry
    e.users++
    let open = true
    const release = (): void => {
      if (open) e.users--
      open = false
    }
    return {
      kept: e.kept,
      write: async (index, data) => {
        e.chunks.set(index, data.slice())
        e.kept[index] = 1
      },
      read: async (index) => {
        const data = e.chunks.get(index)
        if (data === undefined) throw new FileStorageError(`chunk ${index} is not kept`)
        return data
      },
      deliver: async (name, type) => {
        const parts = Array.from({ length: count }, (_, i) => e.chunks.get(i) as Uint8Array<ArrayBuffer>)
        release()
        if (this.entries.get(key) === e) this.entries.delete(key)
        return new File(parts, name, { type })
      },
      discard: async () => {
        release()
        if (this.entries.get(key) === e) this.entries.delete(key)
      },
      close: async () => { release() }
    }
  }

  async sweep (): Promise<void> {}
  stop (): void {}
}

/**
 * Holds the Web Lock of entry `name` until `release` is called or the page goes away; resolves
 * with `undefined` if another page still holds it after `waitMs` (a reload's new page may ask
 * before the old page has let go). Without Web Locks (Node, insecure origins) every entry counts
 * as ours.
 */
export async function lockEntry (name: string, waitMs: number): Promise<{ release: () => void } | undefined> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks
  if (locks === undefined) return { release: () => {} }
  return new Promise((resolve, reject) => {
    let release = (): void => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    const options: LockOptions = waitMs > 0 ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true }
    locks.request(FILE_LOCK_PREFIX + name, options, async (lock) => {
      if (lock === null) {
        resolve(undefined)
        return
      }
      resolve({ release })
      await held
    }).catch((err: Error) => {
      if (err.name === 'AbortError' || err.name === 'TimeoutError') resolve(undefined)
      else reject(err)
    })
  })
}

/** How long a page waits for a kept file's lock before using an entry of its own, in ms. */
const LOCK_WAIT_MS = 1_000

/** Names of entries whose lock some page of this origin holds. */
export async function lockedEntries (): Promise<Set<string>> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks
  if (locks === undefined) return new Set()
  const state = await locks.query()
  return new Set([...(state.held ?? []), ...(state.pending ?? [])]
    .map((l) => l.name ?? '')
    .filter((n) => n.startsWith(FILE_LOCK_PREFIX))
    .map((n) => n.slice(FILE_LOCK_PREFIX.length)))
}

/**
 * Opens an entry under its lock: the file's own entry if no other page uses it, else one of its
 * own (a second tab of the profile receiving the same file), which resumes nothing.
 */
export async function openLocked<T> (key: string, open: (entry: string) => Promise<T>): Promise<{ entry: string, value: T, release: () => void }> {
  let entry = key
  let lock = await lockEntry(entry, LOCK_WAIT_MS)
  if (lock === undefined) {
    entry = `${key}~${Math.random().toString(36).slice(2, 10)}`
    lock = await lockEntry(entry, 0)
    if (lock === undefined) throw new FileStorageError(`could not lock a storage entry for ${key}`)
  }
  try {
    return { entry, value: await open(entry), release: lock.release }
  } catch (err) {
    lock.release()
    throw err
  }
}

/** Wraps a storage failure in `FileStorageError` (keeping one that already is). */
export function storageError (err: unknown, what: string): Error {
  if (err instanceof Error && err.name === 'FileStorageError') return err
  return new FileStorageError(`${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err })
}
