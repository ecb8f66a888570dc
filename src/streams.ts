/**
 * Opaque, length-prefixed frames between two room peers over their direct WebRTC connection:
 * a long-lived stream per peer for addressed frames (`handleFrames` / `FrameSender`), and one
 * stream per request for request/response exchanges (`handleRequests` / `request`).
 *
 * Wire format, both protocols: each frame is an unsigned varint byte length followed by that many
 * bytes (`it-length-prefixed`, as libp2p's own protocols frame theirs); 0-byte frames are allowed.
 * A request stream carries one frame from the requester, who then closes its writable end, and
 * at most `maxFrames` frames back, after which the responder closes its end.
 *
 * Nothing here ever opens or accepts a stream over a relay's limited circuit: room data must not
 * cross the relay, and those circuits close after 128 KiB anyway.
 *
 * Errors thrown, by `name`: `NotDirectError` (no direct connection to the peer),
 * `FrameTooLargeError` (a frame over `maxFrameBytes`), `TooManyFramesError` (a response over
 * `maxFrames`), `WriteTimeoutError` (a responder gave up on a requester that did not read its
 * response in time), it-length-prefixed's `InvalidDataLengthLengthError` (a length prefix longer
 * than 8 bytes) and `UnexpectedEOFError`, and libp2p's own stream errors (`StreamResetError`, ...)
 * when the remote resets a stream or ends it inside a frame.
 *
 * A reset is best effort over WebRTC: @libp2p/webrtc 6.0.33 sends the RESET message and then
 * closes the data channel, and the remote handles the channel's close as soon as it happens but
 * its messages through an async queue, so it often sees a plain end of stream first. Nothing
 * here relies on a reset being seen as one.
 */
import { AbortError, StreamResetError, StreamStateError } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { decode, encode } from 'it-length-prefixed'
import { REQUEST_TIMEOUT_MS } from './constants.js'
import { isDirect } from './paths.js'
import type { Connection, Libp2p, Logger, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

/** There is no open, unlimited WebRTC connection to the peer, so nothing was sent. */
export class NotDirectError extends Error {
  static name = 'NotDirectError'
  name = 'NotDirectError'
}

/** A frame to send, or a frame received in a response, is larger than `maxFrameBytes`. */
export class FrameTooLargeError extends Error {
  static name = 'FrameTooLargeError'
  name = 'FrameTooLargeError'
}

/** A responder sent more than `maxFrames` frames; the response was discarded. */
export class TooManyFramesError extends Error {
  static name = 'TooManyFramesError'
  name = 'TooManyFramesError'
}

/** A response was not written within `writeTimeout`: the requester stopped reading. The stream was aborted. */
export class WriteTimeoutError extends Error {
  static name = 'WriteTimeoutError'
  name = 'WriteTimeoutError'
}

export interface FrameOptions {
  /** Largest frame sent or accepted, in bytes (the length prefix not counted). */
  maxFrameBytes: number
}

export interface RequestOptions extends FrameOptions {
  /** Most frames a response may carry: the responder sends no more, the requester accepts no more. */
  maxFrames: number
}

export interface ServeOptions extends RequestOptions {
  /**
   * Longest a whole response may take to write and close, in ms, from the moment `onRequest`
   * resolved; past it the stream is aborted with `WriteTimeoutError`, so a requester that stops
   * reading holds neither the stream nor the response. @default Infinity
   */
  writeTimeout?: number
  /** Called with the requester and its request when a response was aborted for `writeTimeout`. */
  onWriteTimeout?: (from: string, request: Uint8Array) => void
}

/**
 * The frames in `source`, a stream's bytes in chunks of any size, each behind its unsigned varint
 * length (it-length-prefixed). A length over `maxFrameBytes` throws `FrameTooLargeError` as soon as
 * its prefix is read, before any of its bytes are buffered; so at most `maxFrameBytes` plus one
 * chunk is ever held. A prefix longer than 8 bytes throws `InvalidDataLengthLengthError`, bytes
 * left over at the end `UnexpectedEOFError`. Every decoder of our stream frames goes through here.
 */
export async function * decodeFrames (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, maxFrameBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for await (const frame of decode(source, { maxDataLength: maxFrameBytes })) yield frame.subarray()
  } catch (err) {
    if (err instanceof Error && err.name === 'InvalidDataLengthError') {
      throw new FrameTooLargeError(`a frame is over the ${maxFrameBytes} byte limit`, { cause: err })
    }
    throw err
  }
}

const LOG_COMPONENT = 'p2p-rooms:streams'

/**
 * Registers `protocol` on `libp2p`: every complete frame arriving on an inbound stream goes to
 * `onFrame` with the sender's peer ID, in the order sent. Streams over limited (relayed) or
 * other non-WebRTC connections are refused. A stream announcing a frame over `maxFrameBytes` is
 * aborted (the remote sees a reset or an end) and logged; the node and other streams carry on. An
 * exception thrown by `onFrame` is logged and the stream carries on.
 *
 * One handler per protocol and node: a second call for the same protocol throws libp2p's
 * `DuplicateProtocolHandlerError`. Resolves with a function that unregisters the protocol and
 * aborts the streams still open on it; no `onFrame` call happens after it was called.
 */
export async function handleFrames (
  libp2p: Libp2p,
  protocol: string,
  onFrame: (from: string, frame: Uint8Array) => void,
  opts: FrameOptions
): Promise<() => Promise<void>> {
  const log = libp2p.logger.forComponent(LOG_COMPONENT)
  let stopped = false
  const unhandle = await serveDirect(libp2p, protocol, log, async (stream, from) => {
    for await (const frame of decodeFrames(incoming(stream), opts.maxFrameBytes)) {
      if (stopped) {
        stream.abort(new AbortError(`${protocol} handler unregistered`))
        return
      }
      try {
        onFrame(from, frame)
      } catch (err) {
        log.error('%s frame handler threw on a frame from %s - %e', protocol, from, err)
      }
    }
    // the sender closed its end: close ours, so the stream is gone on both sides
    await stream.close()
  })
  return async () => {
    stopped = true
    await unhandle()
  }
}

/**
 * Sends frames to peers, one long-lived outbound stream per peer. The stream opens on the first
 * `send` to that peer, over a direct connection only, and is opened again by the next `send`
 * once it closed (the remote closed or reset it, or its connection dropped). Frames to one peer
 * go out in the order `send` was called, each after the one before was handed to the stream;
 * frames to different peers do not wait for each other.
 *
 * Delivery is not acknowledged: frames handed to a stream that the remote resets, or whose
 * connection drops, before they arrived are lost; the room layer above tolerates that.
 */
export class FrameSender {
  private readonly libp2p: Libp2p
  private readonly protocol: string
  private readonly maxFrameBytes: number
  private readonly signal?: AbortSignal
  private readonly log: Logger
  private readonly streams = new Map<string, Stream>()
  /** per peer, the last queued operation: the next one starts once it settled */
  private readonly tails = new Map<string, Promise<void>>()

  /**
   * `opts.signal` ends the sender for good: its streams are aborted and every `send` after it,
   * or still queued, rejects with the signal's reason.
   */
  constructor (libp2p: Libp2p, protocol: string, opts: FrameOptions & { signal?: AbortSignal }) {
    this.libp2p = libp2p
    this.protocol = protocol
    this.maxFrameBytes = opts.maxFrameBytes
    this.signal = opts.signal
    this.log = libp2p.logger.forComponent(LOG_COMPONENT)
    this.signal?.addEventListener('abort', () => {
      for (const stream of this.streams.values()) stream.abort(asError(this.signal?.reason))
      this.streams.clear()
    }, { once: true })
  }

  /**
   * Queues `frame` for `peer` (a peer ID string) and resolves once it was handed to the peer's
   * stream and that stream can take more (it waits out the stream's `drain`, so a caller awaiting
   * each `send` never buffers more than the transport does). `frame` must not change until then.
   *
   * @throws {FrameTooLargeError} `frame` is larger than `maxFrameBytes` (nothing was queued)
   * @throws {NotDirectError} a stream had to be opened and there is no direct connection to `peer`
   * @throws the signal's reason once the sender's signal aborted; libp2p's stream errors if the
   * stream could not be opened or closed while the frame waited for it to drain
   */
  async send (peer: string, frame: Uint8Array): Promise<void> {
    this.signal?.throwIfAborted()
    if (frame.byteLength > this.maxFrameBytes) {
      throw new FrameTooLargeError(`a frame of ${frame.byteLength} bytes is over the ${this.maxFrameBytes} byte limit`)
    }
    const bytes = lengthPrefixed(frame)
    await this.enqueue(peer, async () => { await this.write(peer, bytes) })
  }

  /**
   * Writes `frame` to `peer`'s open stream at once, ahead of anything still queued, and returns
   * whether there was such a stream: for a page that is going away (`pagehide`), which may not
   * run another task. Never opens a stream, never waits, never throws.
   */
  sendNow (peer: string, frame: Uint8Array): boolean {
    const stream = this.streams.get(peer)
    if (stream === undefined || !writable(stream) || frame.byteLength > this.maxFrameBytes) return false
    try {
      stream.send(lengthPrefixed(frame))
      return true
    } catch {
      return false
    }
  }

  /**
   * Closes the stream to `peer`, or to every peer, after the frames already queued for it went out.
   * A later `send` opens a new stream.
   */
  async close (peer?: string): Promise<void> {
    const peers = peer === undefined ? new Set([...this.streams.keys(), ...this.tails.keys()]) : [peer]
    await Promise.all([...peers].map(async (p) => { await this.enqueue(p, async () => { await this.closeStream(p) }) }))
  }

  private async enqueue (peer: string, task: () => Promise<void>): Promise<void> {
    const run = (this.tails.get(peer) ?? Promise.resolve()).then(task)
    const tail = run.catch(() => {})
    this.tails.set(peer, tail)
    void tail.then(() => { if (this.tails.get(peer) === tail) this.tails.delete(peer) })
    await run
  }

  private async write (peer: string, bytes: Uint8Array): Promise<void> {
    this.signal?.throwIfAborted()
    let stream = this.streams.get(peer)
    if (stream === undefined || !writable(stream)) stream = await this.open(peer)
    if (!stream.send(bytes)) await drained(stream, this.signal)
  }

  private async open (peer: string): Promise<Stream> {
    this.streams.delete(peer)
    const conn = directConnection(this.libp2p, peer)
    // no signal: libp2p then bounds the protocol negotiation with its own timeout, which a
    // sender-lifetime signal would replace with none. `negotiateFully: false` asks for optimistic
    // negotiation (the protocol name going out with the first frame, no round trip before it), as
    // @libp2p/interface 3.3.0 documents it; @libp2p/multistream-select 7.0.28 ignores it, and our
    // patch of it (patches/) selects every single protocol optimistically anyway
    const opening = conn.newStream(this.protocol, { runOnLimitedConnection: false, negotiateFully: false })
    const stream = await untilAborted(opening, this.signal, (late) => { late.abort(asError(this.signal?.reason)) })
    this.log('opened %s stream %s to %s', this.protocol, stream.id, peer)
    stream.addEventListener('close', (evt) => {
      if (this.streams.get(peer) === stream) this.streams.delete(peer)
      if (evt.error != null) this.log('%s stream to %s ended - %e', this.protocol, peer, evt.error)
    }, { once: true })
    this.streams.set(peer, stream)
    return stream
  }

  private async closeStream (peer: string): Promise<void> {
    const stream = this.streams.get(peer)
    if (stream === undefined) return
    this.streams.delete(peer)
    try {
      // no signal: a sender-lifetime signal would replace the bound on waiting for the remote's ack
      await stream.close()
    } catch (err) {
      stream.abort(asError(err))
    }
  }
}

/**
 * Registers `protocol` on `libp2p` as a request/response protocol: reads the one request frame of
 * each inbound stream, answers with the frames `onRequest` resolves with (at most `maxFrames`,
 * each at most `maxFrameBytes`) and closes the stream. Streams over limited or other non-WebRTC
 * connections are refused. A request over `maxFrameBytes`, a stream closed before its request,
 * `onRequest` rejecting, a response frame over `maxFrameBytes`, or a response not written within
 * `writeTimeout` aborts that stream (the requester sees a reset, or an empty or cut response) and
 * is logged; frames beyond `maxFrames` are left out and logged.
 *
 * Resolves with a function that unregisters the protocol and aborts the exchanges in progress.
 */
export async function handleRequests (
  libp2p: Libp2p,
  protocol: string,
  onRequest: (from: string, request: Uint8Array) => Promise<Uint8Array[]>,
  opts: ServeOptions
): Promise<() => Promise<void>> {
  const log = libp2p.logger.forComponent(LOG_COMPONENT)
  return serveDirect(libp2p, protocol, log, async (stream, from) => {
    // a requester that opens a stream and stays silent must not hold it open forever
    const timer = setTimeout(() => { stream.abort(new RequestTimeoutError(`no request within ${REQUEST_TIMEOUT_MS} ms`)) }, REQUEST_TIMEOUT_MS)
    const req = await firstFrame(stream, opts.maxFrameBytes).finally(() => { clearTimeout(timer) })
    let frames = await onRequest(from, req)
    if (frames.length > opts.maxFrames) {
      log('%s response to %s cut from %d to %d frames', protocol, from, frames.length, opts.maxFrames)
      frames = frames.slice(0, opts.maxFrames)
    }
    // checked before the first frame goes out, so a requester never gets a partial response
    const tooLarge = frames.find((f) => f.byteLength > opts.maxFrameBytes)
    if (tooLarge !== undefined) {
      throw new FrameTooLargeError(`a response frame of ${tooLarge.byteLength} bytes is over the ${opts.maxFrameBytes} byte limit`)
    }
    const writeTimeout = opts.writeTimeout ?? Infinity
    const deadline = Number.isFinite(writeTimeout)
      ? setTimeout(() => {
        opts.onWriteTimeout?.(from, req)
        stream.abort(new WriteTimeoutError(`the response was not read within ${writeTimeout} ms`))
      }, writeTimeout)
      : undefined
    try {
      for (const frame of frames) {
        if (!stream.send(lengthPrefixed(frame))) await drained(stream)
      }
      await stream.close()
    } finally {
      clearTimeout(deadline)
    }
  })
}

/**
 * Registers `protocol` for inbound streams over our direct connections only, runs `serve` on
 * each, and aborts (and logs) a stream whose `serve` fails. Resolves with a function that
 * unregisters the protocol and aborts the streams still open on it.
 */
async function serveDirect (
  libp2p: Libp2p,
  protocol: string,
  log: Logger,
  serve: (stream: Stream, from: string) => Promise<void>
): Promise<() => Promise<void>> {
  const open = new Set<Stream>()
  await libp2p.handle(protocol, async (stream, connection) => {
    const from = connection.remotePeer.toString()
    if (!overDirectConnection(stream, connection, log)) return
    open.add(stream)
    try {
      await serve(stream, from)
    } catch (err) {
      log.error('aborting %s stream from %s - %e', protocol, from, err)
      stream.abort(asError(err))
    } finally {
      open.delete(stream)
    }
  }, { runOnLimitedConnection: false })
  return async () => {
    await libp2p.unhandle(protocol)
    for (const stream of open) stream.abort(new AbortError(`${protocol} handler unregistered`))
  }
}

/**
 * Sends `req` to `peer` on a new `protocol` stream over a direct connection and resolves with
 * every frame of the response, in order, once the responder closed the stream.
 *
 * @throws {NotDirectError} there is no direct connection to `peer` (no stream was opened)
 * @throws {FrameTooLargeError} `req`, or a response frame, is larger than `maxFrameBytes`
 * @throws {TooManyFramesError} the response has more than `maxFrames` frames
 * @throws `opts.signal`'s reason once it aborted (the stream is aborted with it)
 * @throws libp2p's stream errors: `StreamResetError` if the responder aborted (it refused the
 * request; over WebRTC this may instead read as the response ending early, see above),
 * `UnexpectedEOFError` if it closed inside a frame
 */
export async function request (
  libp2p: Libp2p,
  peer: string,
  protocol: string,
  req: Uint8Array,
  opts: RequestOptions & { signal: AbortSignal }
): Promise<Uint8Array[]> {
  const { signal } = opts
  signal.throwIfAborted()
  if (req.byteLength > opts.maxFrameBytes) {
    throw new FrameTooLargeError(`a request of ${req.byteLength} bytes is over the ${opts.maxFrameBytes} byte limit`)
  }
  const conn = directConnection(libp2p, peer)
  // optimistic negotiation: the protocol name goes out with the request, saving a round trip
  const stream = await conn.newStream(protocol, { signal, runOnLimitedConnection: false, negotiateFully: false })
  const onAbort = (): void => { stream.abort(asError(signal.reason)) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const frames: Uint8Array[] = []
    // reading starts before the request goes out: the response may follow at once
    const reading = (async () => {
      for await (const frame of decodeFrames(incoming(stream), opts.maxFrameBytes)) {
        if (frames.length >= opts.maxFrames) {
          throw new TooManyFramesError(`the response from ${peer} has more than ${opts.maxFrames} frames`)
        }
        frames.push(frame)
      }
    })()
    // awaited below; if send throws first (the stream is already closing), its failure must not
    // surface as an unhandled rejection
    reading.catch(() => {})
    // a single small frame; closing the writable end waits until it was handed over
    stream.send(lengthPrefixed(req))
    const closing = stream.close({ signal })
    closing.catch(() => {})
    // the response decides: a responder that answered, or refused, may close the stream before
    // our end's close goes out (which, with optimistic protocol selection, waits for its echo),
    // and a close failing then changes nothing
    await reading
    await closing.catch((err: unknown) => { if (stream.status === 'open') throw err })
    return frames
  } catch (err) {
    stream.abort(asError(err))
    if (signal.aborted) throw asError(signal.reason)
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** An open, unlimited WebRTC connection to `peer`, or `NotDirectError`. */
function directConnection (libp2p: Libp2p, peer: string): Connection {
  const conn = newestDirect(libp2p.getConnections(peerIdFromString(peer)))
  if (conn === undefined) throw new NotDirectError(`no direct connection to ${peer}`)
  return conn
}

/**
 * The most recently opened direct connection: a peer that reloaded reaches us over a new one
 * while its old one, dead, may still look open until ICE gives up on it.
 */
export function newestDirect (conns: Connection[]): Connection | undefined {
  let newest: Connection | undefined
  for (const c of conns) {
    if (isDirect(c) && (newest === undefined || c.timeline.open > newest.timeline.open)) newest = c
  }
  return newest
}

/**
 * libp2p already refuses our protocols on limited connections (`runOnLimitedConnection: false`);
 * an unlimited connection that is not our WebRTC one (a direct WebSockets connection to some
 * node) must not carry room data either. Returns whether the stream may be used; aborts it if not.
 */
function overDirectConnection (stream: Stream, connection: Connection, log: Logger): boolean {
  if (isDirect(connection)) return true
  log('refusing %s stream from %p over a %s connection', stream.protocol, connection.remotePeer, connection.multiplexer)
  stream.abort(new NotDirectError(`${stream.protocol} runs over direct connections only`))
  return false
}

/** Reads the first frame of `stream`; the stream ending before it is an `UnexpectedEOFError`. */
async function firstFrame (stream: Stream, maxFrameBytes: number): Promise<Uint8Array> {
  for await (const frame of decodeFrames(incoming(stream), maxFrameBytes)) {
    // leaving the loop detaches the reader; the requester sends nothing after its request
    return frame
  }
  throw new UnexpectedEOFError(`${stream.protocol} stream ended before its request`)
}

/** The requester sent no request in time. */
class RequestTimeoutError extends Error {
  static name = 'RequestTimeoutError'
  name = 'RequestTimeoutError'
}

/** The stream ended before a complete frame (named like libp2p's error for the same condition). */
class UnexpectedEOFError extends Error {
  static name = 'UnexpectedEOFError'
  name = 'UnexpectedEOFError'
}

/**
 * The bytes arriving on `stream`, ending once the remote closed its writable end and every byte
 * was read, throwing if the stream was reset or aborted. The stream's own async iterator waits
 * for the `remoteCloseWrite` or `close` event, and those fire once: if a short stream was sent
 * and closed before its handler started reading (the handler runs after an await on the peer
 * store), that iterator never ends. This one also ends on `end`, which the stream dispatches
 * only after its buffered bytes were handed to a reader, and checks the stream's state first.
 */
export async function * incoming (stream: Stream): AsyncGenerator<Uint8Array, void, undefined> {
  const chunks: Uint8Array[] = []
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  // `subarray()` copies only a chunk that spans several buffers; it hands `decode` a plain
  // Uint8Array because its uint8arraylist is another copy than libp2p's (types do not mix)
  const onMessage = (evt: StreamMessageEvent): void => { chunks.push(evt.data.subarray()); wake?.() }
  const onEnd = (): void => { ended = true; wake?.() }
  const onClose = (evt: StreamCloseEvent): void => { failure = evt.error; ended = true; wake?.() }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  try {
    while (true) {
      const chunk = chunks.shift()
      if (chunk !== undefined) {
        yield chunk
        continue
      }
      if (failure !== undefined) throw readFailure(stream, failure)
      if (ended || stream.readableEnded) {
        // a reset that happened before we listened left no event, only the status
        if (stream.status === 'reset' || stream.status === 'aborted') throw new StreamResetError(`${stream.protocol} stream was ${stream.status}`)
        return
      }
      await new Promise<void>((resolve) => { wake = resolve })
      wake = undefined
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('close', onClose)
  }
}

/**
 * What a reader of `stream` is told when the stream closed with `err`. A transport failing under
 * the stream closes it with a bare `Error`: @libp2p/webrtc 6.0.33 aborts a stream with whatever
 * `RTCDataChannel.send` threw (libp2p/js-libp2p#3469), and node-datachannel throws
 * `Error: ... DataChannel is closed` once the remote closed its channel but before the polyfill's
 * cached `readyState` caught up (the remote refusing a request does exactly that). For the reader
 * that is the stream reset under it: `StreamResetError`, with the transport's error as `cause`.
 * A named error (the remote's RESET, a signal's reason, our own typed errors) passes unchanged.
 */
export function readFailure (stream: Pick<Stream, 'protocol'>, err: Error): Error {
  if (err.name !== 'Error') return err
  const reset = new StreamResetError(`${stream.protocol ?? 'a'} stream failed in its transport: ${err.message}`)
  reset.cause = err
  return reset
}

/** Resolves with `promise`, or rejects with the signal's reason once it aborts; a value that arrives late goes to `discard`. */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal | undefined, discard: (late: T) => void): Promise<T> {
  if (signal == null) return promise
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(asError(signal.reason)) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then((value) => {
      signal.removeEventListener('abort', onAbort)
      if (signal.aborted) discard(value)
      else resolve(value)
    }, (err) => {
      signal.removeEventListener('abort', onAbort)
      reject(err)
    })
  })
}

/**
 * Resolves at the stream's next `drain` event, once it can take more bytes; rejects if it closes
 * first or `signal` aborts. Not `stream.onDrain()`: in @libp2p/utils 7.4.1 that keeps its first,
 * already resolved promise, so from the second wait on it resolves at once and a fast sender
 * piles every frame into the stream's unbounded write buffer (the backpressure test shows it).
 */
export async function drained (stream: Stream, signal?: AbortSignal): Promise<void> {
  if (!stream.writableNeedsDrain) return
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => { settle() }
    const onClose = (evt: StreamCloseEvent): void => { settle(evt.error ?? new StreamStateError('the stream closed before it drained')) }
    const onAbort = (): void => { settle(asError(signal?.reason)) }
    function settle (err?: Error): void {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

/** `frame` behind its varint length, as one buffer (see `incoming` on why not a Uint8ArrayList). */
function lengthPrefixed (frame: Uint8Array): Uint8Array {
  return encode.single(frame).subarray()
}

function writable (stream: Stream): boolean {
  // a remote that stopped reading (STOP_SENDING) makes the stream drop whatever we write
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.remoteReadStatus !== 'closed'
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new AbortError(String(err))
}
