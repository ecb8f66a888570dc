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
/** Presence: "I am here, with this rank"; body: the ranks it admitted newcomers at (see `encodeHeartbeat`). */
export const KIND_HEARTBEAT = 1
/** The host hands its role over: body is the new host's rank (float64) and peer ID (UTF-8). */
export const KIND_HANDOFF = 2
/** The sender leaves the room (or its page goes away); no body. */
export const KIND_LEAVE = 3

export type RoomMessageKind = typeof KIND_DATA | typeof KIND_HEARTBEAT | typeof KIND_HANDOFF | typeof KIND_LEAVE

/**
 * Version of the binary room message (its first byte). 3 added the flags byte and the sender's
 * incarnation; a receiver drops a message of any other version as `'malformed'`.
 */
export const ROOM_MESSAGE_VERSION = 3

/** Bytes before a room message's body. */
export const ROOM_HEADER_BYTES = 19

/** Flag: the sender is settled in the room, past its joining phase (see host.ts). */
export const FLAG_SETTLED = 0x01

/**
 * Flag: the sender kept no message for late joiners (its backlog of the room was empty) when it
 * wrote this frame, this one aside. A joiner whose first member says so has no backlog to ask for
 * and delivers live messages at once (room/backlog.ts).
 */
export const FLAG_NO_BACKLOG = 0x02

export interface RoomMessageHeader {
  kind: RoomMessageKind
  /** The sender's sequence number for data (1, 2, 3… per sender session and room, or per pair in a pairwise room); 0 for control messages. */
  seq: number
  /**
   * The sender's session in this room: a random uint32 drawn each time it joins. A member that
   * reloads keeps its peer ID but starts a new incarnation, so receivers know its numbering
   * restarted at 1 and its rank must be admitted again.
   */
  incarnation: number
  /** The sender's host rank (lowest rank is the host), normally its join time in ms since the epoch. */
  rank: number
  /** The sender is settled in the room (`FLAG_SETTLED`): it ranks every member it hears after the members already there. */
  settled: boolean
  /** The sender's backlog was empty, this message aside (`FLAG_NO_BACKLOG`); `false` when not sent. */
  noBacklog?: boolean
}

export interface RoomMessage extends RoomMessageHeader {
  /** The header bytes as sent: authenticated data of a private room's body. */
  header: Uint8Array
  /** Plaintext body, or AES-GCM sealed body in a private room. */
  body: Uint8Array
}

/**
 * Room message, version 3 (room topic, pairwise frames, history frames): big-endian
 *
 * | bytes | field                                                           |
 * | ----- | --------------------------------------------------------------- |
 * | 0     | version (`3`)                                                   |
 * | 1     | kind (`0` data, `1` heartbeat, `2` handoff, `3` leave)          |
 * | 2     | flags (bit 0: settled; bit 1: no backlog; others 0, ignored)    |
 * | 3–6   | seq, uint32 (0 for control messages, > 0 for data)         |
 * | 7–10  | incarnation, uint32                                             |
 * | 11–18 | rank, float64, finite                                           |
 * | 19–   | body: plaintext, or in a private room IV ‖ AES-GCM ciphertext ‖ tag |
 */
export function encodeRoomMessage (header: RoomMessageHeader, body: Uint8Array): Uint8Array {
  return concat(encodeRoomHeader(header), body)
}

export function encodeRoomHeader (h: RoomMessageHeader): Uint8Array {
  const out = new Uint8Array(ROOM_HEADER_BYTES)
  const view = new DataView(out.buffer)
  out[0] = ROOM_MESSAGE_VERSION
  out[1] = h.kind
  out[2] = (h.settled ? FLAG_SETTLED : 0) | (h.noBacklog === true ? FLAG_NO_BACKLOG : 0)
  view.setUint32(3, h.seq)
  view.setUint32(7, h.incarnation)
  view.setFloat64(11, h.rank)
  return out
}

/**
 * `undefined` for a message of another version, an unknown kind, a truncated header, a
 * non-finite rank, or a seq that does not fit its kind. Never throws; the body is a view of
 * `bytes`, not a copy.
 */
export function decodeRoomMessage (bytes: Uint8Array): RoomMessage | undefined {
  if (bytes.byteLength < ROOM_HEADER_BYTES || bytes[0] !== ROOM_MESSAGE_VERSION) return undefined
  const kind = bytes[1]
  if (kind !== KIND_DATA && kind !== KIND_HEARTBEAT && kind !== KIND_HANDOFF && kind !== KIND_LEAVE) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const seq = view.getUint32(3)
  const incarnation = view.getUint32(7)
  const rank = view.getFloat64(11)
  if (!Number.isFinite(rank)) return undefined
  if ((kind === KIND_DATA) !== (seq > 0)) return undefined
  return { kind, seq, incarnation, rank, settled: (bytes[2] & FLAG_SETTLED) !== 0, noBacklog: (bytes[2] & FLAG_NO_BACKLOG) !== 0, header: bytes.subarray(0, ROOM_HEADER_BYTES), body: bytes.subarray(ROOM_HEADER_BYTES) }
}

/** A rank a settled member admitted a newcomer at, below which that newcomer cannot rank (host.ts). */
export interface Admission {
  peerId: string
  rank: number
}

/** Longest peer ID an admission or a handoff may name, in UTF-8 bytes (an Ed25519 or RSA peer ID is far shorter). */
const MAX_PEER_ID_BYTES = 128

/** Most admissions a heartbeat carries. */
export const MAX_ADMISSIONS = 32

/**
 * Heartbeat body: up to `MAX_ADMISSIONS` admissions, each a uint8 peer ID length, the peer ID
 * (UTF-8), and the rank (float64, big-endian). Empty when the sender admitted no newcomer below
 * its claim lately. Throws `RangeError` for too many admissions or a peer ID that is too long.
 */
export function encodeHeartbeat (admissions: Admission[]): Uint8Array {
  if (admissions.length > MAX_ADMISSIONS) throw new RangeError(`at most ${MAX_ADMISSIONS} admissions`)
  const ids = admissions.map((a) => encoder.encode(a.peerId))
  const out = new Uint8Array(ids.reduce((n, id) => n + 1 + id.byteLength + 8, 0))
  const view = new DataView(out.buffer)
  let at = 0
  admissions.forEach((a, i) => {
    const id = ids[i]
    if (id.byteLength === 0 || id.byteLength > MAX_PEER_ID_BYTES) throw new RangeError('peer ID length')
    out[at] = id.byteLength
    out.set(id, at + 1)
    view.setFloat64(at + 1 + id.byteLength, a.rank)
    at += 1 + id.byteLength + 8
  })
  return out
}

/** The admissions of a heartbeat body, or `undefined` if it is not one. Never throws. */
export function decodeHeartbeat (body: Uint8Array): Admission[] | undefined {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  const out: Admission[] = []
  let at = 0
  while (at < body.byteLength) {
    if (out.length === MAX_ADMISSIONS) return undefined
    const len = body[at]
    if (len === 0 || len > MAX_PEER_ID_BYTES || at + 1 + len + 8 > body.byteLength) return undefined
    let peerId: string
    try {
      peerId = decoder.decode(body.subarray(at + 1, at + 1 + len))
    } catch {
      return undefined
    }
    const rank = view.getFloat64(at + 1 + len)
    if (!Number.isFinite(rank)) return undefined
    out.push({ peerId, rank })
    at += 1 + len + 8
  }
  return out
}

/** Handoff body: the new host's rank (float64) then its peer ID. */
export function encodeHandoff (to: string, rank: number): Uint8Array {
  const id = encoder.encode(to)
  const out = new Uint8Array(8 + id.byteLength)
  new DataView(out.buffer).setFloat64(0, rank)
  out.set(id, 8)
  return out
}

/** `undefined` for a body that is too short or long, a non-finite rank, or a peer ID that is not UTF-8. Never throws. */
export function decodeHandoff (body: Uint8Array): { to: string, rank: number } | undefined {
  if (body.byteLength <= 8 || body.byteLength > 8 + MAX_PEER_ID_BYTES) return undefined
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
 * - pairwise frame: label = room topic, rest = room message
 * - history request: label = room topic, rest = the most messages the requester takes, uint32
 *   (see `encodeHistoryRequest`)
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

/** `undefined` for a frame shorter than its label's length says, or a label that is not UTF-8. Never throws; `rest` is a view of `frame`. */
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

/**
 * A history request for room `topic` (its data topic) from a requester that takes at most
 * `maxMessages` messages (its `historySize`): the responder sends no more than that, newest last.
 */
export function encodeHistoryRequest (topic: string, maxMessages: number): Uint8Array {
  const rest = new Uint8Array(4)
  new DataView(rest.buffer).setUint32(0, Math.max(0, Math.min(0xffffffff, Math.floor(maxMessages))))
  return encodeLabelled(topic, rest)
}

/** `{ topic, maxMessages }` of a history request, or `undefined` if it is not one. Never throws. */
export function decodeHistoryRequest (frame: Uint8Array): { topic: string, maxMessages: number } | undefined {
  const labelled = decodeLabelled(frame)
  if (labelled === undefined || labelled.rest.byteLength !== 4) return undefined
  return { topic: labelled.label, maxMessages: new DataView(labelled.rest.buffer, labelled.rest.byteOffset, 4).getUint32(0) }
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
