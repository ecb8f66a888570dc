/**
 * Wire formats of p2p-rooms (topics and protocols of version 3). This file is the only place they are defined.
 *
 * Discovery topic (`/p2p-rooms/3/discovery/…`, see `roomTopics`), followed by relays, JSON in UTF-8:
 *
 * ```json
 * { "v": 1, "kind": "announce", "addrs": ["/ip4/…/ws/p2p/<relay>/p2p-circuit/webrtc/p2p/<self>"], "t": 1796196727456 }
 * { "v": 1, "kind": "leave" }
 * ```
 *
 * The sender is the gossipsub message's `from` (signed, `StrictSign`), never a field in the body,
 * so a peer cannot announce somebody else. At most `MAX_ANNOUNCEMENT_BYTES` and
 * `MAX_ANNOUNCED_ADDRS` addresses, each of which must end in the sender's own `/p2p/<peer ID>`.
 * `t` (optional) is when the sender's node started, in ms since the epoch: of two peers, the one
 * that started later dials the other (direct.ts).
 *
 * Room frames (`ROOM_PROTOCOL`, one stream per direct peer, see streams.ts for the framing):
 * `encodeLabelled(room key, room message)`, where the room key is `roomTopics(…).room`; the
 * history stream carries room messages too. Room messages are binary, see `encodeRoomMessage`.
 */
import { DISCOVERY_TOPIC_PREFIX, MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCEMENT_BYTES, ROOM_TOPIC_PREFIX } from './constants.js'

/** Version of the discovery announcement JSON (`v`). */
export const ANNOUNCEMENT_VERSION = 1

export type Announcement =
  | { v: 1, kind: 'announce', addrs: string[], t?: number }
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
  if (msg.v !== ANNOUNCEMENT_VERSION) return undefined
  if (msg.kind === 'leave') return { v: 1, kind: 'leave' }
  if (msg.kind !== 'announce' || !Array.isArray(msg.addrs)) return undefined
  if (msg.addrs.length === 0 || msg.addrs.length > MAX_ANNOUNCED_ADDRS) return undefined
  const suffix = `/p2p/${sender}`
  if (!msg.addrs.every((a) => typeof a === 'string' && a.endsWith(suffix))) return undefined
  if (msg.t !== undefined && !(typeof msg.t === 'number' && Number.isFinite(msg.t) && msg.t >= 0)) return undefined
  return msg.t === undefined ? { v: 1, kind: 'announce', addrs: msg.addrs as string[] } : { v: 1, kind: 'announce', addrs: msg.addrs as string[], t: msg.t }
}

/** What a room message carries, its second byte. */
export const KIND_DATA = 0
/** Presence: "I am here, with this rank"; no body. */
export const KIND_HEARTBEAT = 1
/** The host hands its role over: body is the new host's rank (float64) and peer ID (UTF-8). */
export const KIND_HANDOFF = 2
/** The sender leaves the room (or its page goes away); no body. */
export const KIND_LEAVE = 3

export type RoomMessageKind = typeof KIND_DATA | typeof KIND_HEARTBEAT | typeof KIND_HANDOFF | typeof KIND_LEAVE

/** Bytes before a room message's body. */
export const ROOM_HEADER_BYTES = 14

export interface RoomMessageHeader {
  kind: RoomMessageKind
  /** The sender's sequence number for data (1, 2, 3… per sender and room, or per pair in a pairwise room); 0 for control messages. */
  seq: number
  /** The sender's host rank (lowest rank is the host), normally its join time in ms since the epoch. */
  rank: number
}

export interface RoomMessage extends RoomMessageHeader {
  /** The header bytes as sent: authenticated data of a private room's body. */
  header: Uint8Array
  /** Plaintext body, or AES-GCM sealed body in a private room. */
  body: Uint8Array
}

/**
 * Room message, version 2 (room topic, pairwise frames, history frames): big-endian
 *
 * | bytes | field                                                           |
 * | ----- | --------------------------------------------------------------- |
 * | 0     | version (`2`)                                                   |
 * | 1     | kind (`0` data, `1` heartbeat, `2` handoff, `3` leave)          |
 * | 2–5   | seq, uint32                                                     |
 * | 6–13  | rank, float64                                                   |
 * | 14–   | body: plaintext, or in a private room IV ‖ AES-GCM ciphertext ‖ tag |
 */
export function encodeRoomMessage (header: RoomMessageHeader, body: Uint8Array): Uint8Array {
  return concat(encodeRoomHeader(header), body)
}

export function encodeRoomHeader (h: RoomMessageHeader): Uint8Array {
  const out = new Uint8Array(ROOM_HEADER_BYTES)
  const view = new DataView(out.buffer)
  out[0] = ROOM_MESSAGE_VERSION
  out[1] = h.kind
  view.setUint32(2, h.seq)
  view.setFloat64(6, h.rank)
  return out
}

/** `undefined` for a message of another version, an unknown kind, a truncated header or a non-finite rank. */
export function decodeRoomMessage (bytes: Uint8Array): RoomMessage | undefined {
  if (bytes.byteLength < ROOM_HEADER_BYTES || bytes[0] !== ROOM_MESSAGE_VERSION) return undefined
  const kind = bytes[1]
  if (kind !== KIND_DATA && kind !== KIND_HEARTBEAT && kind !== KIND_HANDOFF && kind !== KIND_LEAVE) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const seq = view.getUint32(2)
  const rank = view.getFloat64(6)
  if (!Number.isFinite(rank)) return undefined
  if ((kind === KIND_DATA) !== (seq > 0)) return undefined
  return { kind, seq, rank, header: bytes.subarray(0, ROOM_HEADER_BYTES), body: bytes.subarray(ROOM_HEADER_BYTES) }
}

export const ROOM_MESSAGE_VERSION = 2

/** Handoff body: the new host's rank (float64) then its peer ID. */
export function encodeHandoff (to: string, rank: number): Uint8Array {
  const id = encoder.encode(to)
  const out = new Uint8Array(8 + id.byteLength)
  new DataView(out.buffer).setFloat64(0, rank)
  out.set(id, 8)
  return out
}

export function decodeHandoff (body: Uint8Array): { to: string, rank: number } | undefined {
  if (body.byteLength <= 8 || body.byteLength > 8 + 128) return undefined
  const rank = new DataView(body.buffer, body.byteOffset, body.byteLength).getFloat64(0)
  if (!Number.isFinite(rank)) return undefined
  try {
    return { rank, to: decoder.decode(body.subarray(8)) }
  } catch {
    return undefined
  }
}

/**
 * Authenticated data of a private room's sealed body: the header, the sender's peer ID and the
 * room topic, so a sealed body cannot be replayed under another header, sender or room.
 */
export function sealedContext (header: Uint8Array, sender: string, topic: string): Uint8Array {
  return concat(header, encoder.encode(`\0${sender}\0${topic}`))
}

/**
 * Frames on the room and history streams name the room (its key) or a sender before a room
 * message: a uint16 length, that many UTF-8 bytes, then the rest.
 *
 * - room frame: label = room key, rest = room message
 * - history request: label = room key, rest = empty
 * - history response frame: label = original sender's peer ID, rest = room message as it was sent
 */
export function encodeLabelled (label: string, rest: Uint8Array): Uint8Array {
  const l = encoder.encode(label)
  if (l.byteLength > 0xffff) throw new RangeError('label too long')
  const out = new Uint8Array(2 + l.byteLength + rest.byteLength)
  new DataView(out.buffer).setUint16(0, l.byteLength)
  out.set(l, 2)
  out.set(rest, 2 + l.byteLength)
  return out
}

export function decodeLabelled (frame: Uint8Array): { label: string, rest: Uint8Array } | undefined {
  if (frame.byteLength < 2) return undefined
  const len = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint16(0)
  if (frame.byteLength < 2 + len) return undefined
  try {
    return { label: decoder.decode(frame.subarray(2, 2 + len)), rest: frame.subarray(2 + len) }
  } catch {
    return undefined
  }
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a)
  out.set(b, a.byteLength)
  return out
}

/**
 * The discovery topic and the key of a room; the one place a room becomes a topic. The session
 * type is part of a room's identity, so rooms of one name and different types never mix. A
 * private room is named by its `topicId` (derived from name, type and secret) instead.
 *
 * - public: `/p2p-rooms/3/discovery/<type>/<name>`, `/p2p-rooms/3/room/<type>/<name>`
 * - private: `/p2p-rooms/3/discovery/private/<topicId>`, `/p2p-rooms/3/room/private/<topicId>`
 */
export function roomTopics (name: string, type: string, topicId?: string): { discovery: string, room: string } {
  const suffix = topicId === undefined ? `${type}/${name}` : `private/${topicId}`
  return { discovery: DISCOVERY_TOPIC_PREFIX + suffix, room: ROOM_TOPIC_PREFIX + suffix }
}
