/**
 * The node's file service: registers `FILE_PROTOCOL` once for every room, accepts its streams over
 * direct connections only (a relay's limited circuit is refused by libp2p, anything else that is
 * not our WebRTC connection here), routes each request to the room its label names, opens the
 * streams rooms ask for, and keeps the chunk store and its periodic cleanup.
 */
import { FILE_PROTOCOL, FILE_STORE_NAME, FILE_SWEEP_INTERVAL_MS } from '../constants.js'
import { isDirect } from '../paths.js'
import { NotDirectError } from '../streams.js'
import { IdbStore } from './idb-store.js'
import { OpfsStore } from './opfs-store.js'
import { RoomFileSession } from './room-files.js'
import { serveChunks, serveManifest } from './server.js'
import { MemoryStore } from './store.js'
import { asError, readFrames, writeFrame } from './stream-io.js'
import { OP_GET, OP_MANIFEST, OP_NOTICE, OP_OFFER, STATUS_OK, STATUS_UNKNOWN, decodeRequest, decodeStatus, encodeRequest, encodeStatus } from './wire.js'
import type { DirectLinkEvents, DirectLinks } from '../direct.js'
import type { FetchContext } from './fetcher.js'
import type { FileNode, FileRoom } from './room-files.js'
import type { FileStore, KeptFile } from './store.js'
import type { FileRequest, NoticeKind, StatusCode } from './wire.js'
import type { ComponentLogger, Connection, Logger, Startable, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'

/** Where kept chunks go: see store.ts. */
export type FileStorage = 'auto' | 'opfs' | 'indexeddb' | 'memory'

/** What the file service needs of the node: narrow, so tests can stub it. */
export interface FileServiceComponents {
  logger: ComponentLogger
  /** `libp2p.handle` / `libp2p.unhandle`. */
  handle: (protocol: string, handler: StreamHandler, options: StreamHandlerOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  /** The node's direct connections. */
  links: Pick<DirectLinks, 'connection' | 'addEventListener' | 'removeEventListener'>
}

export interface FileServiceInit {
  /** Largest file accepted, in bytes. */
  maxFileBytes: number
  /** Offers held per room, not yet accepted or rejected. */
  maxPendingFiles: number
  /** How long kept chunks of an unfinished file stay once no page uses them, in ms. */
  keptFileTtl: number
  /** How long a sender waits for a receiver that left to come back, in ms. */
  fileResumeWindow: number
  fileStorage: FileStorage
}

/** Largest frame a holder reads: requests, notices and want frames are all small. */
const INBOUND_FRAME_BYTES = 4096
/** How long a new stream may take to send its request, in ms. */
const REQUEST_TIMEOUT_MS = 10_000
/** Status answers are one frame. */
const STATUS_FRAME_BYTES = 64
/** Inbound and outbound file streams per connection (a fetch uses one per source, offers and notices one each, briefly). */
const MAX_STREAMS = 64

interface PendingNotice { label: string, request: FileRequest, expires: number }

export class FileService implements Startable {
  private readonly components: FileServiceComponents
  private readonly init: FileServiceInit
  private readonly log: Logger
  private readonly rooms = new Map<string, RoomFileSession>()
  private readonly open = new Set<Stream>()
  private readonly notices = new Map<string, PendingNotice[]>()
  private readonly abort = new AbortController()
  private store?: Promise<FileStore>
  private sweepTimer?: ReturnType<typeof setInterval>
  private started = false

  constructor (components: FileServiceComponents, init: FileServiceInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('p2p-rooms:files')
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.components.handle(FILE_PROTOCOL, this.onStream, { runOnLimitedConnection: false, maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS })
    this.components.links.addEventListener('peer:direct', this.onDirect)
    this.components.links.addEventListener('peer:drop', this.onDrop)
    if (this.init.fileStorage !== 'memory' && typeof navigator !== 'undefined' && typeof navigator.storage !== 'undefined') {
      // kept files of pages that are gone: once soon after start (not while rooms meet), then hourly
      const first = setTimeout(() => { void this.sweep() }, 5_000)
      this.abort.signal.addEventListener('abort', () => { clearTimeout(first) })
      this.sweepTimer = setInterval(() => { void this.sweep() }, FILE_SWEEP_INTERVAL_MS)
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.abort.abort(new Error('the file service stopped'))
    clearInterval(this.sweepTimer)
    this.components.links.removeEventListener('peer:direct', this.onDirect)
    this.components.links.removeEventListener('peer:drop', this.onDrop)
    for (const session of [...this.rooms.values()]) session.close()
    for (const stream of this.open) stream.abort(new Error('the file service stopped'))
    this.notices.clear()
    await this.components.unhandle(FILE_PROTOCOL).catch(() => {})
    void this.store?.then((s) => { s.stop() }, () => {})
  }

  /** The files of `room`, until `close()`. */
  attach (room: FileRoom): RoomFileSession {
    const session = new RoomFileSession(room, this.nodeFor())
    this.rooms.set(session.label, session)
    return session
  }

  /** Which store kept chunks go to (`'auto'` picks on first use). */
  async storeKind (): Promise<FileStore['kind']> {
    return (await this.chunkStore()).kind
  }

  // --- what sessions use --------------------------------------------------------------------

  private nodeFor (): FileNode {
    return {
      maxFileBytes: this.init.maxFileBytes,
      maxPendingFiles: this.init.maxPendingFiles,
      resumeWindow: this.init.fileResumeWindow,
      log: (fmt, ...args) => { this.log(fmt, ...args) },
      fetchContext: (label, holders) => this.fetchContext(label, holders),
      isDirect: (peer) => this.components.links.connection(peer) !== undefined,
      exchange: async (peer, request, signal) => this.exchange(peer, request, signal),
      notice: (peer, label, id, kind, sha256) => { this.notice(peer, label, id, kind, sha256) },
      onClose: (session) => { if (this.rooms.get(session.label) === session) this.rooms.delete(session.label) }
    }
  }

  private fetchContext (label: string, holders: () => string[]): FetchContext {
    const store: FileStore = {
      kind: 'memory',
      open: async (key, size, chunkSize, count): Promise<KeptFile> => (await this.chunkStore()).open(key, size, chunkSize, count),
      sweep: async () => {},
      stop: () => {}
    }
    return {
      label,
      store,
      log: this.log,
      open: async (peer, signal) => this.openStream(peer, signal),
      holders,
      isDirect: (peer) => this.components.links.connection(peer) !== undefined
    }
  }

  /** A new `FILE_PROTOCOL` stream to `peer` over its direct connection; aborted with `signal`. */
  private async openStream (peer: string, signal?: AbortSignal): Promise<Stream> {
    signal?.throwIfAborted()
    const conn = this.components.links.connection(peer)
    if (conn === undefined) throw new NotDirectError(`no direct connection to ${peer}`)
    // no signal for opening: libp2p then bounds the negotiation itself (a fetch-long signal would
    // replace that bound with none). Optimistic: the protocol goes out with the first frame
    const stream = await conn.newStream(FILE_PROTOCOL, { runOnLimitedConnection: false, negotiateFully: false })
    this.track(stream)
    if (signal !== undefined) {
      const onAbort = (): void => { stream.abort(asError(signal.reason)) }
      if (signal.aborted) onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      stream.addEventListener('close', () => { signal.removeEventListener('abort', onAbort) }, { once: true })
    }
    return stream
  }

  /** Sends one request and reads the one status frame answering it. */
  private async exchange (peer: string, request: FileRequest, signal?: AbortSignal): Promise<{ code: StatusCode, value: number }> {
    const stream = await this.openStream(peer, signal)
    try {
      await writeFrame(stream, encodeRequest(request), signal)
      await stream.close({ signal: signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      for await (const frame of readFrames(stream, STATUS_FRAME_BYTES)) {
        const status = decodeStatus(frame)
        if (status === undefined) throw new Error(`a malformed status frame from ${peer}`)
        return status
      }
      throw new Error(`${peer} closed the stream without an answer`)
    } catch (err) {
      stream.abort(asError(err))
      throw err
    }
  }

  // --- notices: how a transfer ended, told to the other side even across a drop -----------

  private notice (peer: string, label: string, id: Uint8Array, kind: NoticeKind, sha256: Uint8Array = new Uint8Array(32)): void {
    const queue = this.notices.get(peer) ?? []
    queue.push({ label, request: { op: OP_NOTICE, label, id, kind, sha256 }, expires: Date.now() + this.init.fileResumeWindow })
    this.notices.set(peer, queue)
    void this.flushNotices(peer)
  }

  private async flushNotices (peer: string): Promise<void> {
    const queue = this.notices.get(peer)
    if (queue === undefined || this.components.links.connection(peer) === undefined) return
    while (queue.length > 0) {
      const n = queue[0]
      if (n.expires < Date.now()) {
        queue.shift()
        continue
      }
      try {
        await this.exchange(peer, n.request, AbortSignal.any([this.abort.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]))
        queue.shift()
      } catch (err) {
        // the connection dropped: the next `peer:direct` tries again
        this.log('notice to %s failed - %e', peer, err)
        return
      }
    }
    if (this.notices.get(peer) === queue) this.notices.delete(peer)
  }

  // --- inbound ------------------------------------------------------------------------------

  private readonly onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer.toString()
    // libp2p already refuses limited (relayed) connections; anything else that is not our own
    // WebRTC connection (a direct WebSockets one) must not carry files either
    if (!isDirect(connection)) {
      this.log('refusing a file stream from %s over a %s connection', from, connection.multiplexer)
      stream.abort(new NotDirectError(`${FILE_PROTOCOL} runs over direct connections only`))
      return
    }
    this.track(stream)
    const timer = setTimeout(() => { stream.abort(new Error(`no request within ${REQUEST_TIMEOUT_MS} ms`)) }, REQUEST_TIMEOUT_MS)
    try {
      // one reader for the whole stream: a get request's want frames may arrive with it
      const frames = readFrames(stream, INBOUND_FRAME_BYTES)
      const first = await frames.next()
      clearTimeout(timer)
      if (first.done === true) return
      const req = decodeRequest(first.value)
      if (req === undefined) throw new Error(`a malformed file request from ${from}`)
      const session = this.rooms.get(req.label)
      switch (req.op) {
        case OP_OFFER: {
          const answer = session?.onOffer(from, req.offer) ?? { code: STATUS_UNKNOWN, value: 0 }
          await writeFrame(stream, encodeStatus(answer.code, answer.value))
          await stream.close()
          return
        }
        case OP_NOTICE: {
          const code = session?.onNotice(from, req.id, req.kind, req.sha256) ?? STATUS_UNKNOWN
          await writeFrame(stream, encodeStatus(code === STATUS_OK ? STATUS_OK : STATUS_UNKNOWN))
          await stream.close()
          return
        }
        case OP_MANIFEST: {
          const servable = session?.servableFor(from, req.sha256)
          if (servable === undefined) await stream.close()
          else await serveManifest(stream, servable)
          return
        }
        case OP_GET:
          await serveChunks(stream, frames, session?.servableFor(from, req.sha256), this.abort.signal)
      }
    } catch (err) {
      this.log('file stream from %s failed - %e', from, err)
      stream.abort(asError(err))
    } finally {
      clearTimeout(timer)
    }
  }

  private readonly onDirect = (evt: DirectLinkEvents['peer:direct']): void => {
    const peer = evt.detail.peerId
    void this.flushNotices(peer)
    for (const session of this.rooms.values()) session.onDirect(peer)
  }

  private readonly onDrop = (evt: DirectLinkEvents['peer:drop']): void => {
    for (const session of this.rooms.values()) session.onDrop(evt.detail.peerId)
  }

  private track (stream: Stream): void {
    this.open.add(stream)
    stream.addEventListener('close', () => { this.open.delete(stream) }, { once: true })
  }

  // --- storage ------------------------------------------------------------------------------

  private async chunkStore (): Promise<FileStore> {
    this.store ??= this.pickStore()
    return this.store
  }

  private async pickStore (): Promise<FileStore> {
    const want = this.init.fileStorage
    if ((want === 'auto' || want === 'opfs') && typeof Worker !== 'undefined' && typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function') {
      const opfs = new OpfsStore()
      if (await opfs.probe()) return opfs
      opfs.stop()
      this.log('OPFS synchronous access handles are not available here')
    }
    if ((want === 'auto' || want === 'indexeddb') && IdbStore.available()) return new IdbStore()
    return new MemoryStore()
  }

  /** Removes kept files of pages that are gone, from both browser stores, without starting the OPFS worker. */
  private async sweep (): Promise<void> {
    try {
      if (typeof navigator.storage?.getDirectory === 'function') await new OpfsStore().sweep(this.init.keptFileTtl)
      const dbs = typeof indexedDB === 'undefined' ? [] : await indexedDB.databases?.()
      if (dbs?.some((d) => d.name === FILE_STORE_NAME) === true) {
        const idb = new IdbStore()
        await idb.sweep(this.init.keptFileTtl).finally(() => { idb.stop() })
      }
    } catch (err) {
      this.log('sweeping kept files failed - %e', err)
    }
  }
}
