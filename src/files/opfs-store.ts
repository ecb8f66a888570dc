/**
 * Kept chunks in the Origin Private File System: directory `FILE_STORE_NAME/<entry>/` holds
 * `data`, the file itself with every kept chunk at its offset, and `map`, one byte per chunk, 1
 * once that chunk's bytes were written. Removing `map` marks the entry delivered.
 *
 * Writes go through a dedicated worker holding `FileSystemSyncAccessHandle`s: they land in the
 * file in place, at once, so a page that reloads keeps every chunk written before it went away
 * (a main-thread `FileSystemWritableFileStream` writes to a copy that only replaces the file when
 * closed, and reopening copies the whole file). The main thread only transfers each chunk's buffer
 * to the worker; the delivered `File` is OPFS's own, read from disk.
 */
import { FILE_STORE_NAME } from '../constants.js'
import { FileStorageError } from '../errors.js'
import { lockedEntries, openLocked, storageError } from './store.js'
import type { FileStore, KeptFile } from './store.js'

/** The worker, as source: it runs from a blob: URL, so the library needs no bundler support for workers. */
const WORKER_SOURCE = `
const open = new Map()
const ONE = Uint8Array.of(1)
async function dirOf (entry) {
  const root = await navigator.storage.getDirectory()
  const top = await root.getDirectoryHandle(${JSON.stringify(FILE_STORE_NAME)}, { create: true })
  return top.getDirectoryHandle(entry, { create: true })
}
function handles (entry) {
  const h = open.get(entry)
  if (h === undefined) throw new Error('entry ' + entry + ' is not open')
  return h
}
function closeHandles (entry) {
  const h = open.get(entry)
  if (h === undefined) return
  open.delete(entry)
  h.data.flush(); h.map.flush(); h.data.close(); h.map.close()
}
async function run (m) {
  switch (m.op) {
    case 'probe':
      return typeof FileSystemFileHandle !== 'undefined' && 'createSyncAccessHandle' in FileSystemFileHandle.prototype && typeof navigator.storage?.getDirectory === 'function'
    case 'open': {
      const dir = await dirOf(m.entry)
      const data = await (await dir.getFileHandle('data', { create: true })).createSyncAccessHandle()
      let map
      try {
        map = await (await dir.getFileHandle('map', { create: true })).createSyncAccessHandle()
      } catch (err) { data.close(); throw err }
      open.set(m.entry, { data, map })
      const kept = new Uint8Array(m.count)
      if (map.getSize() === m.count) map.read(kept, { at: 0 })
      else { map.truncate(0); map.truncate(m.count) }
      return [kept, [kept.buffer]]
    }
    case 'write': {
      const h = handles(m.entry)
      const bytes = new Uint8Array(m.buf)
      if (h.data.write(bytes, { at: m.at }) !== bytes.byteLength) throw new Error('short write (storage full?)')
      if (h.map.write(ONE, { at: m.index }) !== 1) throw new Error('short write (storage full?)')
      return undefined
    }
    case 'read': {
      const out = new Uint8Array(m.length)
      if (handles(m.entry).data.read(out, { at: m.at }) !== m.length) throw new Error('short read')
      return [out, [out.buffer]]
    }
    case 'finish': {
      const h = handles(m.entry)
      h.data.truncate(m.size)
      closeHandles(m.entry)
      await (await dirOf(m.entry)).removeEntry('map')
      return undefined
    }
    case 'close':
      closeHandles(m.entry)
      return undefined
  }
  throw new Error('unknown op ' + m.op)
}
onmessage = async (e) => {
  const m = e.data
  try {
    const r = await run(m)
    if (Array.isArray(r)) postMessage({ id: m.id, result: r[0] }, r[1])
    else postMessage({ id: m.id, result: r })
  } catch (err) {
    postMessage({ id: m.id, error: (err && err.name ? err.name : 'Error') + ': ' + (err && err.message ? err.message : String(err)) })
  }
}
`

interface Pending { resolve: (v: any) => void, reject: (e: Error) => void }

export class OpfsStore implements FileStore {
  readonly kind = 'opfs' as const
  private worker?: Worker
  private readonly pending = new Map<number, Pending>()
  private nextId = 0

  /** Whether OPFS with synchronous access handles works here (it starts the worker). */
  async probe (): Promise<boolean> {
    try {
      return await this.call<boolean>({ op: 'probe' })
    } catch {
      return false
    }
  }

  async open (key: string, size: number, chunkSize: number, count: number): Promise<KeptFile> {
    try {
      const { entry, value: kept, release } = await openLocked(key, async (entry) => this.openEntry(entry, count))
      return this.kept(entry, kept, size, chunkSize, release)
    } catch (err) {
      throw storageError(err, `could not open ${key} in OPFS`)
    }
  }

  /**
   * Opens the entry's access handles. A page that just reloaded may find them still held by the
   * old page's worker for a moment (`NoModificationAllowedError`): it asks again, for up to 2 s.
   */
  private async openEntry (entry: string, count: number): Promise<Uint8Array> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.call<Uint8Array>({ op: 'open', entry, count })
      } catch (err) {
        if (attempt >= 10 || !String((err as Error).message).includes('NoModificationAllowedError')) throw err
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  private kept (entry: string, kept: Uint8Array, size: number, chunkSize: number, release: () => void): KeptFile {
    let closed = false
    const finish = async (op: 'close' | 'finish'): Promise<void> => {
      if (closed) return
      closed = true
      await this.call({ op, entry, size })
    }
    return {
      kept,
      write: async (index, data) => {
        // the worker takes the buffer over: copy a view into a larger buffer, hand over one that is exactly the chunk
        const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice()
        try {
          await this.call({ op: 'write', entry, index, at: index * chunkSize, buf: own.buffer }, [own.buffer as ArrayBuffer])
        } catch (err) {
          throw storageError(err, `could not keep chunk ${index}`)
        }
        kept[index] = 1
      },
      read: async (index) => {
        const at = index * chunkSize
        try {
          return await this.call<Uint8Array>({ op: 'read', entry, at, length: Math.min(chunkSize, size - at) })
        } catch (err) {
          throw storageError(err, `could not read kept chunk ${index}`)
        }
      },
      deliver: async (name, type) => {
        try {
          await finish('finish')
          const file = await (await (await this.dir(entry)).getFileHandle('data')).getFile()
          // the lock stays held while this page lives: the delivered file reads from this entry
          return new File([file], name, { type, lastModified: file.lastModified })
        } catch (err) {
          release()
          throw storageError(err, 'could not deliver the file from OPFS')
        }
      },
      discard: async () => {
        try {
          await finish('close')
          const top = await this.top()
          await top.removeEntry(entry, { recursive: true })
        } catch (err) {
          if ((err as Error)?.name !== 'NotFoundError') throw storageError(err, 'could not remove kept chunks')
        } finally {
          release()
        }
      },
      close: async () => {
        try {
          await finish('close')
        } finally {
          release()
        }
      }
    }
  }

  async sweep (ttlMs: number): Promise<void> {
    const top = await this.top()
    const locked = await lockedEntries()
    const now = Date.now()
    for await (const [name, handle] of (top as any).entries() as AsyncIterable<[string, FileSystemHandle]>) {
      if (handle.kind !== 'directory' || locked.has(name)) continue
      const dir = handle as FileSystemDirectoryHandle
      let stale = true
      try {
        const map = await (await dir.getFileHandle('map')).getFile()
        stale = now - map.lastModified > ttlMs
      } catch {
        // no map: delivered, and no page reads it any more
      }
      if (stale) await top.removeEntry(name, { recursive: true }).catch(() => {})
    }
  }

  stop (): void {
    this.worker?.terminate()
    this.worker = undefined
    for (const p of this.pending.values()) p.reject(new FileStorageError('the file store was stopped'))
    this.pending.clear()
  }

  private async top (): Promise<FileSystemDirectoryHandle> {
    return (await navigator.storage.getDirectory()).getDirectoryHandle(FILE_STORE_NAME, { create: true })
  }

  private async dir (entry: string): Promise<FileSystemDirectoryHandle> {
    return (await this.top()).getDirectoryHandle(entry)
  }

  private async call<T = undefined> (msg: Record<string, unknown>, transfer: Transferable[] = []): Promise<T> {
    const worker = this.start()
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      worker.postMessage({ ...msg, id }, transfer)
    })
  }

  private start (): Worker {
    if (this.worker !== undefined) return this.worker
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }))
    const worker = new Worker(url)
    let revoked = false
    worker.onmessage = (e: MessageEvent<{ id: number, result?: unknown, error?: string }>) => {
      // the worker's script has loaded once it answers; once (this runs for every chunk written)
      if (!revoked) URL.revokeObjectURL(url)
      revoked = true
      const p = this.pending.get(e.data.id)
      if (p === undefined) return
      this.pending.delete(e.data.id)
      if (e.data.error !== undefined) p.reject(new FileStorageError(e.data.error))
      else p.resolve(e.data.result)
    }
    worker.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new FileStorageError(`the OPFS worker failed: ${e.message}`))
      this.pending.clear()
    }
    this.worker = worker
    return worker
  }
}
