/**
 * @packageDocumentation
 *
 * The p2p-rooms relay: a libp2p node that browsers reach over WebSockets, holding circuit-relay-v2
 * reservations for them and forwarding room *discovery* announcements. It is a control plane:
 * the circuit limits (2 min / 128 KiB per relayed connection, libp2p's defaults) leave room only
 * for WebRTC signaling, and room traffic itself never reaches it.
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
import { Counter, Gauge, Registry } from 'prom-client'
import {
  DEFAULT_INBOUND_CONNECTION_THRESHOLD, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESERVATIONS,
  DEFAULT_MAX_ROOMS, DEFAULT_ROOM_TTL_MS, RELAY_MESH_D, RELAY_MESH_D_HI, RELAY_MESH_D_LO
} from './constants.js'
import { RoomFollower } from './room-follower.js'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Libp2p } from 'libp2p'

export interface RelayInit {
  /** WebSockets listen multiaddrs. @default ['/ip4/127.0.0.1/tcp/9090/ws'] */
  listen?: string[]
  /** The relay's identity; a fresh Ed25519 key on every start when absent. @default undefined */
  privateKey?: PrivateKey
  /** Reservations held at once. @default 1024 */
  maxReservations?: number
  /** Connections held at once. @default 2048 */
  maxConnections?: number
  /** Inbound connections per second accepted from one IP. @default 100 */
  inboundConnectionThreshold?: number
  /** Rooms (discovery topics) followed at once. @default 10000 */
  maxRooms?: number
  /** How long a room with no subscriber is still followed, in ms. @default 30000 */
  roomTtl?: number
}

export type RelayServices = {
  identify: Identify
  ping: Ping
  relay: CircuitRelayService
  pubsub: GossipSub
}

/** Traffic the relay saw, in bytes, per direction. */
export interface TransferBytes {
  /** Relayed circuit data (the `/libp2p/circuit/relay/0.2.0/hop` streams). */
  circuit: { sent: number, received: number }
  /** gossipsub data (discovery announcements and subscriptions). */
  pubsub: { sent: number, received: number }
}

export interface RelayStatus {
  peerId: string
  multiaddrs: string[]
  connectedPeers: number
  /** Reservations whose peer is still connected. */
  reservations: number
  roomsFollowed: number
  uptimeMs: number
  counters: { connectionsOpened: number, connectionsClosed: number, roomsRefused: number, announcementsRejected: number }
  transfer: TransferBytes
}

export interface Relay {
  readonly peerId: string
  readonly libp2p: Libp2p<RelayServices>
  /** The Prometheus registry holding libp2p's metrics and ours. */
  readonly registry: Registry
  getMultiaddrs(): string[]
  status(): Promise<RelayStatus>
  /** Closes every connection and stops listening. Idempotent. */
  stop(): Promise<void>
}

const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
const PUBSUB_PROTOCOLS = ['/meshsub/1.0.0', '/meshsub/1.1.0', '/meshsub/1.2.0', '/meshsub/1.3.0', '/floodsub/1.0.0']

/** Creates and starts a relay. */
export async function createRelay (init: RelayInit = {}): Promise<Relay> {
  const registry = new Registry()
  const libp2p = await createLibp2p<RelayServices>({
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? DEFAULT_LISTEN },
    // browsers can only reach a server over WebSockets (or WebTransport/WebRTC-direct)
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      inboundConnectionThreshold: init.inboundConnectionThreshold ?? DEFAULT_INBOUND_CONNECTION_THRESHOLD,
      maxIncomingPendingConnections: 256
    },
    connectionMonitor: {
      // a browser on a busy machine answers pings late; dropping it would drop its reservation
      pingTimeout: { maxTimeout: 30_000 }
    },
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: true }),
    services: {
      // peers learn our protocols (hop) and their own observed address
      identify: identify(),
      ping: ping(),
      // keep libp2p's default circuit limits (2 min / 128 KiB): enough for WebRTC signaling,
      // too little to carry a room, which is what pushes peers onto direct connections
      relay: circuitRelayServer({
        reservations: { maxReservations: init.maxReservations ?? DEFAULT_MAX_RESERVATIONS }
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
        scoreParams: { IPColocationFactorWeight: 0 }
      })
    }
  })
  const log = libp2p.logger.forComponent('p2p-rooms:relay')
  const follower = new RoomFollower(libp2p.services.pubsub, {
    maxRooms: init.maxRooms ?? DEFAULT_MAX_ROOMS,
    roomTtl: init.roomTtl ?? DEFAULT_ROOM_TTL_MS,
    log
  })
  follower.start()

  const connections = new Counter({ name: 'p2p_rooms_relay_connections_total', help: 'Connections opened and closed', labelNames: ['event'], registers: [registry] })
  libp2p.addEventListener('connection:open', () => { connections.inc({ event: 'open' }) })
  libp2p.addEventListener('connection:close', () => { connections.inc({ event: 'close' }) })
  // libp2p keeps a reservation until its TTL (2 h) even after its peer disconnected, and refuses
  // circuits to such a peer anyway: count only the reservations that can be used
  const liveReservations = (): number => [...libp2p.services.relay.reservations.keys()].filter((p) => libp2p.getConnections(p).length > 0).length
  new Gauge({ name: 'p2p_rooms_relay_reservations', help: 'Circuit-relay reservations whose peer is connected', registers: [registry], collect () { this.set(liveReservations()) } })
  new Gauge({ name: 'p2p_rooms_relay_rooms_followed', help: 'Room discovery topics followed', registers: [registry], collect () { this.set(follower.size) } })

  const started = Date.now()
  let stopped = false
  return {
    peerId: libp2p.peerId.toString(),
    libp2p,
    registry,
    getMultiaddrs: () => libp2p.getMultiaddrs().map((ma) => ma.toString()),
    async status () {
      const byEvent = Object.fromEntries((await connections.get()).values.map((v) => [v.labels.event, v.value]))
      return {
        peerId: libp2p.peerId.toString(),
        multiaddrs: libp2p.getMultiaddrs().map((ma) => ma.toString()),
        connectedPeers: libp2p.getPeers().length,
        reservations: liveReservations(),
        roomsFollowed: follower.size,
        uptimeMs: Date.now() - started,
        counters: { connectionsOpened: byEvent.open ?? 0, connectionsClosed: byEvent.close ?? 0, roomsRefused: follower.refused, announcementsRejected: follower.rejected },
        transfer: await transferBytes(registry)
      }
    },
    async stop () {
      if (stopped) return
      stopped = true
      follower.stop()
      await libp2p.stop()
    }
  }
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
