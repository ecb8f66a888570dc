/**
 * The libp2p configuration of a room node. Every transport, address and service says why it is here.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webRTC } from '@libp2p/webrtc'
import { INBOUND_CONNECTION_THRESHOLD, WEBRTC_MAX_MESSAGE_BYTES } from './constants.js'
import { roomsGossipsub } from './gossipsub.js'
import { noiseCrypto } from './noise-crypto.js'
import { relayRecords } from './relay-discovery.js'
import { relayReserver } from './reserve.js'
import { preconnectedWebSockets } from './ws-preconnect.js'
import type { RelayReserver } from './reserve.js'
import type { PreconnectedSockets } from './ws-preconnect.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { PeerDiscovery, PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Libp2pOptions } from 'libp2p'

export type RoomNodeServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  relayDiscovery: PeerDiscovery
  reserver: RelayReserver
}

export interface NodeConfigInit {
  privateKey?: PrivateKey
  iceServers: RTCIceServer[]
  iceTransportPolicy?: RTCIceTransportPolicy
  dialTimeout: number
  /** reservations to hold: one `/p2p-circuit` listen address each */
  maxRelays: number
  /** relay sockets opened before the node was made, for the WebSocket transport to take (ws-preconnect.ts) */
  preconnected: PreconnectedSockets
}

export function roomNodeConfig (init: NodeConfigInit): Libp2pOptions<RoomNodeServices> {
  // relay records and the relays the transport reserves on are checked against one trust (relay-discovery.ts)
  const relays = relayRecords()
  return {
    privateKey: init.privateKey,
    addresses: {
      listen: [
        // one reservation per `/p2p-circuit` address, each on a different relay, so peers can
        // reach us through any of them and a relay going away leaves us reachable
        ...Array.from({ length: Math.max(1, init.maxRelays) }, () => '/p2p-circuit'),
        // accept WebRTC connections whose SDP/ICE exchange runs over that relayed connection
        '/webrtc'
      ]
    },
    transports: [
      // the only way a browser reaches the relay; it takes the socket `createRoomNode` opened to
      // the relay while this node was being made (ws-preconnect.ts)
      preconnectedWebSockets(init.preconnected),
      // the direct, unlimited peer-to-peer path that carries room traffic
      webRTC({
        // data channel messages of 256 KiB instead of @libp2p/webrtc's 16 KiB: a file chunk is one message
        // (the figures are beside the constant)
        dataChannel: { maxMessageSize: WEBRTC_MAX_MESSAGE_BYTES },
        rtcConfiguration: {
          iceServers: init.iceServers,
          iceTransportPolicy: init.iceTransportPolicy
        }
      }),
      // reservations on relays, and the limited circuit used to signal WebRTC
      circuitRelayTransport({ discoveryFilter: relays.reservationFilter })
    ],
    // in browsers, X25519 public keys by the Montgomery ladder: no table building on the way to the relay (noise-crypto.ts)
    connectionEncrypters: [noise({ crypto: noiseCrypto() })],
    streamMuxers: [yamux()],
    connectionGater: {
      // browsers deny private and ws:// addresses by default; a local relay needs both, and
      // we only ever dial addresses the relay or a room peer gave us
      denyDialMultiaddr: () => false
    },
    connectionManager: {
      // a room of tabs on one host all connect from one IP
      inboundConnectionThreshold: INBOUND_CONNECTION_THRESHOLD,
      // a WebRTC dial is one address doing SDP, ICE and DTLS: on a busy CPU it outlasts the 6 s default
      addressDialTimeout: init.dialTimeout,
      dialTimeout: init.dialTimeout
    },
    connectionMonitor: {
      // WebRTC has its own liveness check (ICE consent freshness, RFC 7675) and the room layer
      // heals dropped connections: a slow ping on a saturated CPU must not abort a healthy mesh
      abortConnectionOnPingFailure: false
    },
    services: {
      // answers every peer that asks, but runs by itself on no connection: the relay set runs it
      // on relay connections only, where the circuit transport and gossipsub need it. Over a
      // circuit or a direct WebRTC connection it cost each side a stream, a signed peer record
      // and peer store updates per peer met, on the path of every meeting (relays.ts)
      identify: identify({ runOnLimitedConnection: false, runOnConnectionOpen: false }),
      // the connection monitor and room RTT measurements
      ping: ping(),
      // discovery announcements and relay records, exchanged with relays only: identify runs on
      // relay connections only, and gossipsub opens its streams to a peer once identify has run
      pubsub: roomsGossipsub({
        // a room does not hand a sender its own messages back
        emitSelf: false,
        // discovery announcements are periodic; a lone first member must not get an error
        allowPublishToZeroTopicPeers: true,
        // room traffic never runs over a relay's limited circuit
        runOnLimitedConnection: false,
        // every room peer we dialed through a circuit shows the relay's IP in its remote address:
        // gossipsub's per-IP penalty (P6, past 10 peers) would push a large room out of our mesh
        scoreParams: { IPColocationFactorWeight: 0 }
      }),
      // the federation's relays publish their peer records on a topic; we only listen, to learn
      // relays to reserve on when ours go away (relay-discovery.ts; relays.ts dials them)
      relayDiscovery: relays,
      // reserves on a relay the moment we are connected to it, not once identify is done (reserve.ts)
      reserver: relayReserver()
    }
  }
}
