/**
 * @packageDocumentation
 *
 * The p2p-rooms relay: a libp2p node that browsers reach over WebSockets, holding circuit-relay-v2
 * reservations for them and forwarding room *discovery* announcements. It is a control plane:
 * the circuit limits (2 min / 128 KiB per relayed connection, libp2p's defaults) leave room only
 * for WebRTC signaling, and room traffic itself never reaches it. Every limit an operator needs
 * on a public relay is an option below; a refusal is an event (`connection:refuse`,
 * `reservation:refuse`) and a metric, never a crash.
 *
 * @example
 *
 * ```ts
 * import './polyfill.js'
 * import { createRelay } from 'p2p-rooms-relay'
 *
 * const relay = await createRelay({ listen: ['/ip4/127.0.0.1/tcp/9090/ws'] })
 * console.log(relay.getMultiaddrs())
 * await relay.stop()
 * ```
 */
import './polyfill.js'
import { RelayServer } from './relay.js'
import type { CircuitCounts } from './circuits.js'
import type { LimitCounts } from './limits.js'
import type { RelayServices } from './node-config.js'
import type { ErrorSource, Refusal, RefusalReason } from './refusals.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { TypedEventTarget } from 'main-event'
import type { Registry } from 'prom-client'

export interface RelayInit {
  /** WebSockets listen multiaddrs (`/tls/ws` ones need `tls`). @default ['/ip4/127.0.0.1/tcp/9090/ws'] */
  listen?: string[]
  /**
   * Multiaddrs the relay advertises (in identify, reservations and `getMultiaddrs()`) instead of
   * its listen addresses, e.g. `/dns4/relay.example.com/tcp/443/tls/ws` behind a reverse proxy.
   * @default undefined
   */
  announce?: string[]
  /** The relay's identity; a fresh Ed25519 key on every start when absent. @default undefined */
  privateKey?: PrivateKey
  /** PEM certificate (chain) and private key served on `/tls/ws` listen addresses. @default undefined */
  tls?: { cert: string, key: string }
  /** Reservations held at once (one per peer; a second request from a peer refreshes its own). @default 1024 */
  maxReservations?: number
  /** Reservations held at once for peers connected from one IP address. @default 128 */
  maxReservationsPerIp?: number
  /**
   * Connections held at once, counting inbound TCP connections still in their handshake; inbound
   * connections beyond are closed at once. @default 2048
   */
  maxConnections?: number
  /**
   * How long an inbound TCP connection may take to become a libp2p connection (first byte,
   * WebSocket upgrade, Noise, yamux), in ms; it is closed then. @default 10000
   */
  handshakeTimeout?: number
  /** Inbound connections per second accepted from one IP. @default 100 */
  inboundConnectionThreshold?: number
  /** Lifetime of one relayed (circuit) connection, in ms. @default 120000 */
  circuitDurationLimit?: number
  /** Bytes one relayed (circuit) connection may carry, both directions together. @default 131072 */
  circuitDataLimit?: number
  /** Rooms (discovery topics) followed at once. @default 10000 */
  maxRooms?: number
  /** Rooms one peer can make the relay follow (its discovery subscriptions counted). @default 64 */
  maxRoomsPerPeer?: number
  /** Rooms followed for the peers of one IP address together (IPv6: one /64). @default 1024 */
  maxRoomsPerIp?: number
  /** Announcements one peer may send per second, with a burst of `maxRoomsPerPeer`. @default 10 */
  announcementsPerSecond?: number
  /** How long a room with no subscriber is still followed, in ms. @default 30000 */
  roomTtl?: number
  /** How often each connection is pinged to find dead peers, in ms. @default 30000 */
  pingInterval?: number
  /**
   * Multiaddrs of other relays to federate with, each ending in `/p2p/<peer ID>`: each is
   * trusted, and so is the federation key its relay record declares. Throws
   * `InvalidConfigError` when one is this relay itself. @default []
   */
  peers?: string[]
  /**
   * The federation key shared by the relays of one operator: relays whose records prove it are
   * federated with, and browser nodes given one of them trust the others. @default undefined
   */
  federationKey?: PrivateKey
}

/**
 * Events of a relay.
 *
 * @example
 *
 * ```ts
 * relay.addEventListener('reservation:refuse', (evt) => {
 *   console.info('refused a reservation: %s', evt.detail.reason)
 * })
 * ```
 */
export interface RelayEvents {
  /** An inbound connection was refused or closed (`detail.reason`: a limit, a timeout, or shutting down). */
  'connection:refuse': CustomEvent<Refusal>
  /** A circuit-relay reservation was refused (`detail.reason`: a limit, or shutting down). */
  'reservation:refuse': CustomEvent<Refusal>
  /** A peer's subscription to a room was not followed (`detail.reason`: `max-rooms` or a quota). */
  'room:refuse': CustomEvent<Refusal>
  /** A peer's announcement was dropped (`detail.reason`: `announcement-rate`). */
  'announcement:refuse': CustomEvent<Refusal>
  /** An HTTP request or connection was refused (`detail.reason`, counted through `countRefusal`). */
  'http:refuse': CustomEvent<Refusal>
}

export type { ErrorSource, Refusal, RefusalKind, RefusalReason } from './refusals.js'

export type { RelayServices } from './node-config.js'

/** Traffic the relay saw, in bytes, per direction. */
export interface TransferBytes {
  /** Relayed circuit data (the `RELAY_V2_HOP_CODEC` streams, `/libp2p/circuit/relay/0.2.0/hop`). */
  circuit: { sent: number, received: number }
  /** gossipsub data (discovery announcements and subscriptions). */
  pubsub: { sent: number, received: number }
}

/** What `GET /status` answers: counts only, never a room name or topic (rooms can be private). */
export interface RelayStatus {
  peerId: string
  /** The advertised multiaddrs (the announce addresses when given). */
  multiaddrs: string[]
  connectedPeers: number
  /** Connections open now (a peer may have several). */
  connections: number
  /** Reservations whose peer is still connected. */
  reservations: number
  roomsFollowed: number
  /** Peers counted in at least one followed room. */
  roomMembers: number
  /** Inbound TCP connections still in their handshake. */
  handshakes: number
  /** Peer IDs of the relays federated with and connected now. */
  federatedRelays: string[]
  uptimeMs: number
  counters: {
    connectionsOpened: number
    connectionsClosed: number
    /** Subscriptions not followed: the `max-rooms`, `rooms-per-peer` and `rooms-per-ip` refusals. */
    roomsRefused: number
    announcementsRejected: number
    /** Connections closed for lacking a gossipsub stream each way (`p2p_rooms_relay_pubsub_stream_losses_total`). */
    pubsubStreamLosses: number
  } & LimitCounts & {
    /** Refusals by reason (refusals.ts), every reason listed. */
    refusals: Record<RefusalReason, number>
    /** Errors the relay survived, by source. */
    errors: Record<ErrorSource, number>
    circuits: CircuitCounts
  }
  /** The limits in force. */
  limits: Required<Pick<RelayInit, 'maxReservations' | 'maxReservationsPerIp' | 'maxConnections' | 'handshakeTimeout' | 'inboundConnectionThreshold' | 'circuitDurationLimit' | 'circuitDataLimit' | 'maxRooms' | 'maxRoomsPerPeer' | 'maxRoomsPerIp' | 'announcementsPerSecond' | 'roomTtl'>>
  transfer: TransferBytes
}

export interface Relay extends TypedEventTarget<RelayEvents> {
  readonly peerId: string
  readonly libp2p: Libp2p<RelayServices>
  /** The Prometheus registry holding libp2p's metrics and ours. */
  readonly registry: Registry
  /**
   * Counts a refusal made outside the relay's libp2p node (the HTTP endpoint's) like the relay's
   * own: in `p2p_rooms_relay_refusals_total{reason}`, `/status` and a `<kind>:refuse` event.
   */
  countRefusal(refusal: Refusal): void
  /** Counts an error the process survived (the caller logs it): `p2p_rooms_relay_errors_total{source}`. */
  countError(source: ErrorSource): void
  getMultiaddrs(): string[]
  /** Serves new TLS connections on `/tls/ws` listen addresses with this certificate (PEM). */
  renewCertificate(tls: { cert: string, key: string }): void
  status(): Promise<RelayStatus>
  /**
   * Refuses new connections, closes every connection (aborting those that do not close within
   * 2 s), then stops listening. Idempotent.
   */
  stop(): Promise<void>
}

/**
 * Creates and starts a relay.
 *
 * @throws InvalidConfigError when `peers` names this relay itself
 */
export async function createRelay (init: RelayInit = {}): Promise<Relay> {
  const relay = new RelayServer(init)
  await relay.start()
  return relay
}
