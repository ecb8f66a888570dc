/**
 * Wire formats of p2p-rooms, version 1. This file is the only place they are defined.
 *
 * Discovery topic (`/p2p-rooms/1/discovery/<room>`), followed by relays, JSON in UTF-8:
 *
 * ```json
 * { "v": 1, "kind": "announce", "addrs": ["/ip4/…/ws/p2p/<relay>/p2p-circuit/webrtc/p2p/<self>"] }
 * { "v": 1, "kind": "leave" }
 * ```
 *
 * The sender is the gossipsub message's `from` (signed, `StrictSign`), never a field in the body,
 * so a peer cannot announce somebody else. At most `MAX_ANNOUNCEMENT_BYTES` and
 * `MAX_ANNOUNCED_ADDRS` addresses, each of which must end in the sender's own `/p2p/<peer ID>`.
 *
 * Room topic (`/p2p-rooms/1/room/<room>`), carried only over direct connections:
 * one byte of version (`1`), one byte of kind (`0` = application data), then the payload.
 */
import { DISCOVERY_TOPIC_PREFIX, MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCEMENT_BYTES, ROOM_TOPIC_PREFIX } from './constants.js'

export const WIRE_VERSION = 1

export type Announcement =
  | { v: 1, kind: 'announce', addrs: string[] }
  | { v: 1, kind: 'leave' }

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeAnnouncement (a: Announcement): Uint8Array {
  return encoder.encode(JSON.stringify(a))
}

/**
 * Parses an announcement from `sender`, returning `undefined` for anything malformed,
 * oversized, or naming addresses that are not the sender's own.
 */
export function decodeAnnouncement (bytes: Uint8Array, sender: string): Announcement | undefined {
  if (bytes.byteLength > MAX_ANNOUNCEMENT_BYTES) return undefined
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const msg = value as Record<string, unknown>
  if (msg.v !== WIRE_VERSION) return undefined
  if (msg.kind === 'leave') return { v: 1, kind: 'leave' }
  if (msg.kind !== 'announce' || !Array.isArray(msg.addrs)) return undefined
  if (msg.addrs.length === 0 || msg.addrs.length > MAX_ANNOUNCED_ADDRS) return undefined
  const suffix = `/p2p/${sender}`
  if (!msg.addrs.every((a) => typeof a === 'string' && a.endsWith(suffix))) return undefined
  return { v: 1, kind: 'announce', addrs: msg.addrs as string[] }
}

/** Kind byte of a room message that carries application data. */
export const KIND_DATA = 0

export function encodeRoomMessage (kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength + 2)
  out[0] = WIRE_VERSION
  out[1] = kind
  out.set(payload, 2)
  return out
}

export function decodeRoomMessage (bytes: Uint8Array): { kind: number, payload: Uint8Array } | undefined {
  if (bytes.byteLength < 2 || bytes[0] !== WIRE_VERSION) return undefined
  if (bytes[1] !== KIND_DATA) return undefined
  return { kind: bytes[1], payload: bytes.subarray(2) }
}

/** The discovery and data topics of a room; the one place a room name becomes a topic. */
export function roomTopics (name: string): { discovery: string, room: string } {
  return { discovery: DISCOVERY_TOPIC_PREFIX + name, room: ROOM_TOPIC_PREFIX + name }
}
