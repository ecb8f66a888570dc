/**
 * The demo's own room message payload: what it puts in `room.publish`/`room.send` data. The
 * library carries bytes; this JSON schema is the app's:
 *
 * ```json
 * { "app": "p2p-rooms-demo", "v": 1, "kind": "chat", "text": "hi", "name": "Ada", "sentAt": 1733130000000 }
 * { "app": "p2p-rooms-demo", "v": 1, "kind": "profile", "name": "Ada" }
 * ```
 *
 * - `name`: the sender's picked display name (absent: the generated one, names.ts);
 * - `sentAt`: the sender's clock when it sent, in ms since the epoch, so that a message served
 *   from the backlog shows when it was written, not when it arrived;
 * - `profile`: announces a picked name to members that joined since (no text).
 *
 * Anything else that arrives (another client's plain text, a newer version) is shown as plain
 * text from its sender: the demo never drops a message it can display.
 */
import { cleanName } from './names.js'

export const PAYLOAD_APP = 'p2p-rooms-demo'
export const PAYLOAD_VERSION = 1

export type DemoMessage =
  | { kind: 'chat', text: string, name?: string, sentAt?: number }
  | { kind: 'profile', name?: string }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeMessage (msg: DemoMessage): string {
  return JSON.stringify({ app: PAYLOAD_APP, v: PAYLOAD_VERSION, ...msg })
}

/** Bytes `msg` takes on the wire: what the room's `maxMessageBytes` is compared with. */
export function encodedBytes (msg: DemoMessage): number {
  return encoder.encode(encodeMessage(msg)).byteLength
}

/** A sender's clock more than this far ahead of ours is not believed. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000

export function decodeMessage (data: Uint8Array, now = Date.now()): DemoMessage {
  const text = decoder.decode(data)
  let parsed: any
  try {
    parsed = text.startsWith('{') ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.app !== PAYLOAD_APP) return { kind: 'chat', text }
  const name = cleanName(parsed.name)
  if (parsed.kind === 'profile') return { kind: 'profile', ...(name !== undefined ? { name } : {}) }
  if (parsed.kind !== 'chat' || typeof parsed.text !== 'string') return { kind: 'chat', text }
  const sentAt = typeof parsed.sentAt === 'number' && Number.isFinite(parsed.sentAt) && parsed.sentAt > 0 && parsed.sentAt < now + MAX_CLOCK_SKEW_MS
    ? parsed.sentAt
    : undefined
  return { kind: 'chat', text: parsed.text, ...(name !== undefined ? { name } : {}), ...(sentAt !== undefined ? { sentAt } : {}) }
}
