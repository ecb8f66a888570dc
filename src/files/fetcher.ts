/**
 * The receiving side of a file: fetches its manifest from a holder, checks it against the
 * offer's list hash, then asks every holder it can reach for different chunks at once, in index
 * order (work stealing: a source asks for more as its window empties, so a faster one gets
 * more), verifies each chunk against the manifest, keeps it (store.ts), hashes the whole file
 * incrementally in order, and delivers the file only if that hash is the offer's.
 *
 * Flow control is the fetcher's: a source never has more than `FILE_WINDOW_CHUNKS` chunks asked
 * for and not yet received, so however slow storage is, at most that many are in memory per
 * source. A chunk that fails verification is asked for again (from any source); a source that
 * sends `MAX_BAD_CHUNKS_PER_SOURCE` bad chunks, a manifest that does not match, or a chunk it was
 * not asked for is dropped. A source whose stream fails is asked again once its direct connection
 * is back: nothing verified is fetched again.
 */
import { FILE_WINDOW_CHUNKS, MAX_BAD_CHUNKS_PER_SOURCE, MAX_FILE_FRAME_BYTES } from '../constants.js'
import { FileCancelledError, FileIntegrityError, FileUnavailableError } from '../errors.js'
import { chunkHash, chunkRange, sha256, wholeFileHasher } from './manifest.js'
import { asError, readFrames, writeFrame } from './stream-io.js'
import {
  FRAME_MISSING, ManifestAssembler, OP_GET, OP_MANIFEST, chunkCount, decodeGetFrame, encodeRequest, encodeWant, equalBytes, toHex
} from './wire.js'
import type { Manifest, WholeFileHasher } from './manifest.js'
import type { FileStore, KeptFile } from './store.js'
import type { Logger, Stream } from '@libp2p/interface'

/** What the fetcher needs from its room: narrow, so tests can stub it. */
export interface FetchContext {
  /** The room's key, the label of every request. */
  label: string
  store: FileStore
  log: Logger
  /** Opens a `FILE_PROTOCOL` stream to `peer` over its direct connection. */
  open: (peer: string, signal: AbortSignal) => Promise<Stream>
  /** Members that hold the file now, in the room (reachable or healing). */
  holders: () => string[]
  /** Whether `peer` has a direct connection now. */
  isDirect: (peer: string) => boolean
}

export interface FetchTarget {
  size: number
  chunkSize: number
  sha256: Uint8Array
  listSha256: Uint8Array
  name: string
  type: string
}

export interface FetchEvents {
  onProgress: (bytes: number) => void
  onState: (state: 'receiving' | 'resuming') => void
}

/** A source is asked for more once this many of its window arrived (asking in small batches). */
const REFILL_CHUNKS = 4
/** Chunks of a source kept in memory for the whole-file hash when they arrive out of order. */
const REORDER_CHUNKS = FILE_WINDOW_CHUNKS * 2
/** A source with chunks asked for that sends nothing for this long is dropped for now, in ms. */
const SOURCE_IDLE_MS = 20_000
/** First wait before asking a failed source again while it is still directly connected, in ms; doubles to the max. */
const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 8_000
/** Most frames of a manifest response: hashes per frame are bounded by its decoder. */
const MANIFEST_FRAME_BYTES = 4 + 2048 * 32

interface SourceState {
  peer: string
  /** chunks asked for and not yet received */
  outstanding: Set<number>
  bad: number
  failures: number
  retryAt: number
  running: boolean
  banned: boolean
  stream?: Stream
}

export class Fetcher {
  readonly count: number
  /** bytes verified, kept chunks included */
  bytes = 0
  keptBytes = 0
  badChunks = 0
  readonly bySource: Record<string, number> = {}
  private readonly ctx: FetchContext
  private readonly target: FetchTarget
  private readonly events: FetchEvents
  private readonly abort = new AbortController()
  private readonly sources = new Map<string, SourceState>()
  private kept?: KeptFile
  private hashes?: Uint8Array
  /** chunks verified (being written, or kept) */
  private readonly got: Uint8Array
  /** chunks not verified and not asked for, lowest first; `retry` before `cursor` */
  private readonly retry: number[] = []
  private cursor = 0
  private hasher!: WholeFileHasher
  private hashedUpTo = 0
  private readonly reorder = new Map<number, Uint8Array>()
  private stored = 0
  private pumping = false
  private wake?: () => void
  private failure?: Error
  private retryTimer?: ReturnType<typeof setTimeout>

  constructor (ctx: FetchContext, target: FetchTarget, events: FetchEvents) {
    this.ctx = ctx
    this.target = target
    this.events = events
    this.count = chunkCount(target.size, target.chunkSize)
    this.got = new Uint8Array(this.count)
  }

  /** Entry key in the store: the same file cut the same way resumes from the same entry. */
  get key (): string {
    return `${toHex(this.target.sha256)}.${this.target.chunkSize}`
  }

  /** The verified manifest, once fetched: what we need to serve the file ourselves. */
  manifest (): Manifest | undefined {
    if (this.hashes === undefined) return undefined
    const { size, chunkSize, sha256, listSha256 } = this.target
    return { size, chunkSize, count: this.count, sha256, listSha256, hashes: this.hashes }
  }

  /** Holders or connections changed: look again for sources. */
  sourcesChanged (): void {
    this.notify()
  }

  /** Stops the fetch: `run` rejects with `reason`, the kept chunks are removed if `discard`. */
  stop (reason: Error): void {
    this.failure ??= reason
    this.abort.abort(reason)
    for (const s of this.sources.values()) s.stream?.abort(reason)
    this.notify()
  }

  /** Fetches, verifies and delivers the file. */
  async run (): Promise<File> {
    const { size, chunkSize } = this.target
    this.hasher = await wholeFileHasher()
    this.kept = await this.ctx.store.open(this.key, size, chunkSize, this.count)
    let discard = false
    try {
      this.checkStopped()
      this.hashes = await this.fetchManifest()
      await this.restore()
      this.events.onProgress(this.bytes)
      await this.fetchChunks()
      const whole = await this.hasher.digest()
      if (!equalBytes(whole, this.target.sha256)) {
        discard = true
        throw new FileIntegrityError(`the file's bytes hash to ${toHex(whole)}, not to its SHA-256 ${toHex(this.target.sha256)}`)
      }
      const file = await this.kept.deliver(this.target.name, this.target.type)
      this.kept = undefined
      return file
    } catch (err) {
      const e = asError(this.failure ?? err)
      if (e.name === 'FileCancelledError' || e.name === 'FileIntegrityError') discard = true
      throw e
    } finally {
      this.abort.abort(new FileCancelledError('the fetch ended', 'local'))
      clearTimeout(this.retryTimer)
      for (const s of this.sources.values()) s.stream?.abort(new FileCancelledError('the fetch ended', 'local'))
      const kept = this.kept
      this.kept = undefined
      if (kept !== undefined) await (discard ? kept.discard() : kept.close()).catch((err) => { this.ctx.log('could not release kept chunks - %e', err) })
    }
  }

  // --- manifest -----------------------------------------------------------------------------

  /** The manifest from the first holder that serves one matching the offer's list hash. */
  private async fetchManifest (): Promise<Uint8Array> {
    if (this.count === 0) return new Uint8Array(0)
    const tried = new Set<string>()
    while (true) {
      this.checkStopped()
      if (this.holders().length === 0) throw new FileUnavailableError('no member that has the file is left in the room')
      const peer = this.available().find((p) => !tried.has(p))
      if (peer === undefined) {
        this.events.onState('resuming')
        // every reachable holder failed once: ask them again a little later, or sooner if one heals
        const again = tried.size > 0
        tried.clear()
        await this.waitForSources(again ? RETRY_MAX_MS / 4 : undefined)
        continue
      }
      tried.add(peer)
      try {
        const hashes = await this.requestManifest(peer)
        if (hashes !== undefined) return hashes
        this.ban(peer, 'its manifest does not match the offer')
      } catch (err) {
        this.checkStopped()
        this.failed(this.source(peer), err)
      }
    }
  }

  private async requestManifest (peer: string): Promise<Uint8Array | undefined> {
    const stream = await this.ctx.open(peer, this.abort.signal)
    try {
      await writeFrame(stream, encodeRequest({ op: OP_MANIFEST, label: this.ctx.label, sha256: this.target.sha256 }), this.abort.signal)
      await stream.close({ signal: this.abort.signal }).catch(() => {})
      const manifest = new ManifestAssembler(this.count)
      for await (const frame of readFrames(stream, MANIFEST_FRAME_BYTES)) {
        if (!manifest.add(frame)) return undefined
      }
      if (!manifest.complete) throw new Error(`${peer} sent ${manifest.hashes.byteLength} bytes of an incomplete manifest`)
      return equalBytes(await sha256(manifest.hashes), this.target.listSha256) ? manifest.hashes : undefined
    } catch (err) {
      stream.abort(asError(err))
      throw err
    }
  }

  // --- kept chunks --------------------------------------------------------------------------

  /**
   * Counts the kept chunks, and hashes the kept prefix of the file (checking each chunk again:
   * storage is not trusted), so the whole-file hash continues where it stopped.
   */
  private async restore (): Promise<void> {
    const kept = this.kept as KeptFile
    for (let i = 0; i < this.count; i++) {
      if (kept.kept[i] === 1) {
        this.got[i] = 1
        this.stored++
        this.bytes += this.chunkBytes(i)
      }
    }
    this.keptBytes = this.bytes
    if (this.keptBytes > 0) this.ctx.log('resuming %s from %d kept bytes', this.key, this.keptBytes)
    await this.pump()
  }

  // --- chunks -------------------------------------------------------------------------------

  private async fetchChunks (): Promise<void> {
    while (!this.complete()) {
      this.checkStopped()
      const now = Date.now()
      let soonest = Infinity
      for (const peer of this.available()) {
        const s = this.source(peer)
        if (s.running || s.banned || !this.hasWork()) continue
        if (s.retryAt > now) {
          soonest = Math.min(soonest, s.retryAt)
          continue
        }
        void this.runSource(s)
      }
      const running = [...this.sources.values()].some((s) => s.running)
      // nothing asked for anywhere: every chunk not verified yet is ours to ask for again, from the start
      if (!running) this.cursor = 0
      if (!running && this.hasWork()) {
        if (this.holders().length === 0) throw new FileUnavailableError('no member that has the file is left in the room')
        this.events.onState('resuming')
      }
      clearTimeout(this.retryTimer)
      if (soonest < Infinity) this.retryTimer = setTimeout(() => { this.notify() }, soonest - now)
      await this.waitForSources()
    }
  }

  private async runSource (s: SourceState): Promise<void> {
    s.running = true
    let received = 0
    let idle: ReturnType<typeof setTimeout> | undefined
    try {
      const stream = await this.ctx.open(s.peer, this.abort.signal)
      s.stream = stream
      this.events.onState('receiving')
      const armIdle = (): void => {
        clearTimeout(idle)
        idle = setTimeout(() => { stream.abort(new Error(`no chunk from ${s.peer} within ${SOURCE_IDLE_MS} ms`)) }, SOURCE_IDLE_MS)
      }
      await writeFrame(stream, encodeRequest({ op: OP_GET, label: this.ctx.label, sha256: this.target.sha256 }), this.abort.signal)
      await this.refill(s, stream)
      if (s.outstanding.size === 0) {
        await stream.close({ signal: AbortSignal.timeout(2_000) }).catch(() => { stream.abort(new Error('closing')) })
        return
      }
      armIdle()
      for await (const frame of readFrames(stream, MAX_FILE_FRAME_BYTES)) {
        armIdle()
        const f = decodeGetFrame(frame)
        if (f === undefined || !s.outstanding.has(f.index)) throw new Error(`${s.peer} sent a malformed or unasked-for frame`)
        if (f.type === FRAME_MISSING) {
          s.outstanding.delete(f.index)
          this.requeue(f.index)
          this.ban(s.peer, `it lacks chunk ${f.index}`)
          break
        }
        // ask for more before verifying and storing this one, so the source's queue never runs
        // dry while we wait on WebCrypto and storage (one chunk beyond the window in memory). The
        // chunk in hand stays outstanding until kept, so no `take` picks it again meanwhile; a
        // stream that failed while we asked fails once the chunk in hand is kept
        let refillFailure: unknown
        if (s.outstanding.size - 1 <= FILE_WINDOW_CHUNKS - REFILL_CHUNKS) await this.refill(s, stream, 1).catch((err) => { refillFailure = err })
        const ok = await this.accept(s, f.index, f.data)
        s.outstanding.delete(f.index)
        if (refillFailure !== undefined) throw refillFailure
        if (ok) {
          received++
          s.failures = 0
        } else {
          // asked for again first, from whichever source asks next
          this.requeue(f.index, true)
          if (++s.bad >= MAX_BAD_CHUNKS_PER_SOURCE) {
            this.ban(s.peer, `${s.bad} of its chunks failed verification`)
            break
          }
          await this.refill(s, stream)
        }
        if (s.outstanding.size === 0) break
      }
      clearTimeout(idle)
      if (s.outstanding.size > 0 && !s.banned) throw new Error(`${s.peer} ended its stream with ${s.outstanding.size} chunks unsent`)
      // we ask for nothing more: close our end, the source closes its own
      await stream.close({ signal: AbortSignal.timeout(2_000) }).catch(() => { stream.abort(new Error('closing')) })
    } catch (err) {
      if (!this.abort.signal.aborted) this.failed(s, err, received)
    } finally {
      clearTimeout(idle)
      s.running = false
      s.stream = undefined
      for (const index of s.outstanding) this.requeue(index)
      s.outstanding.clear()
      this.notify()
    }
  }

  /** Asks `s` for chunks until its window (plus `inHand` chunks being kept) is full, or nothing is left to ask for. */
  private async refill (s: SourceState, stream: Stream, inHand = 0): Promise<void> {
    const ask: number[] = []
    while (s.outstanding.size < FILE_WINDOW_CHUNKS + inHand) {
      const next = this.take()
      if (next === undefined) break
      // outstanding at once, so the next `take` of this batch cannot pick it a second time
      s.outstanding.add(next)
      ask.push(next)
    }
    if (ask.length === 0) return
    await writeFrame(stream, encodeWant(ask), this.abort.signal)
  }

  /** Verifies chunk `index` from `s` and keeps it; `false` if it failed verification (it is asked for again). */
  private async accept (s: SourceState, index: number, data: Uint8Array): Promise<boolean> {
    const [start, end] = chunkRange(this.target.size, this.target.chunkSize, index)
    const ok = data.byteLength === end - start && equalBytes(await sha256(data), chunkHash(this.hashes as Uint8Array, index))
    if (!ok) {
      this.badChunks++
      this.ctx.log('chunk %d of %s from %s failed verification: asking again', index, this.key, s.peer)
      return false
    }
    if (this.got[index] === 1) return true
    this.got[index] = 1
    if (index === this.hashedUpTo) {
      // the usual case: in order, hashed before storage takes the buffer over
      this.hasher.update(data)
      this.hashedUpTo++
    } else if (this.reorder.size < REORDER_CHUNKS) {
      this.reorder.set(index, data.slice())
    }
    try {
      await (this.kept as KeptFile).write(index, data)
    } catch (err) {
      this.stop(asError(err))
      throw err
    }
    this.stored++
    this.bytes += end - start
    this.bySource[s.peer] = (this.bySource[s.peer] ?? 0) + end - start
    this.events.onProgress(this.bytes)
    void this.pump()
    return true
  }

  /** Feeds the whole-file hash every chunk from `hashedUpTo` on that is here, in order. */
  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.hashedUpTo < this.count) {
        const i = this.hashedUpTo
        let data = this.reorder.get(i)
        if (data === undefined) {
          if (this.kept?.kept[i] !== 1) break
          data = await this.kept.read(i)
          // read back from storage: check it again
          if (!equalBytes(await sha256(data), chunkHash(this.hashes as Uint8Array, i))) {
            this.ctx.log('kept chunk %d of %s is damaged: fetching it again', i, this.key)
            this.kept.kept[i] = 0
            this.got[i] = 0
            this.stored--
            this.bytes -= this.chunkBytes(i)
            this.requeue(i, true)
            break
          }
        }
        this.reorder.delete(i)
        this.hasher.update(data)
        this.hashedUpTo++
      }
    } catch (err) {
      this.stop(asError(err))
    } finally {
      this.pumping = false
      this.notify()
    }
  }

  // --- bookkeeping --------------------------------------------------------------------------

  private complete (): boolean {
    return this.hashedUpTo === this.count && this.stored === this.count
  }

  private hasWork (): boolean {
    return this.retry.some((i) => this.got[i] === 0 && !this.asked(i)) || this.nextFromCursor(false) !== undefined
  }

  /** The lowest chunk neither verified nor asked for. */
  private take (): number | undefined {
    while (this.retry.length > 0) {
      const i = this.retry.shift() as number
      if (this.got[i] === 0 && !this.asked(i)) return i
    }
    return this.nextFromCursor(true)
  }

  private nextFromCursor (advance: boolean): number | undefined {
    let c = this.cursor
    while (c < this.count && (this.got[c] === 1 || this.asked(c))) c++
    if (advance && c < this.count) this.cursor = c + 1
    else if (advance) this.cursor = c
    return c < this.count ? c : undefined
  }

  private asked (index: number): boolean {
    for (const s of this.sources.values()) if (s.outstanding.has(index)) return true
    return false
  }

  private requeue (index: number, first = false): void {
    if (this.got[index] === 1) return
    if (index < this.cursor) {
      if (first) this.retry.unshift(index)
      else this.retry.push(index)
      this.retry.sort((a, b) => a - b)
    }
  }

  private chunkBytes (index: number): number {
    const [start, end] = chunkRange(this.target.size, this.target.chunkSize, index)
    return end - start
  }

  private source (peer: string): SourceState {
    let s = this.sources.get(peer)
    if (s === undefined) {
      s = { peer, outstanding: new Set(), bad: 0, failures: 0, retryAt: 0, running: false, banned: false }
      this.sources.set(peer, s)
    }
    return s
  }

  /** Holders not dropped for misbehaving. */
  private holders (): string[] {
    return this.ctx.holders().filter((p) => this.sources.get(p)?.banned !== true)
  }

  /** Holders we can ask now. */
  private available (): string[] {
    return this.holders().filter((p) => this.ctx.isDirect(p))
  }

  private ban (peer: string, why: string): void {
    this.ctx.log('not fetching %s from %s any more: %s', this.key, peer, why)
    this.source(peer).banned = true
  }

  private failed (s: SourceState, err: unknown, received = 0): void {
    s.failures = received > 0 ? 1 : s.failures + 1
    s.retryAt = Date.now() + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (s.failures - 1))
    this.ctx.log('fetching %s from %s failed after %d chunks - %e', this.key, s.peer, received, err)
  }

  private checkStopped (): void {
    if (this.failure !== undefined) throw this.failure
    this.abort.signal.throwIfAborted()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Resolves once something changed (`notify`), or after `ms`. */
  private async waitForSources (ms?: number): Promise<void> {
    if (this.failure !== undefined) return
    await new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms)
      this.wake = () => { clearTimeout(timer); resolve() }
    })
  }
}
