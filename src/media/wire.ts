/**
 * Wire format of media signalling (`MEDIA_PROTOCOL`, `/p2p-rooms/3/media`): one long-lived stream
 * per peer over the direct WebRTC connection, framed like the room protocols (an unsigned varint
 * byte length, then that many bytes; see src/streams.ts), at most `MAX_MEDIA_FRAME_BYTES` a frame.
 *
 * A frame is `encodeLabelled(room key, message)` (src/wire.ts): the room key names the room whose
 * media peer connection the message is for, and the message is UTF-8 JSON, one of:
 *
 * | `t`        | other fields                                                        | meaning                                  |
 * | ---------- | ------------------------------------------------------------------- | ---------------------------------------- |
 * | `"sdp"`    | `type`: `"offer"` \| `"answer"`, `sdp`: string                      | a session description (perfect negotiation) |
 * | `"ice"`    | `candidate`: string, `sdpMid`?: string, `sdpMLineIndex`?: integer, `usernameFragment`?: string | one ICE candidate |
 * | `"add"`    | `id`: the stream's `MediaStream.id` (its SDP msid), `meta`?: any JSON | a stream we send you, with its metadata  |
 * | `"remove"` | `id`                                                                | that stream ended                        |
 * | `"hello"`  |                                                                     | sent to a member on joining: names `s`   |
 *
 * Every message has `v: 1`, and may carry `s`: the sender's media session in this room (random,
 * 1–64 printable ASCII characters, the same in all its messages until it leaves the room). A
 * member whose `s` changes without having left is a new page (a crashed tab reloaded under the
 * same peer ID): the receiver starts its media connection to it afresh. Unknown fields are ignored; a missing or mistyped field, a string over
 * its bound (`MAX_SDP_LENGTH`, `MAX_CANDIDATE_LENGTH`, 256 for an `id`), metadata over
 * `MAX_STREAM_METADATA_BYTES`, or bytes that are not UTF-8 JSON make the decoder throw
 * `InvalidSignalError`, and nothing else.
 */
import { MAX_CANDIDATE_LENGTH, MAX_MEDIA_FRAME_BYTES, MAX_SDP_LENGTH, MAX_STREAM_METADATA_BYTES } from '../constants.js'

export const MEDIA_WIRE_VERSION = 1

/** Longest stream ID (a browser's `MediaStream.id` is a 36-character UUID). */
export const MAX_STREAM_ID_LENGTH = 256

/** Longest media session ID (`s`). */
export const MAX_SESSION_ID_LENGTH = 64

export type MediaSignal = (
  | { t: 'sdp', type: 'offer' | 'answer', sdp: string }
  | { t: 'ice', candidate: string, sdpMid?: string, sdpMLineIndex?: number, usernameFragment?: string }
  | { t: 'add', id: string, meta?: unknown }
  | { t: 'remove', id: string }
  | { t: 'hello' }
) & { s?: string }

/** A signalling message could not be decoded: not UTF-8 JSON, not a known message, or over a bound. */
export class InvalidSignalError extends Error {
  static name = 'InvalidSignalError'
  name = 'InvalidSignalError'
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
/** a stream ID is printable ASCII without spaces: what browsers generate and SDP's msid allows */
const STREAM_ID = /^[\x21-\x7e]+$/

export function encodeSignal (msg: MediaSignal): Uint8Array {
  return encoder.encode(JSON.stringify({ v: MEDIA_WIRE_VERSION, ...msg }))
}

/**
 * The message in `bytes`.
 *
 * @throws InvalidSignalError for anything that is not a valid message
 */
export function decodeSignal (bytes: Uint8Array): MediaSignal {
  if (bytes.byteLength > MAX_MEDIA_FRAME_BYTES) throw new InvalidSignalError(`a signalling message of ${bytes.byteLength} bytes is over the ${MAX_MEDIA_FRAME_BYTES} byte limit`)
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new InvalidSignalError('a signalling message is not UTF-8 JSON', { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidSignalError('a signalling message is not a JSON object')
  const m = value as Record<string, unknown>
  if (m.v !== MEDIA_WIRE_VERSION) throw new InvalidSignalError(`unknown signalling version ${JSON.stringify(m.v)?.slice(0, 32)}`)
  const msg = body(m)
  if (m.s !== undefined) msg.s = streamId(m.s, 's', MAX_SESSION_ID_LENGTH)
  return msg
}

function body (m: Record<string, unknown>): MediaSignal {
  switch (m.t) {
    case 'sdp':
      if (m.type !== 'offer' && m.type !== 'answer') throw new InvalidSignalError('an sdp message needs type "offer" or "answer"')
      return { t: 'sdp', type: m.type, sdp: str(m.sdp, 'sdp', MAX_SDP_LENGTH) }
    case 'ice': {
      const out: MediaSignal = { t: 'ice', candidate: str(m.candidate, 'candidate', MAX_CANDIDATE_LENGTH, true) }
      if (m.sdpMid != null) out.sdpMid = str(m.sdpMid, 'sdpMid', MAX_CANDIDATE_LENGTH, true)
      if (m.sdpMLineIndex != null) {
        if (!Number.isInteger(m.sdpMLineIndex) || (m.sdpMLineIndex as number) < 0 || (m.sdpMLineIndex as number) > 0xffff) throw new InvalidSignalError('sdpMLineIndex must be an integer from 0 to 65535')
        out.sdpMLineIndex = m.sdpMLineIndex as number
      }
      if (m.usernameFragment != null) out.usernameFragment = str(m.usernameFragment, 'usernameFragment', MAX_CANDIDATE_LENGTH, true)
      return out
    }
    case 'add': {
      const out: MediaSignal = { t: 'add', id: streamId(m.id) }
      if (m.meta !== undefined) {
        // re-encoded: what counts is the size of the value, however the sender spaced it
        if (encoder.encode(JSON.stringify(m.meta)).byteLength > MAX_STREAM_METADATA_BYTES) throw new InvalidSignalError(`stream metadata is over ${MAX_STREAM_METADATA_BYTES} bytes`)
        out.meta = m.meta
      }
      return out
    }
    case 'remove':
      return { t: 'remove', id: streamId(m.id) }
    case 'hello':
      return { t: 'hello' }
    default:
      throw new InvalidSignalError(`unknown signalling message type ${JSON.stringify(m.t)?.slice(0, 32)}`)
  }
}

function str (v: unknown, field: string, max: number, emptyOk = false): string {
  if (typeof v !== 'string') throw new InvalidSignalError(`${field} must be a string`)
  if (v.length > max) throw new InvalidSignalError(`${field} is over ${max} characters`)
  if (!emptyOk && v.length === 0) throw new InvalidSignalError(`${field} is empty`)
  return v
}

function streamId (v: unknown, field = 'id', max = MAX_STREAM_ID_LENGTH): string {
  const id = str(v, field, max)
  if (!STREAM_ID.test(id)) throw new InvalidSignalError(`${field} is printable ASCII without spaces`)
  return id
}

/** JSON `metadata` of a stream we send, checked before anything goes out; `undefined` if fine. */
export function metadataProblem (meta: unknown): string | undefined {
  if (meta === undefined) return undefined
  let json: string | undefined
  try {
    json = JSON.stringify(meta)
  } catch (err) {
    return `metadata is not JSON (${err instanceof Error ? err.message : 'its toJSON threw'})`
  }
  if (json === undefined) return 'metadata is not JSON'
  const bytes = encoder.encode(json).byteLength
  if (bytes > MAX_STREAM_METADATA_BYTES) return `metadata is ${bytes} bytes as JSON, over ${MAX_STREAM_METADATA_BYTES}`
  return undefined
}
