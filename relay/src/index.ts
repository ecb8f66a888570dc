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
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { TypedEventEmitter } from 'main-event'
import { Registry } from 'prom-client'
import { trackCircuits } from './circuits.js'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  CONNECTION_CLOSE_TIMEOUT_MS, DEFAULT_ANNOUNCEMENTS_PER_SECOND, DEFAULT_CIRCUIT_DATA_LIMIT_BYTES, DEFAULT_CIRCUIT_DURATION_LIMIT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_INBOUND_CONNECTION_THRESHOLD, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESERVATIONS,
  DEFAULT_MAX_RESERVATIONS_PER_IP, DEFAULT_MAX_ROOMS, DEFAULT_MAX_ROOMS_PER_IP, DEFAULT_MAX_ROOMS_PER_PEER, DEFAULT_PING_INTERVAL_MS,
  DEFAULT_ROOM_TTL_MS, LIBP2P_CONNECTION_HEADROOM, MAX_OUTBOUND_BUFFER_BYTES, RELAY_MESH_D, RELAY_MESH_D_HI, RELAY_MESH_D_LO,
  MAX_CACHED_ANNOUNCEMENTS, MAX_CACHED_ANNOUNCEMENTS_PER_ROOM, ANNOUNCEMENT_CACHE_TTL_MS
} from './constants.js'
import { InvalidConfigError } from './errors.js'
import { federation, peerIdOf } from './federation.js'
import { createLimits, ipOf } from './limits.js'
import { registerRelayMetrics } from './metrics.js'
import { createRefusalCounter, ipKey } from './refusals.js'
import { RoomFollower } from './room-follower.js'
import { socketGuard } from './sockets.js'
import { certificateRenewal } from './tls.js'
import type { CircuitCounts } from './circuits.js'
import type { Federation } from './federation.js'
import type { LimitCounts } from './limits.js'
import type { ErrorSource, Refusal, RefusalReason } from './refusals.js'
import type { CertificateRenewal } from './tls.js'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Libp2p } from 'libp2p'
import type { TypedEventTarget } from 'main-event'

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

export type RelayServices = {
  identify: Identify
  ping: Ping
  relay: CircuitRelayService
  pubsub: GossipSub
  federation: Federation
  certificates: CertificateRenewal
  sockets: unknown
}

/** Traffic the relay saw, in bytes, per direction. */
export interface TransferBytes {
  /** Relayed circuit data (the `/libp2p/circuit/relay/0.2.0/hop` streams). */
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

const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
const PUBSUB_PROTOCOLS = ['/meshsub/1.0.0', '/meshsub/1.1.0', '/meshsub/1.2.0', '/meshsub/1.3.0', '/floodsub/1.0.0']

/**
 * Creates and starts a relay.
 *
 * @throws InvalidConfigError when `peers` names this relay itself
 */
export async function createRelay (init: RelayInit = {}): Promise<Relay> {
  const opts = {
    maxReservations: init.maxReservations ?? DEFAULT_MAX_RESERVATIONS,
    maxReservationsPerIp: init.maxReservationsPerIp ?? DEFAULT_MAX_RESERVATIONS_PER_IP,
    maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    handshakeTimeout: init.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    inboundConnectionThreshold: init.inboundConnectionThreshold ?? DEFAULT_INBOUND_CONNECTION_THRESHOLD,
    circuitDurationLimit: init.circuitDurationLimit ?? DEFAULT_CIRCUIT_DURATION_LIMIT_MS,
    circuitDataLimit: init.circuitDataLimit ?? DEFAULT_CIRCUIT_DATA_LIMIT_BYTES,
    maxRooms: init.maxRooms ?? DEFAULT_MAX_ROOMS,
    maxRoomsPerPeer: init.maxRoomsPerPeer ?? DEFAULT_MAX_ROOMS_PER_PEER,
    maxRoomsPerIp: init.maxRoomsPerIp ?? DEFAULT_MAX_ROOMS_PER_IP,
    announcementsPerSecond: init.announcementsPerSecond ?? DEFAULT_ANNOUNCEMENTS_PER_SECOND,
    roomTtl: init.roomTtl ?? DEFAULT_ROOM_TTL_MS,
    pingInterval: init.pingInterval ?? DEFAULT_PING_INTERVAL_MS
  }
  // what /status reports as the limits in force (the ping interval is not a limit)
  const { pingInterval: _pingInterval, ...inForce } = opts
  const peers = (init.peers ?? []).map((p) => multiaddr(p))
  if (init.privateKey !== undefined) {
    const self = peerIdFromPrivateKey(init.privateKey).toString()
    const own = peers.find((ma) => peerIdOf(ma) === self)
    if (own !== undefined) throw new InvalidConfigError(`--peer ${own.toString()} is this relay itself (peer ID ${self}, from its --identity): give the other relays' multiaddrs`)
  }
  const events = new TypedEventEmitter<RelayEvents>()
  const refusals = createRefusalCounter((refusal) => { events.safeDispatchEvent(`${refusal.kind}:refuse`, { detail: refusal }) })
  const limits = createLimits({ ...opts, refusals })
  // set once libp2p exists; the follower and federation reach each other through it
  let follower: RoomFollower | undefined
  const registry = new Registry()
  const libp2p = await createLibp2p<RelayServices>({
    // started below, once the limits and counters are wired: no connection may come in before
    start: false,
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? DEFAULT_LISTEN, announce: init.announce },
    // browsers can only reach a server over WebSockets (or WebTransport/WebRTC-direct); the
    // https options serve the /tls/ws listen addresses
    transports: [webSockets(init.tls === undefined ? {} : { https: { cert: init.tls.cert, key: init.tls.key } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // refuses over-limit connections and reservations, each with a reason (limits.ts)
    connectionGater: limits.gater,
    connectionManager: {
      // limits.ts refuses inbound connections at `maxConnections`, and says why; libp2p's own
      // checks, which refuse silently, sit past ours
      maxConnections: opts.maxConnections + LIBP2P_CONNECTION_HEADROOM,
      inboundConnectionThreshold: Number.MAX_SAFE_INTEGER,
      maxIncomingPendingConnections: 256
    },
    connectionMonitor: {
      // pings are most of an idle relay's CPU: every connection, every interval
      pingInterval: opts.pingInterval,
      // a browser on a busy machine answers pings late; dropping it would drop its reservation
      pingTimeout: { maxTimeout: 30_000 }
    },
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: true }),
    services: {
      // peers learn our protocols (hop) and their own observed address
      identify: identify(),
      ping: ping(),
      // lets `renewCertificate` reach the WebSockets listener (tls.ts)
      certificates: certificateRenewal(),
      // every TCP connection is admitted, counted and timed from its first moment (sockets.ts)
      sockets: socketGuard({
        admit: (socket) => { limits.admitSocket(socket) },
        onUnguarded: (err) => {
          refusals.error('libp2p')
          libp2p.logger.forComponent('p2p-rooms:relay').error('%s', err.message)
        }
      }),
      // circuit limits default to libp2p's (2 min / 128 KiB): enough for WebRTC signaling, too
      // little to carry a room, which is what pushes peers onto direct connections
      relay: circuitRelayServer({
        reservations: {
          maxReservations: opts.maxReservations,
          defaultDurationLimit: opts.circuitDurationLimit,
          defaultDataLimit: BigInt(opts.circuitDataLimit)
        }
      }),
      // forwards discovery announcements between room members not yet connected to each other
      pubsub: gossipsub({
        emitSelf: false,
        allowPublishToZeroTopicPeers: true,
        D: RELAY_MESH_D,
        Dlo: RELAY_MESH_D_LO,
        Dhi: RELAY_MESH_D_HI,
        // gossipsub penalises more than 10 peers per IP (P6, -5 per extra peer squared, and scores
        // outlive disconnects by an hour). Browser tabs on one host or behind one NAT share an IP,
        // and past -10 their GRAFTs are ignored: discovery would silently stop for that network.
        scoreParams: { IPColocationFactorWeight: 0 },
        // gossipsub writes to a peer's stream without waiting for it to read (its own TODO):
        // a peer that never reads gets its stream aborted instead of growing our memory
        maxOutboundBufferSize: MAX_OUTBOUND_BUFFER_BYTES
      }),
      // keeps the trusted relays connected, so rooms span relays, and publishes our relay record
      // for relays and browsers to learn us (federation.ts)
      federation: federation({
        peers,
        federationKey: init.federationKey,
        // a relay's room subscriptions are for its own members: they stop counting
        onFederate: (peerId) => { follower?.forget(peerId) }
      })
    }
  })
  const log = libp2p.logger.forComponent('p2p-rooms:relay')
  const ipOfPeer = (peerId: string): string | undefined =>
    ipKey(ipOf(libp2p.getConnections().find((c) => c.remotePeer.toString() === peerId && c.limits == null)?.remoteAddr))
  const roomFollower = follower = new RoomFollower(libp2p.services.pubsub, {
    maxRooms: opts.maxRooms,
    maxRoomsPerPeer: opts.maxRoomsPerPeer,
    maxRoomsPerIp: opts.maxRoomsPerIp,
    announcementsPerSecond: opts.announcementsPerSecond,
    roomTtl: opts.roomTtl,
    maxCachedPerRoom: MAX_CACHED_ANNOUNCEMENTS_PER_ROOM,
    maxCached: MAX_CACHED_ANNOUNCEMENTS,
    announcementTtl: ANNOUNCEMENT_CACHE_TTL_MS,
    log,
    refusals,
    ignore: (peer) => libp2p.services.federation.isRelay(peer),
    ipOf: ipOfPeer
  })
  roomFollower.start()
  libp2p.addEventListener('peer:disconnect', (evt) => { roomFollower.forget(evt.detail.toString()) })
  limits.attach(libp2p)
  const circuits = trackCircuits(libp2p, { durationLimit: opts.circuitDurationLimit })

  const connections = { opened: 0, closed: 0 }
  libp2p.addEventListener('connection:open', () => { connections.opened++ })
  libp2p.addEventListener('connection:close', () => { connections.closed++ })
  // limits.ts drops a reservation when its peer disconnects; the filter covers the moment between
  const liveReservations = (): number => [...libp2p.services.relay.reservations.keys()].filter((p) => libp2p.getConnections(p).length > 0).length
  const roomsRefused = (): number => refusals.counts.refusals['max-rooms'] + refusals.counts.refusals['rooms-per-peer'] + refusals.counts.refusals['rooms-per-ip']
  registerRelayMetrics(registry, {
    limits: limits.counts,
    refusals: refusals.counts,
    circuits: circuits.counts,
    connections,
    reservations: liveReservations,
    handshakes: () => limits.handshakes,
    roomsFollowed: () => roomFollower.size,
    roomMembers: () => roomFollower.peers,
    federatedRelays: () => libp2p.services.federation.peers().length,
    relayRecords: libp2p.services.federation.records,
    announcementsRejected: () => roomFollower.rejected
  })
  await libp2p.start()

  const started = Date.now()
  let stopped = false
  const getMultiaddrs = (): string[] => libp2p.getMultiaddrs().map((ma) => ma.toString())
  return Object.assign(events, {
    peerId: libp2p.peerId.toString(),
    libp2p,
    registry,
    getMultiaddrs,
    countRefusal: (refusal: Refusal) => { refusals.refuse(refusal) },
    countError: (source: ErrorSource) => { refusals.error(source) },
    renewCertificate: (tls: { cert: string, key: string }) => { libp2p.services.certificates.renew(tls) },
    async status (): Promise<RelayStatus> {
      return {
        peerId: libp2p.peerId.toString(),
        multiaddrs: getMultiaddrs(),
        connectedPeers: libp2p.getPeers().length,
        connections: libp2p.getConnections().length,
        reservations: liveReservations(),
        roomsFollowed: roomFollower.size,
        roomMembers: roomFollower.peers,
        handshakes: limits.handshakes,
        federatedRelays: libp2p.services.federation.peers(),
        uptimeMs: Date.now() - started,
        counters: {
          connectionsOpened: connections.opened,
          connectionsClosed: connections.closed,
          roomsRefused: roomsRefused(),
          announcementsRejected: roomFollower.rejected,
          ...limits.counts,
          refusals: { ...refusals.counts.refusals },
          errors: { ...refusals.counts.errors },
          circuits: structuredClone(circuits.counts)
        },
        limits: inForce,
        transfer: await transferBytes(registry)
      }
    },
    async stop () {
      if (stopped) return
      stopped = true
      // refuse newcomers, then close connections cleanly before the listeners go: closing a
      // WebSockets listener destroys the sockets of every connection it accepted
      limits.close()
      circuits.close()
      roomFollower.stop()
      await Promise.all(libp2p.getConnections().map(async (conn) => {
        try {
          await conn.close({ signal: AbortSignal.timeout(CONNECTION_CLOSE_TIMEOUT_MS) })
        } catch (err: any) {
          conn.abort(err)
        }
      }))
      await libp2p.stop()
    }
  })
}

/** Reads libp2p's per-protocol byte counters (`libp2p_data_transfer_bytes_total`). */
async function transferBytes (registry: Registry): Promise<TransferBytes> {
  const out: TransferBytes = { circuit: { sent: 0, received: 0 }, pubsub: { sent: 0, received: 0 } }
  const metric = registry.getSingleMetric('libp2p_data_transfer_bytes_total')
  if (metric === undefined) return out
  for (const { labels, value } of (await metric.get()).values) {
    const [protocol, direction] = String(labels.protocol).split(' ') as [string, 'sent' | 'received']
    if (direction !== 'sent' && direction !== 'received') continue
    if (protocol === HOP_PROTOCOL) out.circuit[direction] += value
    else if (PUBSUB_PROTOCOLS.includes(protocol)) out.pubsub[direction] += value
  }
  return out
}
