/**
 * The libp2p configuration of a relay. Every transport, limit and service says why it is here.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { webSockets } from '@libp2p/websockets'
import { roomsGossipsub } from 'p2p-rooms/gossipsub'
import {
  DEFAULT_LISTEN, LIBP2P_CONNECTION_HEADROOM, MAX_INCOMING_PENDING_CONNECTIONS, MAX_OUTBOUND_BUFFER_BYTES, PING_MAX_TIMEOUT_MS, RELAY_MESH_D,
  RELAY_MESH_D_HI, RELAY_MESH_D_LO
} from './constants.js'
import { federation } from './federation.js'
import { socketGuard } from './sockets.js'
import { certificateRenewal } from './tls.js'
import type { Federation } from './federation.js'
import type { Limits } from './limits.js'
import type { CertificateRenewal } from './tls.js'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2pOptions } from 'libp2p'
import type { Registry } from 'prom-client'

export type RelayServices = {
  identify: Identify
  ping: Ping
  relay: CircuitRelayService
  pubsub: GossipSub
  federation: Federation
  certificates: CertificateRenewal
  sockets: unknown
}

export interface RelayNodeConfigInit {
  listen?: string[]
  announce?: string[]
  privateKey?: PrivateKey
  tls?: { cert: string, key: string }
  maxReservations: number
  maxConnections: number
  circuitDurationLimit: number
  circuitDataLimit: number
  pingInterval: number
  /** `--peer` relays, parsed. */
  peers: Multiaddr[]
  federationKey?: PrivateKey
  /** The relay's admission control (limits.ts): gater and socket admission. */
  limits: Limits
  /** Where libp2p's metrics go, beside the relay's own. */
  registry: Registry
  /** A relay joined the federation (federation.ts). */
  onFederate(peerId: string): void
  /** A socket escaped the socket guard (sockets.ts). */
  onUnguarded(err: Error): void
}

export function relayNodeConfig (init: RelayNodeConfigInit): Libp2pOptions<RelayServices> {
  const { limits } = init
  return {
    // started by the relay once its limits and counters are wired: no connection may come in before
    start: false,
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? DEFAULT_LISTEN, announce: init.announce },
    // browsers can only reach a server over WebSockets (or WebTransport/WebRTC-direct); the
    // https options serve the /tls/ws listen addresses
    transports: [webSockets(init.tls === undefined ? {} : { https: { cert: init.tls.cert, key: init.tls.key } })],
    // the encryption and multiplexer every browser node speaks (src/node-config.ts)
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // refuses over-limit connections and reservations, each with a reason (limits.ts)
    connectionGater: limits.gater,
    connectionManager: {
      // limits.ts refuses inbound connections at `maxConnections`, and says why; libp2p's own
      // checks, which refuse silently, sit past ours
      maxConnections: init.maxConnections + LIBP2P_CONNECTION_HEADROOM,
      inboundConnectionThreshold: Number.MAX_SAFE_INTEGER,
      maxIncomingPendingConnections: MAX_INCOMING_PENDING_CONNECTIONS
    },
    connectionMonitor: {
      // pings are most of an idle relay's CPU: every connection, every interval
      pingInterval: init.pingInterval,
      // a browser on a busy machine answers pings late; dropping it would drop its reservation
      pingTimeout: { maxTimeout: PING_MAX_TIMEOUT_MS }
    },
    // `/metrics`: libp2p's own metrics in the relay's Prometheus registry
    metrics: prometheusMetrics({ registry: init.registry, collectDefaultMetrics: true }),
    services: {
      // peers learn our protocols (hop) and their own observed address
      identify: identify(),
      // answers pings: browser nodes check their relay connections with one when back online (src/relays.ts)
      ping: ping(),
      // lets `renewCertificate` reach the WebSockets listener (tls.ts)
      certificates: certificateRenewal(),
      // every TCP connection is admitted, counted and timed from its first moment (sockets.ts)
      sockets: socketGuard({
        admit: (socket) => { limits.admitSocket(socket) },
        onUnguarded: init.onUnguarded
      }),
      // circuit limits default to libp2p's (2 min / 128 KiB): enough for WebRTC signaling, too
      // little to carry a room, which is what pushes peers onto direct connections
      relay: circuitRelayServer({
        reservations: {
          maxReservations: init.maxReservations,
          defaultDurationLimit: init.circuitDurationLimit,
          defaultDataLimit: BigInt(init.circuitDataLimit)
        }
      }),
      // forwards discovery announcements between room members not yet connected to each other
      pubsub: roomsGossipsub({
        // the relay publishes nothing it needs back (its relay record, federation.ts)
        emitSelf: false,
        // its relay record is published whether or not another relay listens yet
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
        peers: init.peers,
        federationKey: init.federationKey,
        // a relay's room subscriptions are for its own members: they stop counting
        onFederate: init.onFederate
      })
    }
  }
}
