/**
 * The holder's side of a file: answers manifest requests, and serves the chunks a fetcher asks for
 * on a get stream, in the order asked, reading the blob one chunk at a time (the next one read
 * while the current one is sent) and waiting out the stream's `drain` before each next chunk.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { MAX_WANT_INDICES } from '../constants.js'
import { drained } from '../streams.js'
import { readChunk } from './manifest.js'
import { asError, writeFrame } from './stream-io.js'
import { FRAME_CHUNK, decodeWant, encodeManifestFrames, encodeMissing } from './wire.js'
import type { Manifest } from './manifest.js'
import type { Stream } from '@libp2p/interface'

/** A file we can serve. */
export interface Servable {
  blob: Blob
  manifest: Manifest
  /** Called after chunk `index` (`bytes` long) was handed to the transport. */
  onSent?: (index: number, bytes: number) => void
  /** Fault injection for tests: whether to flip a byte of chunk `index` this time. */
  corrupt?: (index: number) => boolean
  /** Stops serving this file's streams (its receiver dropped or left: it asks again when back). */
  signal?: AbortSignal
}

/** Chunks read from the blob ahead of the one being sent. */
const READ_AHEAD = 4

/** Chunks a fetcher may have asked for and not been sent yet: its window, with room to spare. */
const MAX_QUEUED = 4 * MAX_WANT_INDICES

export async function serveManifest (stream: Stream, s: Servable): Promise<void> {
  for (const frame of encodeManifestFrames(s.manifest.hashes)) await writeFrame(stream, frame)
  await stream.close()
}

/**
 * Serves the get stream of one fetcher, whose frames after its request are `frames`, until it
 * closes its end and every chunk asked for was sent. Without `s` (we do not offer that file to
 * the fetcher) every chunk asked for is answered as missing.
 */
export async function serveChunks (stream: Stream, frames: AsyncIterable<Uint8Array>, s: Servable | undefined, nodeSignal: AbortSignal): Promise<void> {
  const signal = s?.signal === undefined ? nodeSignal : AbortSignal.any([nodeSignal, s.signal])
  const queue: number[] = []
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = (): void => { const w = wake; wake = undefined; w?.() }
  const reading = (async () => {
    for await (const frame of frames) {
      const want = decodeWant(frame)
      if (want === undefined || (s !== undefined && want.some((i) => i >= s.manifest.count))) throw new Error('malformed want frame')
      queue.push(...want)
      if (queue.length > MAX_QUEUED) throw new Error(`a fetcher asked for more than ${MAX_QUEUED} chunks ahead`)
      notify()
    }
  })().then(() => { ended = true; notify() }, (err) => { failure = asError(err); notify() })
  const onAbort = (): void => { failure ??= asError(signal.reason); notify() }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    // chunks being read from the blob ahead of the one being sent: a read is a round trip to
    // wherever the browser keeps the blob, and the transport should never wait for one
    const ahead = new Map<number, Promise<Uint8Array>>()
    const readAhead = (): void => {
      for (const i of queue.slice(0, READ_AHEAD)) {
        if (s === undefined || ahead.has(i)) continue
        const p = readChunk(s.blob, s.manifest.chunkSize, i)
        p.catch(() => {})
        ahead.set(i, p)
      }
    }
    while (true) {
      if (failure !== undefined) throw failure
      const index = queue.shift()
      if (index === undefined) {
        if (ended) break
        await new Promise<void>((resolve) => { wake = resolve })
        continue
      }
      if (s === undefined) {
        await writeFrame(stream, encodeMissing(index), signal)
        continue
      }
      const pending = ahead.get(index) ?? readChunk(s.blob, s.manifest.chunkSize, index)
      ahead.delete(index)
      readAhead()
      const data = await pending
      if (s.corrupt?.(index) === true) data[0] ^= 0xff
      await writeChunk(stream, index, data, signal)
      s.onSent?.(index, data.byteLength)
    }
    await stream.close()
  } catch (err) {
    // the reader must end too before we return
    stream.abort(asError(err))
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
    await reading
  }
}

/**
 * One chunk frame, length prefix included, handed to the stream as a list of its 8 header bytes
 * and the chunk: the chunk is not copied here. @libp2p/webrtc (patched, see patches/) copies both
 * once into the data channel message, and a chunk of `FILE_CHUNK_BYTES` fills one message.
 */
async function writeChunk (stream: Stream, index: number, data: Uint8Array, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  const length = 5 + data.byteLength
  const prefix = varint(length)
  const header = new Uint8Array(prefix.byteLength + 5)
  header.set(prefix)
  header[prefix.byteLength] = FRAME_CHUNK
  new DataView(header.buffer).setUint32(prefix.byteLength + 1, index)
  if (!stream.send(new Uint8ArrayList(header, data))) await drained(stream, signal)
}

/** Unsigned LEB128, as `it-length-prefixed` writes lengths. */
function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}
