/**
 * Federation: relays that know each other stay connected, so a room whose members sit on
 * different relays still works. Relays that follow the same room discovery topic mesh on it in
 * gossipsub, so an announcement made on relay A reaches the members on relay B, who dial its
 * `/p2p-circuit/webrtc` address (reaching relay A over WebSockets) to go direct.
 *
 * Relays know each other from `--peer` (dialed, kept and re-dialed), and from libp2p's pubsub peer
 * discovery on `RELAYS_TOPIC`: every relay publishes its own peer record (public key and
 * multiaddrs) there, relays dial every relay they learn of, and browser nodes listen to learn the
 * relays they can fail over to. Nothing but libp2p peer records travels on that topic.
 */
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { KEEP_ALIVE } from '@libp2p/interface'
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery'
import { multiaddr } from '@multiformats/multiaddr'
import { RELAYS_TOPIC } from 'p2p-rooms/constants'
import { WebSocket as NodeWebSocket } from 'ws'
import type { GossipSub, TopicValidatorFn } from '@libp2p/gossipsub'
import type { AbortOptions, ComponentLogger, Connection, IdentifyResult, Libp2pEvents, Logger, PeerDiscovery, PeerId, PeerInfo, PeerStore, Startable } from '@libp2p/interface'
import type { PubSubPeerDiscoveryComponents } from '@libp2p/pubsub-peer-discovery'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { TypedEventTarget } from 'main-event'

/**
 * Tags a federated relay. The `keep-alive` prefix makes libp2p's reconnect queue re-dial it when
 * the connection drops (5 attempts, 1 s doubling), and the value (the highest there is) makes it
 * the last connection the connection manager would prune.
 */
export const FEDERATION_TAG = `${KEEP_ALIVE}-p2p-rooms-federation`
const FEDERATION_TAG_VALUE = 100

/** The protocol only relays serve: how a connected peer is recognised as a relay. */
const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/** How often a relay publishes its peer record on `RELAYS_TOPIC`, in ms (pubsub peer discovery's default). */
const RECORD_INTERVAL_MS = 10_000

/** Largest peer record accepted on `RELAYS_TOPIC`, in bytes (a key and a handful of multiaddrs). */
const MAX_RECORD_BYTES = 4096

/**
 * Relays federated with at once. Every relay connects to every relay it learns of (a room's
 * announcements only cross relays that both follow it), so this bounds a federation's size.
 */
const MAX_FEDERATED_RELAYS = 64

/** First wait before re-dialing a `--peer` relay that could not be reached, doubled up to the next, in ms. */
const REDIAL_MIN_MS = 1_000
const REDIAL_MAX_MS = 60_000

export interface FederationInit {
  /** Multiaddrs of relays to federate with (`--peer`), each ending in `/p2p/<peer ID>`. */
  peers: string[]
}

/** The relay's side of the federation, `relay.libp2p.services.federation`. */
export interface Federation {
  /** Peer IDs of the relays we are federated with and connected to right now. */
  peers(): string[]
  /** Whether `peerId` is a relay we federate with (its room subscriptions are for its own members). */
  isRelay(peerId: string): boolean
}

export interface FederationComponents extends PubSubPeerDiscoveryComponents {
  pubsub: GossipSub
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: {
    openConnection(peer: PeerId | Multiaddr | Multiaddr[], options?: AbortOptions): Promise<Connection>
    getConnections(peerId?: PeerId): Connection[]
  }
}

/** The federation as a libp2p service (`services: { federation: federation({ peers }) }`). */
export function federation (init: FederationInit): (components: FederationComponents) => Federation {
  return (components) => new RelayFederation(components, init)
}

class RelayFederation implements Federation, Startable {
  private readonly components: FederationComponents
  private readonly configured: Multiaddr[]
  private readonly discovery: PeerDiscovery & Partial<Startable>
  private readonly log: Logger
  /** relays tagged as federated, by peer ID */
  private readonly federated = new Set<string>()
  /** discovered relays whose dial failed: when to try again, by peer ID */
  private readonly failed = new Map<string, { failures: number, retryAt: number }>()
  /** `--peer` relays being dialed, by multiaddr */
  private readonly redialing = new Set<string>()
  private controller = new AbortController()
  private started = false

  constructor (components: FederationComponents, init: FederationInit) {
    this.components = components
    this.configured = init.peers.map((p) => multiaddr(p))
    this.log = components.logger.forComponent('p2p-rooms:federation')
    this.discovery = pubsubPeerDiscovery({ topics: [RELAYS_TOPIC], interval: RECORD_INTERVAL_MS })(components)
    this.onRecord = this.onRecord.bind(this)
    this.onIdentify = this.onIdentify.bind(this)
    this.onReconnectFailure = this.onReconnectFailure.bind(this)
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    ensureWebSocket()
    this.controller = new AbortController()
    this.started = true
  }

  async afterStart (): Promise<void> {
    const { pubsub, events } = this.components
    pubsub.topicValidators.set(RELAYS_TOPIC, validateRecord)
    this.discovery.addEventListener('peer', this.onRecord)
    events.addEventListener('peer:identify', this.onIdentify)
    events.addEventListener('peer:reconnect-failure', this.onReconnectFailure)
    await this.discovery.start?.()
    await this.discovery.afterStart?.()
    for (const ma of this.configured) void this.keepDialing(ma)
  }

  async beforeStop (): Promise<void> {
    await this.discovery.beforeStop?.()
  }

  async stop (): Promise<void> {
    this.started = false
    this.controller.abort()
    const { pubsub, events } = this.components
    this.discovery.removeEventListener('peer', this.onRecord)
    events.removeEventListener('peer:identify', this.onIdentify)
    events.removeEventListener('peer:reconnect-failure', this.onReconnectFailure)
    pubsub.topicValidators.delete(RELAYS_TOPIC)
    await this.discovery.stop?.()
    this.federated.clear()
    this.failed.clear()
  }

  peers (): string[] {
    const connected = new Set(this.components.connectionManager.getConnections().map((c) => c.remotePeer.toString()))
    return [...this.federated].filter((id) => connected.has(id))
  }

  isRelay (peerId: string): boolean {
    return this.federated.has(peerId)
  }

  /** A relay's record arrived on `RELAYS_TOPIC`: connect to it, identify tags it once it proves to be a relay. */
  private onRecord (evt: CustomEvent<PeerInfo>): void {
    const { id, multiaddrs } = evt.detail
    const peer = id.toString()
    if (!this.started || this.federated.has(peer) || this.components.connectionManager.getConnections(id).length > 0) return
    if (this.federated.size >= MAX_FEDERATED_RELAYS) return
    const failed = this.failed.get(peer)
    if (failed !== undefined && failed.retryAt > Date.now()) return
    // a relay is reached over WebSockets; a circuit address would be one relay reached through another
    const addrs = multiaddrs.filter((ma) => !ma.toString().includes('/p2p-circuit') && /\/wss?(\/|$)/.test(ma.toString()))
    if (addrs.length === 0) return
    this.components.connectionManager.openConnection(addrs.map((ma) => withPeerId(ma, peer)), { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(REDIAL_MAX_MS)]) })
      .then(() => { this.failed.delete(peer) })
      .catch((err) => {
        if (!this.started) return
        const failures = (failed?.failures ?? 0) + 1
        this.failed.set(peer, { failures, retryAt: Date.now() + backoff(failures) })
        this.log('could not reach relay %s learned from %s - %e', peer, RELAYS_TOPIC, err)
      })
  }

  /** Any connected peer serving the hop protocol is a relay: federate with it, whoever dialed. */
  private onIdentify (evt: CustomEvent<IdentifyResult>): void {
    const { peerId, protocols } = evt.detail
    const peer = peerId.toString()
    if (!this.started || this.federated.has(peer) || !protocols.includes(HOP_PROTOCOL)) return
    if (this.federated.size >= MAX_FEDERATED_RELAYS) {
      this.log('not federating with %s: %d relays already', peer, MAX_FEDERATED_RELAYS)
      return
    }
    this.federated.add(peer)
    this.components.peerStore.merge(peerId, { tags: { [FEDERATION_TAG]: { value: FEDERATION_TAG_VALUE } } })
      .then(() => { this.log('federated with relay %s', peer) })
      .catch((err) => { this.log.error('could not tag relay %s - %e', peer, err) })
  }

  /**
   * libp2p's reconnect queue gave up on a federated relay and dropped its tag. A discovered relay
   * is learned again from its next record if it comes back; a `--peer` relay is re-dialed forever.
   */
  private onReconnectFailure (evt: CustomEvent<PeerId>): void {
    const peer = evt.detail.toString()
    if (!this.federated.delete(peer)) return
    this.log('lost relay %s', peer)
    for (const ma of this.configured) {
      if (ma.getComponents().some((c) => c.name === 'p2p' && c.value === peer)) void this.keepDialing(ma)
    }
  }

  /** Dials a `--peer` relay until it answers, with a doubling backoff; identify then tags it. */
  private async keepDialing (ma: Multiaddr): Promise<void> {
    const key = ma.toString()
    if (this.redialing.has(key)) return
    this.redialing.add(key)
    const signal = this.controller.signal
    try {
      for (let attempt = 1; !signal.aborted; attempt++) {
        try {
          await this.components.connectionManager.openConnection(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(REDIAL_MAX_MS)]) })
          return
        } catch (err) {
          if (signal.aborted) return
          const wait = backoff(attempt)
          this.log('relay %s unreachable (attempt %d), next try in %d ms - %e', key, attempt, wait, err)
          await sleep(wait, signal)
        }
      }
    } finally {
      this.redialing.delete(key)
    }
  }
}

/**
 * Records are accepted only from the relay they describe: gossipsub signs each message with its
 * sender's key, so this stops anyone from publishing addresses in another relay's name (and
 * lowers the score of whoever forwards such a record).
 */
const validateRecord: TopicValidatorFn = (_peer, msg) => {
  if (msg.type !== 'signed' || msg.data.byteLength > MAX_RECORD_BYTES) return TopicValidatorResult.Reject
  return startsWith(msg.data, publicKeyField(publicKeyToProtobuf(msg.key))) ? TopicValidatorResult.Accept : TopicValidatorResult.Reject
}

/**
 * The record is pubsub peer discovery's `Peer { bytes publicKey = 1; repeated bytes addrs = 2; }`,
 * encoded key first: its first field is tag 0x0a, the key's varint length, then the key.
 */
function publicKeyField (key: Uint8Array): Uint8Array {
  const length: number[] = []
  for (let n = key.byteLength; ; n >>>= 7) {
    if (n < 0x80) { length.push(n); break }
    length.push((n & 0x7f) | 0x80)
  }
  return Uint8Array.from([0x0a, ...length, ...key])
}

function startsWith (data: Uint8Array, prefix: Uint8Array): boolean {
  return data.byteLength >= prefix.byteLength && prefix.every((b, i) => data[i] === b)
}

function withPeerId (ma: Multiaddr, peer: string): Multiaddr {
  return ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${peer}`)
}

function backoff (attempt: number): number {
  return Math.min(REDIAL_MIN_MS * 2 ** (attempt - 1), REDIAL_MAX_MS)
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}

/**
 * A relay dials its peers over WebSockets, which @libp2p/websockets does with the global
 * `WebSocket`. Node 20 keeps that behind `--experimental-websocket`, a flag `npx p2p-rooms-relay`
 * does not pass, so `ws` (the library the relay's WebSockets listener already runs on) stands in.
 */
function ensureWebSocket (): void {
  if (typeof globalThis.WebSocket === 'undefined') {
    (globalThis as { WebSocket?: unknown }).WebSocket = NodeWebSocket
  }
}
