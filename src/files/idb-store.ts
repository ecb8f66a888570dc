/**
 * Kept chunks in IndexedDB, for browsers without OPFS synchronous access handles: database
 * `FILE_STORE_NAME` (version 1), store `chunks` (key `[entry, index]`, value a `Blob` of the
 * chunk's bytes, which browsers keep on disk) and store `entries` (key the entry, value
 * `{ count, updated, delivered }`). The delivered `File` is made of the chunk blobs, read from disk.
 */
import { FILE_STORE_NAME } from '../constants.js'
import { lockedEntries, openLocked, storageError } from './store.js'
import type { FileStore, KeptFile } from './store.js'

interface EntryRecord { count: number, updated: number, delivered: boolean }

export class IdbStore implements FileStore {
  readonly kind = 'indexeddb' as const
  private db?: Promise<IDBDatabase>

  static available (): boolean {
    return typeof indexedDB !== 'undefined'
  }

  async open (key: string, size: number, chunkSize: number, count: number): Promise<KeptFile> {
    try {
      const db = await this.database()
      const { entry, value: kept, release } = await openLocked(key, async (entry) => {
        const record = await request<EntryRecord | undefined>(db.transaction('entries').objectStore('entries').get(entry))
        const kept = new Uint8Array(count)
        if (record !== undefined && record.count === count && !record.delivered && count > 0) {
          const keys = await request<IDBValidKey[]>(db.transaction('chunks').objectStore('chunks').getAllKeys(IDBKeyRange.bound([entry, 0], [entry, count - 1])))
          for (const k of keys) kept[(k as [string, number])[1]] = 1
        } else {
          await this.remove(db, entry)
        }
        await request(db.transaction('entries', 'readwrite').objectStore('entries').put({ count, updated: Date.now(), delivered: false }, entry))
        return kept
      })
      return this.kept(db, entry, kept, count, release)
    } catch (err) {
      throw storageError(err, `could not open ${key} in IndexedDB`)
    }
  }

  private kept (db: IDBDatabase, entry: string, kept: Uint8Array, count: number, release: () => void): KeptFile {
    return {
      kept,
      write: async (index, data) => {
        try {
          const tx = db.transaction(['chunks', 'entries'], 'readwrite')
          tx.objectStore('chunks').put(new Blob([data as Uint8Array<ArrayBuffer>]), [entry, index])
          tx.objectStore('entries').put({ count, updated: Date.now(), delivered: false }, entry)
          await done(tx)
        } catch (err) {
          throw storageError(err, `could not keep chunk ${index}`)
        }
        kept[index] = 1
      },
      read: async (index) => {
        try {
          const blob = await request<Blob>(db.transaction('chunks').objectStore('chunks').get([entry, index]))
          return new Uint8Array(await blob.arrayBuffer())
        } catch (err) {
          throw storageError(err, `could not read kept chunk ${index}`)
        }
      },
      deliver: async (name, type) => {
        try {
          const parts = count === 0 ? [] : await request<Blob[]>(db.transaction('chunks').objectStore('chunks').getAll(IDBKeyRange.bound([entry, 0], [entry, count - 1])))
          await request(db.transaction('entries', 'readwrite').objectStore('entries').put({ count, updated: Date.now(), delivered: true }, entry))
          return new File(parts, name, { type })
        } catch (err) {
          release()
          throw storageError(err, 'could not deliver the file from IndexedDB')
        }
      },
      discard: async () => {
        try {
          await this.remove(db, entry)
        } finally {
          release()
        }
      },
      close: async () => { release() }
    }
  }

  async sweep (ttlMs: number): Promise<void> {
    const db = await this.database()
    const locked = await lockedEntries()
    const keys = await request<IDBValidKey[]>(db.transaction('entries').objectStore('entries').getAllKeys())
    const now = Date.now()
    for (const key of keys) {
      const entry = String(key)
      if (locked.has(entry)) continue
      const record = await request<EntryRecord | undefined>(db.transaction('entries').objectStore('entries').get(entry))
      if (record === undefined || record.delivered || now - record.updated > ttlMs) await this.remove(db, entry)
    }
  }

  stop (): void {
    void this.db?.then((db) => { db.close() }, () => {})
    this.db = undefined
  }

  private async remove (db: IDBDatabase, entry: string): Promise<void> {
    const tx = db.transaction(['chunks', 'entries'], 'readwrite')
    tx.objectStore('chunks').delete(IDBKeyRange.bound([entry, 0], [entry, Number.MAX_SAFE_INTEGER]))
    tx.objectStore('entries').delete(entry)
    await done(tx)
  }

  private async database (): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(FILE_STORE_NAME, 1)
      req.onupgradeneeded = () => {
        req.result.createObjectStore('chunks')
        req.result.createObjectStore('entries')
      }
      req.onsuccess = () => { resolve(req.result) }
      req.onerror = () => { reject(req.error) }
      req.onblocked = () => { reject(new Error('IndexedDB upgrade blocked by another tab')) }
    })
    return this.db
  }
}

async function request<T> (req: IDBRequest): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    req.onsuccess = () => { resolve(req.result as T) }
    req.onerror = () => { reject(req.error) }
  })
}

async function done (tx: IDBTransaction): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => { resolve() }
    tx.onerror = () => { reject(tx.error) }
    tx.onabort = () => { reject(tx.error ?? new Error('transaction aborted')) }
  })
}
