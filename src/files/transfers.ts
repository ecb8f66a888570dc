/**
 * The objects applications hold: a file we send (`FileTransfer`), a file sent to us
 * (`IncomingFile`), a file shared with the room (`FileOffer`) and one we share (`SharedFile`).
 * Each keeps its own state and events; what it needs of its room is `TransferHost`.
 */
import { TypedEventEmitter } from 'main-event'
import { FileCancelledError, FileIntegrityError, FileRejectedError, PeerNotFoundError, TooManyFilesError, FileTooLargeError } from '../errors.js'
import { Fetcher } from './fetcher.js'
import { STATUS_OK, STATUS_TOO_LARGE, STATUS_TOO_MANY, NOTICE_CANCELLED, NOTICE_DELIVERED, NOTICE_FAILED, NOTICE_REJECTED, toHex, equalBytes } from './wire.js'
import type { FetchContext, FetchTarget } from './fetcher.js'
import type { Manifest } from './manifest.js'
import type { Servable } from './server.js'
import type { FileProgress, FileTransfer, FileTransferEvents, FileTransferState, IncomingFile, FileOffer, SharedFile } from './types.js'
import type { FileOfferInfo, NoticeKind, StatusCode } from './wire.js'

/** What a transfer needs of its room. */
export interface TransferHost {
  /** A fetch context for files of this room (its label, store, streams, connections). */
  fetchContext: (holders: () => string[]) => FetchContext
  /** Whether `peer` is a joined member now. */
  isMember: (peer: string) => boolean
  /** Tells `peer` about transfer `id`; retried once `peer` is reachable again, for `fileResumeWindow`. */
  notice: (peer: string, id: Uint8Array, kind: NoticeKind, sha256?: Uint8Array) => void
  /** We now hold `manifest`'s file (a fetch finished): serve it to the room. */
  holds: (file: File, manifest: Manifest) => void
  /** How long a sender waits for a receiver that left, in ms. */
  resumeWindow: number
  log: (fmt: string, ...args: unknown[]) => void
}

/** Times an offer answered "unknown" (the member has not counted us as joined yet) is made. */
export const OFFER_ATTEMPTS = 8

/** Wait before offering again after "unknown": 250 ms doubling to 4 s, in ms. */
export function offerRetryDelay (attempt: number): number {
  return Math.min(4_000, 250 * 2 ** attempt)
}

/** Bytes per second over a sliding window of the last 2 s. */
class RateMeter {
  private readonly samples: Array<[number, number]> = []

  rate (bytes: number): number {
    const now = performance.now()
    this.samples.push([now, bytes])
    while (this.samples.length > 2 && now - this.samples[0][0] > 2_000) this.samples.shift()
    const [t0, b0] = this.samples[0]
    return now - t0 > 0 ? Math.round((bytes - b0) * 1000 / (now - t0)) : 0
  }
}

const TERMINAL: FileTransferState[] = ['done', 'failed', 'cancelled', 'rejected']

abstract class Progressing extends TypedEventEmitter<FileTransferEvents> {
  state: FileTransferState = 'offered'
  bytes = 0
  private readonly meter = new RateMeter()
  abstract readonly size: number

  protected setState (state: FileTransferState): void {
    if (this.state === state || TERMINAL.includes(this.state)) return
    this.state = state
    this.safeDispatchEvent('state', { detail: { state } })
  }

  protected progress (bytes: number): void {
    this.bytes = bytes
    const detail: FileProgress = { bytes, total: this.size, bytesPerSecond: this.meter.rate(bytes) }
    this.safeDispatchEvent('progress', { detail })
  }

  get ended (): boolean {
    return TERMINAL.includes(this.state)
  }
}

// --- sending ------------------------------------------------------------------------------------

export interface OutgoingInit {
  host: TransferHost
  id: Uint8Array
  to: string
  blob: Blob
  name: string
  type: string
  /** Resolves with the file's manifest (hashing it). */
  describe: (signal: AbortSignal) => Promise<Manifest>
  /** Offers the file to `to`; resolves with the receiver's answer. */
  offer: (info: FileOfferInfo, signal: AbortSignal) => Promise<{ code: StatusCode, value: number }>
  isDirect: () => boolean
  onEnd: () => void
}

export class OutgoingTransfer extends Progressing implements FileTransfer {
  readonly id: string
  readonly to: string
  readonly name: string
  readonly type: string
  readonly size: number
  sentBytes = 0
  readonly done: Promise<{ sha256: string }>
  readonly rawId: Uint8Array
  manifest?: Manifest
  private readonly init: OutgoingInit
  private readonly abort = new AbortController()
  private serving = new AbortController()
  private resolve!: (v: { sha256: string }) => void
  private reject!: (e: Error) => void
  private sent?: Uint8Array
  private offering = false
  private offered = false
  private resumeTimer?: ReturnType<typeof setTimeout>
  private retryTimer?: ReturnType<typeof setTimeout>
  private unknownAnswers = 0
  /** fault injection for tests: chunk indices to corrupt once each when served */
  readonly corruptOnce = new Set<number>()

  constructor (init: OutgoingInit) {
    super()
    this.init = init
    this.rawId = init.id
    this.id = toHex(init.id)
    this.to = init.to
    this.name = init.name
    this.type = init.type
    this.size = init.blob.size
    this.done = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    // a caller may never await `done`; a failure is still reported through it and the state
    this.done.catch(() => {})
  }

  /** Hashes the file and offers it. */
  async start (): Promise<void> {
    try {
      this.manifest = await this.init.describe(this.abort.signal)
      this.sent = new Uint8Array(this.manifest.count)
      await this.offer()
    } catch (err) {
      this.fail(err as Error)
    }
  }

  /** What the receiver may fetch: only while this transfer is on. */
  servable (): Servable | undefined {
    if (this.manifest === undefined || this.ended) return undefined
    return {
      blob: this.init.blob,
      manifest: this.manifest,
      onSent: (index, bytes) => { this.onSent(index, bytes) },
      corrupt: (index) => this.corruptOnce.delete(index),
      signal: this.serving.signal
    }
  }

  /** Ends the streams serving the receiver: it dropped or left, and asks again for what it lacks once back. */
  private stopServing (): void {
    this.serving.abort(new Error(`${this.to} dropped or left`))
    this.serving = new AbortController()
  }

  cancel (): void {
    if (this.ended) return
    this.init.host.notice(this.to, this.rawId, NOTICE_CANCELLED)
    this.fail(new FileCancelledError('the transfer was cancelled', 'local'), 'cancelled')
  }

  /** The receiver is (again) a joined member: offer again, it may have reloaded. */
  onJoin (): void {
    clearTimeout(this.resumeTimer)
    this.resumeTimer = undefined
    this.offered = false
    this.unknownAnswers = 0
    void this.offer()
  }

  /** The receiver left (a reload, a crash): wait for it for `resumeWindow`. */
  onLeave (): void {
    if (this.ended) return
    this.stopServing()
    this.setState('resuming')
    this.resumeTimer ??= setTimeout(() => {
      this.fail(new PeerNotFoundError(`${this.to} left the room and did not come back within ${this.init.host.resumeWindow} ms`))
    }, this.init.host.resumeWindow)
  }

  onDrop (): void {
    this.stopServing()
    if (this.state === 'sending') this.setState('resuming')
  }

  onDirect (): void {
    if (!this.offered) void this.offer()
  }

  onNotice (kind: NoticeKind, sha256: Uint8Array): void {
    if (this.ended || this.manifest === undefined) return
    switch (kind) {
      case NOTICE_DELIVERED:
        if (!equalBytes(sha256, this.manifest.sha256)) {
          this.fail(new FileIntegrityError(`the receiver computed SHA-256 ${toHex(sha256)}, not ${toHex(this.manifest.sha256)}`))
          return
        }
        this.progress(this.size)
        this.setState('done')
        this.finish()
        this.resolve({ sha256: toHex(sha256) })
        return
      case NOTICE_REJECTED:
        this.fail(new FileRejectedError(`${this.to} rejected the file`), 'rejected')
        return
      case NOTICE_CANCELLED:
        this.fail(new FileCancelledError(`${this.to} cancelled the transfer`, 'remote'), 'cancelled')
        return
      case NOTICE_FAILED:
        this.fail(new FileIntegrityError(`${this.to} could not verify the file`))
    }
  }

  /** The room was left or the node stopped. */
  stop (reason: Error): void {
    this.fail(reason)
  }

  private async offer (): Promise<void> {
    const m = this.manifest
    if (m === undefined || this.ended || this.offering || this.offered || !this.init.isDirect()) return
    this.offering = true
    try {
      const answer = await this.init.offer({ kind: 'send', id: this.rawId, size: m.size, chunkSize: m.chunkSize, sha256: m.sha256, listSha256: m.listSha256, name: this.name, type: this.type }, this.abort.signal)
      if (answer.code === STATUS_OK) {
        this.offered = true
      } else if (answer.code === STATUS_TOO_LARGE) {
        this.fail(new FileTooLargeError(`${this.to} accepts files of at most ${answer.value} bytes; this one is ${this.size}`, answer.value), 'rejected')
      } else if (answer.code === STATUS_TOO_MANY) {
        this.fail(new TooManyFilesError(`${this.to} holds as many offered files as it accepts`), 'rejected')
      } else if (this.unknownAnswers < OFFER_ATTEMPTS) {
        // it does not count us as a joined member yet (its peer:join for us may come after ours
        // for it): ask again shortly
        this.retryTimer = setTimeout(() => { void this.offer() }, offerRetryDelay(this.unknownAnswers++))
      }
    } catch (err) {
      // the connection dropped while offering: offered again once it is back
      this.init.host.log('offering %s to %s failed - %e', this.id, this.to, err)
    } finally {
      this.offering = false
    }
  }

  private onSent (index: number, bytes: number): void {
    if (this.ended || this.sent === undefined) return
    this.sentBytes += bytes
    if (this.sent[index] === 0) {
      this.sent[index] = 1
      this.bytes += bytes
    }
    this.setState('sending')
    this.progress(this.bytes)
  }

  private fail (err: Error, state: FileTransferState = 'failed'): void {
    if (this.ended) return
    this.setState(err.name === 'FileCancelledError' ? 'cancelled' : state)
    this.finish()
    this.reject(err)
  }

  private finish (): void {
    clearTimeout(this.resumeTimer)
    clearTimeout(this.retryTimer)
    this.serving.abort(new Error('the transfer ended'))
    this.abort.abort(new FileCancelledError('the transfer ended', 'local'))
    this.init.onEnd()
  }
}

// --- receiving ----------------------------------------------------------------------------------

abstract class Download extends Progressing {
  readonly name: string
  readonly type: string
  readonly size: number
  readonly sha256: string
  keptBytes = 0
  badChunks = 0
  bySource: Record<string, number> = {}
  protected readonly host: TransferHost
  protected readonly info: FileOfferInfo
  protected fetcher?: Fetcher
  protected result?: Promise<File>

  constructor (host: TransferHost, info: FileOfferInfo) {
    super()
    this.host = host
    this.info = info
    this.name = info.name
    this.type = info.type
    this.size = info.size
    this.sha256 = toHex(info.sha256)
  }

  protected abstract holders (): string[]

  /** Holders or connections changed. */
  sourcesChanged (): void {
    this.fetcher?.sourcesChanged()
  }

  stop (reason: Error): void {
    if (this.fetcher !== undefined) this.fetcher.stop(reason)
    else this.setState(reason.name === 'FileCancelledError' ? 'cancelled' : 'failed')
  }

  protected download (): Promise<File> {
    this.result ??= this.run()
    return this.result
  }

  private async run (): Promise<File> {
    const target: FetchTarget = { size: this.info.size, chunkSize: this.info.chunkSize, sha256: this.info.sha256, listSha256: this.info.listSha256, name: this.name, type: this.type }
    const fetcher = new Fetcher(this.host.fetchContext(() => this.holders()), target, {
      onProgress: (bytes) => {
        this.keptBytes = fetcher.keptBytes
        this.badChunks = fetcher.badChunks
        this.bySource = { ...fetcher.bySource }
        this.progress(bytes)
      },
      onState: (state) => { this.setState(state) }
    })
    this.fetcher = fetcher
    this.setState('receiving')
    try {
      const file = await fetcher.run()
      this.badChunks = fetcher.badChunks
      this.bySource = { ...fetcher.bySource }
      this.progress(this.size)
      this.setState('done')
      this.onDelivered(file, fetcher)
      return file
    } catch (err) {
      this.setState((err as Error).name === 'FileCancelledError' ? 'cancelled' : 'failed')
      this.onFailed(err as Error)
      throw err
    }
  }

  protected onDelivered (_file: File, _fetcher: Fetcher): void {}
  protected onFailed (_err: Error): void {}
}

export class IncomingFileImpl extends Download implements IncomingFile {
  readonly id: string
  readonly from: string
  private answered = false
  private readonly onEnd: () => void

  constructor (host: TransferHost, from: string, info: FileOfferInfo, onEnd: () => void) {
    super(host, info)
    this.id = toHex(info.id)
    this.from = from
    this.onEnd = onEnd
  }

  /** Counts toward `maxPendingFiles`: offered, not yet accepted or rejected. */
  get pending (): boolean {
    return !this.answered && !this.ended
  }

  protected holders (): string[] {
    return this.host.isMember(this.from) ? [this.from] : []
  }

  async accept (): Promise<File> {
    if (this.result === undefined && this.ended) throw new FileCancelledError('the sender cancelled the transfer', 'remote')
    this.answered = true
    return this.download()
  }

  reject (): void {
    if (this.answered || this.ended) return
    this.answered = true
    this.host.notice(this.from, this.info.id, NOTICE_REJECTED)
    this.setState('rejected')
    this.onEnd()
  }

  cancel (): void {
    if (this.ended) return
    this.host.notice(this.from, this.info.id, NOTICE_CANCELLED)
    this.answered = true
    this.stop(new FileCancelledError('the transfer was cancelled', 'local'))
    if (this.fetcher === undefined) this.onEnd()
  }

  /** The sender cancelled. */
  remoteCancel (): void {
    this.answered = true
    this.stop(new FileCancelledError(`${this.from} cancelled the transfer`, 'remote'))
    if (this.fetcher === undefined) this.onEnd()
  }

  /** The sender offered it again (it does after we rejoin): tell it again how it ended. */
  reoffered (): void {
    if (this.state === 'done') this.host.notice(this.from, this.info.id, NOTICE_DELIVERED, this.info.sha256)
    else if (this.state === 'rejected') this.host.notice(this.from, this.info.id, NOTICE_REJECTED)
  }

  protected onDelivered (): void {
    this.host.notice(this.from, this.info.id, NOTICE_DELIVERED, this.info.sha256)
    this.onEnd()
  }

  protected onFailed (err: Error): void {
    if (err.name === 'FileIntegrityError') this.host.notice(this.from, this.info.id, NOTICE_FAILED)
    this.onEnd()
  }
}

export class FileOfferImpl extends Download implements FileOffer {
  readonly id: string
  readonly from: string
  readonly listSha256: Uint8Array
  readonly chunkSize: number
  private readonly holderSet = new Set<string>()

  constructor (host: TransferHost, from: string, info: FileOfferInfo) {
    super(host, info)
    this.id = toHex(info.sha256)
    this.from = from
    this.listSha256 = info.listSha256
    this.chunkSize = info.chunkSize
    this.holderSet.add(from)
  }

  holders (): string[] {
    return [...this.holderSet].filter((p) => this.host.isMember(p))
  }

  /** Whether `info` describes this same file cut the same way (so its holder can serve us). */
  sameFile (info: FileOfferInfo): boolean {
    return info.chunkSize === this.chunkSize && info.size === this.size && equalBytes(info.listSha256, this.listSha256)
  }

  addHolder (peer: string): void {
    this.holderSet.add(peer)
    this.sourcesChanged()
  }

  removeHolder (peer: string): void {
    if (this.holderSet.delete(peer)) this.sourcesChanged()
  }

  async fetch (): Promise<File> {
    return this.download()
  }

  cancel (): void {
    this.stop(new FileCancelledError('the fetch was cancelled', 'local'))
  }

  protected onDelivered (file: File, fetcher: Fetcher): void {
    const manifest = fetcher.manifest()
    if (manifest !== undefined) this.host.holds(file, manifest)
  }
}

export class SharedFileImpl implements SharedFile {
  readonly id: string
  readonly name: string
  readonly type: string
  readonly size: number
  servedBytes = 0
  readonly manifest: Manifest
  readonly blob: Blob
  stopped = false
  private readonly onStop: () => void

  constructor (blob: Blob, manifest: Manifest, name: string, type: string, onStop: () => void) {
    this.blob = blob
    this.manifest = manifest
    this.id = toHex(manifest.sha256)
    this.name = name
    this.type = type
    this.size = manifest.size
    this.onStop = onStop
  }

  info (id: Uint8Array): FileOfferInfo {
    const m = this.manifest
    return { kind: 'share', id, size: m.size, chunkSize: m.chunkSize, sha256: m.sha256, listSha256: m.listSha256, name: this.name, type: this.type }
  }

  servable (): Servable | undefined {
    if (this.stopped) return undefined
    return { blob: this.blob, manifest: this.manifest, onSent: (_i, bytes) => { this.servedBytes += bytes } }
  }

  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.onStop()
  }
}
