/**
 * Frames on file streams: the same framing as the room protocols (an unsigned varint length, then
 * the bytes, `it-length-prefixed`), with a writer that waits out the stream's `drain` and a reader
 * that ends reliably (src/streams.ts `incoming`, which works around @libp2p/utils 7.4.1's own
 * iterator). File streams need a duplex exchange src/streams.ts does not offer, so these live here.
 */
import { decode, encode } from 'it-length-prefixed'
import { drained, incoming } from '../streams.js'
import type { Stream } from '@libp2p/interface'

/** The stream ended before the frame its request asked for. */
export class UnexpectedEndError extends Error {
  static name = 'UnexpectedEndError'
  name = 'UnexpectedEndError'
}

/**
 * Every frame arriving on `stream`, in order, each at most `maxFrameBytes` (a larger length
 * prefix throws `InvalidDataLengthError` before anything is allocated for it). Ends once the
 * remote closed its writable end; throws if the stream was reset or aborted.
 */
export async function * readFrames (stream: Stream, maxFrameBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const frame of decode(incoming(stream), { maxDataLength: maxFrameBytes })) {
    yield frame.subarray()
  }
}

/** The first frame of `stream`, or `UnexpectedEndError`; stops reading after it. */
export async function firstFrame (stream: Stream, maxFrameBytes: number): Promise<Uint8Array> {
  for await (const frame of readFrames(stream, maxFrameBytes)) return frame
  throw new UnexpectedEndError(`${stream.protocol} stream ended before its first frame`)
}

/**
 * Writes `frame` behind its length and resolves once the stream can take more: it waits for the
 * stream's next `drain` (the data channel's buffer emptied) whenever the transport says it is
 * full, so a sender awaiting each write never buffers more than the transport does.
 */
export async function writeFrame (stream: Stream, frame: Uint8Array, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  if (!stream.send(encode.single(frame).subarray())) await drained(stream, signal)
}

export function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
