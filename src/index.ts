/**
 * @packageDocumentation
 *
 * Browser rooms over libp2p. Nodes meet in a room through a circuit-relay-v2 relay reached over
 * WebSockets, then open a direct WebRTC connection to every room peer; room messages (gossipsub)
 * travel only over those direct connections, so the relay introduces peers and steps aside.
 *
 * @example
 *
 * ```ts
 * import { createRoomNode } from 'p2p-rooms'
 *
 * const node = await createRoomNode({ relays: ['/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3Koo…'] })
 * const room = await node.joinRoom('lobby')
 * room.addEventListener('peer:join', (e) => { console.log('direct to', e.detail.peerId) })
 * room.addEventListener('message', (e) => { console.log(e.detail.from, new TextDecoder().decode(e.detail.data)) })
 * await room.publish('hello')
 * await room.leave()
 * await node.stop()
 * ```
 */
import {
  DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_DIAL_ATTEMPTS, DEFAULT_DIAL_BACKOFF_MS, DEFAULT_DIAL_TAKEOVER_MS,
  DEFAULT_DIAL_TIMEOUT_MS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PEER_TTL_MS, DEFAULT_RESERVATION_TIMEOUT_MS
} from './constants.js'
import { startRoomNode } from './room-node.js'
import type { RoomNodeServices } from './node-config.js'
import type { PeerPath } from './paths.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { TypedEventTarget } from 'main-event'

export { InvalidRoomNameError, MessageTooLargeError, NoRelaysError, ReservationTimeoutError, RoomClosedError } from './errors.js'
export type { PeerPath, RoomNodeServices }

export interface RoomNodeInit {
  /** Relay multiaddrs, each ending in `/p2p/<relay peer ID>`; at least one is required. */
  relays?: string[]
  /** The node's identity; a fresh Ed25519 key per node when absent. @default undefined */
  privateKey?: PrivateKey
  /** STUN/TURN servers for WebRTC (`RTCIceServer[]`); none works on one host or one LAN. @default [] */
  iceServers?: RTCIceServer[]
  /** `'relay'` forces WebRTC through TURN. @default 'all' */
  iceTransportPolicy?: RTCIceTransportPolicy
  /** How often a member re-announces itself through the relay, in ms. @default 10000 */
  announceInterval?: number
  /** A member neither re-announced nor directly connected for this long is dropped, in ms. @default 35000 */
  peerTtl?: number
  /** How long `createRoomNode` waits for the first relay reservation, in ms. @default 15000 */
  reservationTimeout?: number
  /** Attempts to open a direct WebRTC connection to a room peer before giving up. @default 6 */
  dialAttempts?: number
  /** Delay before the second direct dial attempt, doubled each further attempt (with jitter), in ms. @default 250 */
  dialBackoff?: number
  /** Upper bound of one direct dial attempt, in ms. @default 20000 */
  dialTimeout?: number
  /** How long the peer with the larger peer ID waits for the other to dial before dialing itself, in ms. @default 4000 */
  dialTakeover?: number
  /** Largest payload `publish` accepts, in bytes. @default 65536 */
  maxMessageBytes?: number
}

export type ResolvedRoomNodeOptions = Required<Omit<RoomNodeInit, 'privateKey' | 'iceTransportPolicy'>> & Pick<RoomNodeInit, 'iceTransportPolicy'>

/** A peer in a room and how it is reached right now. */
export interface RoomPeer {
  peerId: string
  path: PeerPath
}

/** Why a peer left: it said so, the relay no longer reaches it, or it went silent past `peerTtl`. */
export type LeaveReason = 'left' | 'unreachable' | 'timeout'

export interface RoomMessage {
  /** Peer ID of the sender, from the signed gossipsub envelope. */
  from: string
  data: Uint8Array
  /** The room's name. */
  topic: string
}

export interface RoomPeerStats {
  dialAttempts: number
  dialSuccesses: number
  dialFailures: number
  /** `name: message` of the last failed direct dial. */
  lastError?: string
}

export interface PublishResult {
  /** Peer IDs the message was sent to directly. */
  recipients: string[]
}

export interface RoomEvents {
  /**
   * A peer was seen in the room through the relay; it is not reachable yet (`path: 'relayed'`).
   *
   * @example room.addEventListener('peer:discover', (e) => { show(e.detail.peerId, 'connecting') })
   */
  'peer:discover': CustomEvent<RoomPeer>
  /**
   * A peer is directly connected and messages published from now on reach it.
   *
   * @example room.addEventListener('peer:join', (e) => { show(e.detail.peerId, e.detail.path) })
   */
  'peer:join': CustomEvent<RoomPeer>
  /**
   * A joined peer's path changed: its direct connection dropped and is being healed
   * (`'relayed'`), or came back (`'direct'`). A first connection is reported by `peer:join`.
   *
   * @example room.addEventListener('peer:update', (e) => { show(e.detail.peerId, e.detail.path) })
   */
  'peer:update': CustomEvent<RoomPeer>
  /**
   * A peer left the room.
   *
   * @example room.addEventListener('peer:leave', (e) => { hide(e.detail.peerId, e.detail.reason) })
   */
  'peer:leave': CustomEvent<{ peerId: string, reason: LeaveReason }>
  /**
   * A room message from another peer, delivered once. A sender does not receive its own.
   *
   * @example room.addEventListener('message', (e) => { print(e.detail.from, e.detail.data) })
   */
  'message': CustomEvent<RoomMessage>
}

export interface Room extends TypedEventTarget<RoomEvents> {
  readonly name: string
  /** Largest payload `publish` accepts, in bytes (the node's `maxMessageBytes`). */
  readonly maxMessageBytes: number
  /** Every member known: `'direct'` once our WebRTC connection to it is open, else `'relayed'`. */
  peers(): RoomPeer[]
  /** Direct-dial counters per peer ID. */
  stats(): Record<string, RoomPeerStats>
  /**
   * Sends to every joined peer over direct connections.
   *
   * @throws MessageTooLargeError when the payload exceeds `maxMessageBytes`
   * @throws RoomClosedError after `leave()`
   */
  publish(data: Uint8Array | string): Promise<PublishResult>
  /** Leaves the room; peers get `peer:leave` with reason `'left'`. Idempotent. */
  leave(): Promise<void>
}

export interface RoomNode {
  /** This node's peer ID. */
  readonly peerId: string
  /** The underlying libp2p node, for inspection. */
  readonly libp2p: Libp2p<RoomNodeServices>
  /** Time from `createRoomNode` to the first relay reservation, in ms. */
  readonly reservationMs: number
  /**
   * Joins a room by name; joining the same name again returns the same `Room`.
   *
   * @throws InvalidRoomNameError for an empty name or one over 256 characters
   * @throws RoomClosedError after `stop()`
   */
  joinRoom(name: string): Promise<Room>
  /** The rooms currently joined. */
  getRooms(): Room[]
  /** Leaves every room and stops libp2p. Idempotent. */
  stop(): Promise<void>
}

/**
 * Creates a room node and resolves once it holds a reservation on at least one relay.
 *
 * @throws NoRelaysError when `relays` is empty
 * @throws ReservationTimeoutError when no relay grants a reservation within `reservationTimeout`
 */
export async function createRoomNode (init: RoomNodeInit = {}): Promise<RoomNode> {
  return startRoomNode({
    relays: init.relays ?? [],
    iceServers: init.iceServers ?? [],
    iceTransportPolicy: init.iceTransportPolicy,
    announceInterval: init.announceInterval ?? DEFAULT_ANNOUNCE_INTERVAL_MS,
    peerTtl: init.peerTtl ?? DEFAULT_PEER_TTL_MS,
    reservationTimeout: init.reservationTimeout ?? DEFAULT_RESERVATION_TIMEOUT_MS,
    dialAttempts: init.dialAttempts ?? DEFAULT_DIAL_ATTEMPTS,
    dialBackoff: init.dialBackoff ?? DEFAULT_DIAL_BACKOFF_MS,
    dialTimeout: init.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS,
    dialTakeover: init.dialTakeover ?? DEFAULT_DIAL_TAKEOVER_MS,
    maxMessageBytes: init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  }, init.privateKey)
}
