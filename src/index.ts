/**
 * @packageDocumentation
 *
 * Browser rooms over libp2p. Nodes meet in a room through a circuit-relay-v2 relay reached over
 * WebSockets, then open a direct WebRTC connection to every room peer; room messages travel only
 * over those direct connections, straight to each member, so the relay introduces peers and steps aside.
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
  DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_DIAL_ATTEMPTS, DEFAULT_DIAL_BACKOFF_MS, DEFAULT_DIAL_TAKEOVER_MS, DEFAULT_DIAL_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_IDENTITY, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RELAYS, DEFAULT_PEER_TTL_MS,
  DEFAULT_PRESENCE_TIMEOUT_MS, DEFAULT_RESERVATION_TIMEOUT_MS,
  // files (issue 10, src/files/)
  DEFAULT_FILE_RESUME_WINDOW_MS, DEFAULT_FILE_STORAGE, DEFAULT_KEPT_FILE_TTL_MS, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PENDING_FILES
} from './constants.js'
import { startRoomNode } from './room-node.js'
import type { IDENTITY_KINDS, SESSION_TYPES } from './constants.js'
import type { FileStorage } from './files/service.js'
import type { RoomFileEvents, RoomFiles } from './files/types.js'
// media (issue 11, src/media/)
import type { MediaPeerStats, RoomMedia, RoomMediaEvents } from './media/types.js'
import type { RoomNodeServices } from './node-config.js'
import type { PeerPath } from './paths.js'
import type { DropReason, HistoryRefusal } from './room-messages.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { TypedEventTarget } from 'main-event'

export {
  FileCancelledError, FileIntegrityError, FileRejectedError, FileStorageError, FileTooLargeError, FileUnavailableError,
  IceServersFetchError, InvalidIdentityError, InvalidRoomNameError, InvalidRoomOptionsError, MessageTooLargeError,
  NoRelaysError, NotHostError, PeerNotFoundError, RateLimitedError, RelayDialError, RoomClosedError, SessionTypeError,
  TooManyFilesError
} from './errors.js'
export type { RelayDialFailure } from './errors.js'
export { IDENTITY_KINDS, MAX_ROOM_NAME_LENGTH, SESSION_TYPES } from './constants.js'
export type { DropReason, HistoryRefusal } from './room-messages.js'
export type { FileDownload, FileOffer, FileProgress, FileTransfer, FileTransferEvents, FileTransferState, IncomingFile, RoomFileEvents, RoomFiles, SendFileOptions, SharedFile } from './files/types.js'
export type { FileStorage, PeerPath, RoomNodeServices }
// media (issue 11, src/media/)
export { InvalidMediaError } from './errors.js'
export type { AddStreamOptions, MediaPeerStats, RoomMedia, RoomMediaEvents, RoomStreamDetail } from './media/types.js'

// Private rooms: a secret that cannot be guessed, for apps that can share a link (see private-room.ts).
export { createRoomSecret } from './private-room.js'

export interface RoomNodeInit {
  /** Relay multiaddrs, each ending in `/p2p/<relay peer ID>`; at least one is required. */
  relays?: string[]
  /** The node's key, e.g. from `generateKeyPair('Ed25519')`; when given, `identity` is ignored. @default undefined */
  privateKey?: PrivateKey
  /**
   * Which key the node uses without `privateKey`: `'tab'` one per browser tab, kept across its
   * reloads (sessionStorage); `'persistent'` one per browser profile, kept across restarts
   * (IndexedDB); `'ephemeral'` a fresh one. A stored key another tab is using is never shared:
   * the node falls back to a fresh per-tab key, and `node.identity` says which it got. @default 'tab'
   */
  identity?: IdentityKind
  /** STUN/TURN servers for WebRTC (`RTCIceServer[]`); none works on one host or one LAN. @default [] */
  iceServers?: RTCIceServer[]
  /**
   * URL of a relay's `/ice-servers` (its `--http` endpoint), answering `{ iceServers }` with freshly
   * minted TURN credentials; `createRoomNode` fetches it once and uses those servers after
   * `iceServers`, and throws `IceServersFetchError` if it cannot. @default undefined
   */
  iceServersUrl?: string
  /** `'relay'` forces WebRTC through TURN. @default 'all' */
  iceTransportPolicy?: RTCIceTransportPolicy
  /** How often a member re-announces itself through the relay, in ms. @default 10000 */
  announceInterval?: number
  /** A member neither re-announced nor directly connected for this long is dropped, in ms. @default 35000 */
  peerTtl?: number
  /** How long `createRoomNode` waits for a connection to one of `relays`, in ms. @default 15000 */
  reservationTimeout?: number
  /** Attempts to open a direct WebRTC connection to a room peer before giving up. @default 6 */
  dialAttempts?: number
  /** Delay before the second direct dial attempt, doubled each further attempt (with jitter), in ms. @default 250 */
  dialBackoff?: number
  /** Upper bound of one direct dial attempt, in ms. @default 20000 */
  dialTimeout?: number
  /**
   * Of two peers, the one whose node started later dials the other; this is how long the other
   * waits for that dial before dialing itself, in ms. @default 5000
   */
  dialTakeover?: number
  /** Largest payload `publish` accepts, in bytes; a room's own `maxMessageBytes` overrides it. @default 65536 */
  maxMessageBytes?: number
  /** How often a member sends a heartbeat to the room's members, in ms. @default 2000 */
  heartbeatInterval?: number
  /** A joined member not heard from for this long leaves with reason `'timeout'`, in ms. @default 8000 */
  presenceTimeout?: number
  /**
   * Relay reservations held at once, each on a different relay: the configured relays and those
   * learned from them (relays federate and publish their records), so a node keeps being
   * reachable, and reserves on another known relay, when one goes away. @default 2
   */
  maxRelays?: number
  /**
   * Largest file this node accepts from `sendFile` or fetches from `shareFile`, in bytes; larger
   * offers are refused (the sender's `done` rejects with `FileTooLargeError`) and cost nothing. @default 4294967296
   */
  maxFileBytes?: number
  /**
   * Files sent to us that a room holds as offers (`file` events not yet accepted or rejected);
   * beyond, the sender's `done` rejects with `TooManyFilesError`. @default 32
   */
  maxPendingFiles?: number
  /**
   * How long the verified chunks of a file that did not finish are kept (for a resume) once no
   * page uses them, in ms; delivered files are removed once their page is gone. @default 86400000
   */
  keptFileTtl?: number
  /**
   * How long a sender keeps a transfer open for a receiver that left the room (a reload), so that
   * it resumes when it rejoins, in ms. @default 60000
   */
  fileResumeWindow?: number
  /**
   * Where received chunks are kept: `'auto'` is the Origin Private File System (written in place
   * by a worker), else IndexedDB, else memory (Node); `'opfs'`, `'indexeddb'` and `'memory'`
   * choose one (falling back in that order if it is missing). @default 'auto'
   */
  fileStorage?: FileStorage
}

/** Where a node's key is kept: per browser tab, per browser profile, or nowhere. */
export type IdentityKind = typeof IDENTITY_KINDS[number]

/** The key a node ended up with. */
export interface RoomNodeIdentity {
  /**
   * Where its key is kept: `'tab'` in this tab's sessionStorage, `'persistent'` in IndexedDB,
   * `'ephemeral'` nowhere (no storage or no Web Locks here, e.g. Node or a non-secure origin),
   * `'supplied'` by the caller (`privateKey`).
   */
  kind: IdentityKind | 'supplied'
  /** The peer ID of that key. */
  peerId: string
  /** `true` when the key was read back from storage: the same peer ID as before. */
  restored: boolean
}

export type ResolvedRoomNodeOptions = Required<Omit<RoomNodeInit, 'privateKey' | 'iceTransportPolicy' | 'iceServersUrl'>> & Pick<RoomNodeInit, 'iceTransportPolicy' | 'iceServersUrl'>

/** A peer in a room and how it is reached right now. */
export interface RoomPeer {
  peerId: string
  path: PeerPath
}

/**
 * Why a peer left: it said so (`'left'`), the relay no longer reaches it (`'unreachable'`), or it
 * went silent: no heartbeat for `presenceTimeout` once joined, no announcement for `peerTtl` before.
 */
export type LeaveReason = 'left' | 'unreachable' | 'timeout'

/**
 * The rules of a room, declared at join and enforced by every receiver:
 * - `'broadcast'`: every member publishes to every member.
 * - `'one-way'`: only the host publishes; data from anyone else is dropped (`dropped.notHost`).
 * - `'pairwise'`: messages are addressed with `send(peerId, data)` and travel over a direct
 *   stream to that peer alone; `publish` is refused.
 *
 * The type is part of the room's identity: the same name with two types is two rooms.
 */
export type SessionType = typeof SESSION_TYPES[number]

export interface JoinRoomInit {
  /** The room's session type. @default 'broadcast' */
  type?: SessionType
  /**
   * Makes the room private: its topics are derived from name, type and secret (PBKDF2-HMAC-SHA-256
   * at 600,000 iterations, salted with name and type, then HKDF-SHA-256), so the relay and
   * non-members never learn the name, and every message is sealed with AES-GCM under a key of its
   * sender's session derived from the secret. A peer with another secret is in another room: it
   * neither sees the members nor reads or injects messages. Whoever sees the topic ID can still
   * test guesses offline, each costing those 600,000 iterations: use `createRoomSecret()` (128
   * random bits) when members can share a link. `joinRoom` takes about 0.1 s longer for the
   * derivation (103 ms in Chromium on this project's machine, README). @default undefined
   */
  secret?: string | Uint8Array
  /** Largest payload `publish`/`send` accepts, and receivers accept, in bytes; the node's `maxMessageBytes` when absent. */
  maxMessageBytes?: number
  /** Messages a member may send per second (token bucket refill), enforced by sender and receivers. @default 50 */
  messagesPerSecond?: number
  /** Messages a member may send in a burst (token bucket capacity). @default 100 */
  burst?: number
  /** Recent messages kept for late joiners (not in pairwise rooms); 0 keeps none; at most 10000. @default 100 */
  historySize?: number
  /** Backlog requests this member serves per requesting peer and minute (a token bucket); more are refused and counted. @default 10 */
  historyRequestsPerMinute?: number
}

export interface RoomMessage {
  /** Peer ID of the sender, from the signed gossipsub envelope or the direct stream. */
  from: string
  data: Uint8Array
  /** The room's name. */
  topic: string
  /** The sender's sequence number: 1, 2, 3… per sender (per pair in a pairwise room). */
  seq: number
  /** Part of the backlog a member served us on joining, delivered before live messages. */
  history: boolean
}

export interface RoomPeerStats {
  /** How we reach it now. */
  path: PeerPath
  /** Whether it is a member: reachable directly and heard from. */
  joined: boolean
  dialAttempts: number
  dialSuccesses: number
  dialFailures: number
  /** `name: message` of the last failed direct dial. */
  lastError?: string
  /** Last round-trip time over the direct connection (libp2p's connection monitor), in ms. */
  rttMs?: number
  /**
   * The local ICE candidate type of the direct connection's selected candidate pair: `'host'`
   * (same host or LAN), `'srflx'` or `'prflx'` (through a NAT), `'relay'` (through TURN).
   */
  candidateType?: RTCIceCandidateType
  /** Time since its last heartbeat or message, in ms. */
  lastHeardMs?: number
  /** When each phase of meeting this peer was first reached, in ms since we joined the room. */
  timeline: MeetingTimeline
  /** Media to and from it (`addStream`, `stream` events), once a media connection to it exists. */
  media?: MediaPeerStats
}

/**
 * The phases of meeting a peer, in the order they normally happen:
 * - `discovered`: learned through the relay (an announcement) or a subscription
 * - `dialStarted`: we started dialing its `/p2p-circuit/webrtc` address (only the dialing side)
 * - `relayed`: the relayed circuit to it is open (SDP and ICE travel over it)
 * - `signaled`: the SDP offer/answer exchange is done (only the dialing side)
 * - `connected`: the direct WebRTC connection is open (ICE and DTLS done)
 * - `streamReady`: our room stream to it is open and our hello went out: a publish reaches it
 * - `heard`: its first valid room message (its hello) arrived
 * - `joined`: `peer:join`
 *
 * A phase reached before we joined the room (a connection another room opened) reads 0.
 */
export type MeetingPhase = 'discovered' | 'dialStarted' | 'relayed' | 'signaled' | 'connected' | 'streamReady' | 'heard' | 'joined'

/** Per phase, when it was first reached, in ms since the room was joined. */
export type MeetingTimeline = Partial<Record<MeetingPhase, number>>

export interface RoomStats {
  type: SessionType
  /** The host's peer ID. */
  host: string
  messages: {
    /** Data messages sent. */
    sent: number
    /** Data messages delivered to us (live and backlog). */
    received: number
    /** Messages dropped on receipt, by reason (see `DropReason`). */
    dropped: Record<DropReason, number>
    /** Sequence numbers never received. */
    gaps: number
  }
  /** Backlog requests this member served to late joiners, and those it refused, by reason. */
  history: {
    served: number
    refused: Record<HistoryRefusal, number>
    /** Responses aborted because the requester did not read them within 10 s. */
    writeTimeouts: number
  }
  /** Per member. */
  peers: Record<string, RoomPeerStats>
}

export interface PublishResult {
  /** Peer IDs the message was sent to directly. */
  recipients: string[]
}

export interface RoomEvents extends RoomFileEvents, RoomMediaEvents {
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
   * (`'relayed'`), or came back (`'direct'`, once our first frame went out on the new connection,
   * so that `peers()` says `'direct'` too and a publish reaches it). A first connection is
   * reported by `peer:join`.
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
  message: CustomEvent<RoomMessage>
  /**
   * The room's host changed: the host left or went silent, handed off, or a member with an
   * earlier rank joined. Members that see the same members report the same host.
   *
   * @example room.addEventListener('host:change', (e) => { crown(e.detail.host) })
   */
  'host:change': CustomEvent<{ host: string, previous: string }>
  /**
   * Messages `first`…`last` from `from` will never be delivered: lost, dropped by a limit, or
   * waited for longer than the reorder window (1 s). Adjacent missing numbers are merged into one
   * event: a flood held to the rate limit gives at most one event per message delivered between
   * its drops, not one per dropped message.
   *
   * @example room.addEventListener('gap', (e) => { warn(e.detail.from, e.detail.last - e.detail.first + 1) })
   */
  gap: CustomEvent<{ from: string, first: number, last: number }>
}

export interface Room extends TypedEventTarget<RoomEvents>, RoomFiles, RoomMedia {
  readonly name: string
  readonly type: SessionType
  /** Whether it was joined with a `secret`. */
  readonly private: boolean
  /**
   * The host's peer ID: the member with the lowest rank (join time, lowered by a handoff), ties
   * broken by the smaller peer ID. Ourselves while we know of nobody else. A newcomer's rank
   * cannot undercut the members settled in the room; and while we are joining and a member we
   * discovered is still unheard, `host` names another member, never us (see host.ts).
   */
  readonly host: string
  /** Largest payload `publish` accepts, in bytes. */
  readonly maxMessageBytes: number
  /**
   * Every member known: `'direct'` once it joined (`peer:join`: a `publish` reaches it over our
   * direct connection), else `'relayed'` (found through the relay, connecting, or healing).
   */
  peers(): RoomPeer[]
  /** Message counters and, per peer, dial counters, path and RTT. */
  stats(): RoomStats
  /**
   * Sends to every joined peer over direct connections.
   *
   * @throws MessageTooLargeError when the payload exceeds `maxMessageBytes`
   * @throws RateLimitedError when over `messagesPerSecond`/`burst` (`retryAfterMs` says when to retry)
   * @throws NotHostError in a `'one-way'` room when we are not the host; a newcomer that has not heard the
   * members it discovered first waits until it has (at most 30 s), then publishes or throws
   * @throws SessionTypeError in a `'pairwise'` room
   * @throws RoomClosedError after `leave()`
   */
  publish(data: Uint8Array | string): Promise<PublishResult>
  /**
   * Sends to one member of a `'pairwise'` room over a direct stream; nobody else receives it.
   *
   * @throws PeerNotFoundError when `peerId` is not a joined member
   * @throws SessionTypeError in any other room type
   * @throws MessageTooLargeError, RateLimitedError, RoomClosedError as `publish`
   */
  send(peerId: string, data: Uint8Array | string): Promise<void>
  /**
   * Hands the host role to a joined member; only the host may.
   *
   * @throws NotHostError when we are not the host
   * @throws PeerNotFoundError when `peerId` is not a joined member
   */
  handOffHost(peerId: string): Promise<void>
  /** Leaves the room; peers get `peer:leave` with reason `'left'`. Idempotent. */
  leave(): Promise<void>
}

/** A relay the node knows: configured, or learned from the federation of relays. */
export interface RelayInfo {
  peerId: string
  /** The multiaddr we reach it at (or would dial). */
  multiaddr: string
  /** Whether a connection to it is open. */
  connected: boolean
  /** Whether we hold a reservation on it: room peers can reach us through it. */
  reserved: boolean
}

/**
 * Events of `node.relays` (named so as not to be confused with the relay package's own
 * `RelayEvents`, which a relay operator listens to).
 */
export interface RelaySetEvents {
  /**
   * A relay we were not configured with was learned from a record its federation vouches for
   * (relay-records.ts); the node reserves on it if it needs one.
   *
   * @example node.relays.addEventListener('relay:discover', (e) => { show(e.detail.multiaddr, 'known') })
   */
  'relay:discover': CustomEvent<RelayInfo>
  /**
   * A reservation on a relay was made: room peers can reach us through it from now on.
   *
   * @example node.relays.addEventListener('relay:connect', (e) => { show(e.detail.multiaddr, 'reserved') })
   */
  'relay:connect': CustomEvent<RelayInfo>
  /**
   * A reservation is gone: the relay went away or our connection to it dropped. Rooms and direct
   * connections stay; the node reserves on another known relay.
   *
   * @example node.relays.addEventListener('relay:disconnect', (e) => { show(e.detail.multiaddr, 'lost') })
   */
  'relay:disconnect': CustomEvent<RelayInfo>
}

/** @deprecated Renamed `RelaySetEvents` (the relay package exports another `RelayEvents`). */
export type RelayEvents = RelaySetEvents

/** The relays of a node (`node.relays`). */
export interface Relays extends TypedEventTarget<RelaySetEvents> {
  /** Every relay known, configured or learned, and whether we are connected to and reserved on it. */
  list(): RelayInfo[]
}

export interface RoomNode {
  /** This node's peer ID. */
  readonly peerId: string
  /** Which key it uses and where that key is kept; it stays this page's until `stop()`. */
  readonly identity: RoomNodeIdentity
  /** The underlying libp2p node, for inspection. */
  readonly libp2p: Libp2p<RoomNodeServices>
  /**
   * Time from `createRoomNode` to the first relay reservation, in ms; `undefined` until then
   * (`createRoomNode` resolves once a relay is connected, and reserves in the background).
   */
  readonly reservationMs: number | undefined
  /** The relays this node knows and holds reservations on, with `relay:*` events. */
  readonly relays: Relays
  /**
   * Joins a room by name; joining the same name, type and secret again returns the same `Room`.
   *
   * @throws InvalidRoomNameError for an empty name or one over 256 characters
   * @throws InvalidRoomOptionsError for an unknown type, an empty secret or a non-positive limit
   * @throws RoomClosedError after `stop()`
   */
  joinRoom(name: string, init?: JoinRoomInit): Promise<Room>
  /** The rooms currently joined. */
  getRooms(): Room[]
  /** Leaves every room and stops libp2p. Idempotent. */
  stop(): Promise<void>
}

/**
 * Creates a room node and resolves once it is connected to at least one relay: rooms joined from
 * then on learn their members and dial them at once, and announce us as soon as the node's relay
 * reservation is made (`node.relays` emits `relay:connect`), a few round trips later.
 *
 * @throws NoRelaysError when `relays` is empty
 * @throws RelayDialError when no relay can be reached within `reservationTimeout`; its `reason`
 * says why: `'bad-address'`, `'unreachable'`, `'wrong-peer'`, `'refused'` or `'timeout'`
 * @throws IceServersFetchError when `iceServersUrl` is given and does not answer `{ iceServers }`
 * @throws InvalidIdentityError when `identity` is not `'tab'`, `'persistent'` or `'ephemeral'`
 */
export async function createRoomNode (init: RoomNodeInit = {}): Promise<RoomNode> {
  return startRoomNode({
    relays: init.relays ?? [],
    iceServers: init.iceServers ?? [],
    iceServersUrl: init.iceServersUrl,
    identity: init.identity ?? DEFAULT_IDENTITY,
    iceTransportPolicy: init.iceTransportPolicy,
    announceInterval: init.announceInterval ?? DEFAULT_ANNOUNCE_INTERVAL_MS,
    peerTtl: init.peerTtl ?? DEFAULT_PEER_TTL_MS,
    reservationTimeout: init.reservationTimeout ?? DEFAULT_RESERVATION_TIMEOUT_MS,
    dialAttempts: init.dialAttempts ?? DEFAULT_DIAL_ATTEMPTS,
    dialBackoff: init.dialBackoff ?? DEFAULT_DIAL_BACKOFF_MS,
    dialTimeout: init.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS,
    dialTakeover: init.dialTakeover ?? DEFAULT_DIAL_TAKEOVER_MS,
    maxMessageBytes: init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    heartbeatInterval: init.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    presenceTimeout: init.presenceTimeout ?? DEFAULT_PRESENCE_TIMEOUT_MS,
    maxRelays: init.maxRelays ?? DEFAULT_MAX_RELAYS,
    maxFileBytes: init.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    maxPendingFiles: init.maxPendingFiles ?? DEFAULT_MAX_PENDING_FILES,
    keptFileTtl: init.keptFileTtl ?? DEFAULT_KEPT_FILE_TTL_MS,
    fileResumeWindow: init.fileResumeWindow ?? DEFAULT_FILE_RESUME_WINDOW_MS,
    fileStorage: init.fileStorage ?? DEFAULT_FILE_STORAGE
  }, init.privateKey)
}
