/**
 * Federation: relays that trust each other stay connected, so a room whose members sit on
 * different relays still works. Relays that follow the same room discovery topic mesh on it in
 * gossipsub, so an announcement made on relay A reaches the members on relay B, who dial its
 * `/p2p-circuit/webrtc` address (reaching relay A over WebSockets) to go direct.
 *
 * Who is a relay is the operator's decision, never a client's claim. A relay federates with:
 *
 * - its `--peer` relays (dialed, kept and re-dialed);
 * - relays whose relay record carries a proof from a federation key it trusts: its own
 *   `--federation-key`, or the key a `--peer` relay's record declares (that relay vouches for
 *   its federation).
 *
 * Every relay publishes its relay record (src/relay-records.ts) on `RELAYS_TOPIC` every 10 s and
 * whenever a peer subscribes to the topic; relays and browser nodes check each record with the
 * same `RelayTrust`, and dial only the WebSockets addresses of records they trust. A client
 * listing the hop protocol in identify, or publishing a signed record of its own, is not a relay:
 * before, 64 such clients filled every federation slot, and a record listing `ws://10.…`
 * addresses made the relay dial them. Memory stays bounded whatever clients publish: federated
 * relays (`MAX_FEDERATED_RELAYS`), remembered dial failures and trusted keys are capped.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { KEEP_ALIVE } from '@libp2p/interface'
import { backoffDelay, sleep } from 'p2p-rooms/backoff'
import { RELAYS_TOPIC } from 'p2p-rooms/constants'
import { encodeRelayRecord, federationProof, peerIdOf, relayRecordOf, RelayTrust } from 'p2p-rooms/relay-records'
import { WebSocket as NodeWebSocket } from 'ws'
import {
  FEDERATION_REDIAL_MAX_MS, FEDERATION_REDIAL_MIN_MS, FEDERATION_TAG_VALUE, MAX_FEDERATED_RELAYS, MAX_REMEMBERED_RELAY_FAILURES,
  RECORD_INTERVAL_MS, RECORD_MIN_INTERVAL_MS
} from './constants.js'
import type { GossipSub, TopicValidatorFn } from '@libp2p/gossipsub'
import type { AbortOptions, ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, PeerStore, PrivateKey, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { VerifiedRelayRecord } from 'p2p-rooms/relay-records'
import type { TypedEventTarget } from 'main-event'

/**
 * Tags a federated relay. The `keep-alive` prefix makes libp2p's reconnect queue re-dial it when
 * the connection drops (5 attempts, 1 s doubling), and the value (`FEDERATION_TAG_VALUE`) makes
 * it the last connection the connection manager would prune.
 */
export const FEDERATION_TAG = `${KEEP_ALIVE}-p2p-rooms-federation`

export interface FederationInit {
  /** Multiaddrs of relays to federate with (`--peer`), each ending in `/p2p/<peer ID>`. */
  peers: Multiaddr[]
  /** The federation key (`--federation-key`): relays proving membership with it are trusted. */
  federationKey?: PrivateKey
  /** Called when a peer is taken into the federation (its room subscriptions stop counting). */
  onFederate?: (peerId: string) => void
}

/** The relay's side of the federation, `relay.libp2p.services.federation`. */
export interface Federation {
  /** Peer IDs of the relays we are federated with and connected to right now. */
  peers(): string[]
  /** Whether `peerId` is a relay we federate with (its room subscriptions are for its own members). */
  isRelay(peerId: string): boolean
  /** The federation keys this relay trusts (`toString()`), its own first. */
  federations(): string[]
  /** Relay records seen on `RELAYS_TOPIC`, by verdict (relay-records.ts). */
  readonly records: RecordCounts
}

/** Relay records by verdict: accepted (trusted), ignored (valid but untrusted), rejected (malformed, forged). */
export interface RecordCounts {
  accepted: number
  ignored: number
  rejected: number
}

export interface FederationComponents {
  peerId: PeerId
  logger: ComponentLogger
  pubsub: GossipSub
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  addressManager: { getAddresses(): Multiaddr[] }
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
  private readonly init: FederationInit
  private readonly trust: RelayTrust
  private readonly log: Logger
  /** relays tagged as federated, by peer ID */
  private readonly federated = new Set<string>()
  /** trusted relays whose dial failed: when to try again, by peer ID (oldest first) */
  private readonly failed = new Map<string, { failures: number, retryAt: number }>()
  /** trusted relays being dialed, by peer ID */
  private readonly dialing = new Set<string>()
  /** `--peer` relays being dialed until they answer, by multiaddr */
  private readonly redialing = new Set<string>()
  private proof?: Uint8Array
  readonly records: RecordCounts = { accepted: 0, ignored: 0, rejected: 0 }
  private controller = new AbortController()
  private publishTimer?: ReturnType<typeof setTimeout>
  private nextPublish = Infinity
  private lastPublished = 0
  private started = false

  constructor (components: FederationComponents, init: FederationInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('p2p-rooms:federation')
    const configured = init.peers.map(peerIdOf).filter((p): p is string => p !== undefined)
    this.trust = new RelayTrust({ peers: configured, federationKeys: init.federationKey === undefined ? [] : [init.federationKey.publicKey] })
    this.onConnect = this.onConnect.bind(this)
    this.onReconnectFailure = this.onReconnectFailure.bind(this)
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
    this.onGraft = this.onGraft.bind(this)
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    ensureWebSocket()
    this.controller = new AbortController()
    if (this.init.federationKey !== undefined) this.proof = await federationProof(this.init.federationKey, this.components.peerId.toString())
    this.started = true
  }

  afterStart (): void {
    const { pubsub, events } = this.components
    pubsub.topicValidators.set(RELAYS_TOPIC, this.validate)
    pubsub.subscribe(RELAYS_TOPIC)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.addEventListener('gossipsub:graft', this.onGraft)
    events.addEventListener('peer:connect', this.onConnect)
    events.addEventListener('peer:reconnect-failure', this.onReconnectFailure)
    this.publishSoon(0)
    for (const ma of this.init.peers) void this.keepDialing(ma)
  }

  stop (): void {
    this.started = false
    this.controller.abort()
    clearTimeout(this.publishTimer)
    const { pubsub, events } = this.components
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.removeEventListener('gossipsub:graft', this.onGraft)
    events.removeEventListener('peer:connect', this.onConnect)
    events.removeEventListener('peer:reconnect-failure', this.onReconnectFailure)
    pubsub.topicValidators.delete(RELAYS_TOPIC)
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

  federations (): string[] {
    return this.trust.federations()
  }

  /**
   * Every record on `RELAYS_TOPIC` goes through `RelayTrust`: a forged or malformed one is
   * rejected (its forwarder's gossipsub score drops), an untrusted one ignored (a trusted relay
   * may forward the records of relays it trusts and we do not), a trusted one accepted and
   * acted on.
   */
  private readonly validate: TopicValidatorFn = async (_peer, msg) => {
    const verdict = msg.type === 'signed' ? await this.trust.verify(msg.data, msg.key) : undefined
    if (verdict === undefined || !verdict.ok) {
      const ignored = verdict?.reason === 'untrusted'
      this.records[ignored ? 'ignored' : 'rejected']++
      if (!ignored) this.log('rejected a relay record from %p: %s', msg.type === 'signed' ? msg.from : 'an unsigned message', verdict?.reason ?? 'unsigned')
      return ignored ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    }
    this.records.accepted++
    this.onRecord(verdict.record)
    return TopicValidatorResult.Accept
  }

  /** A trusted relay's record: federate with it, dialing its addresses if not connected. */
  private onRecord (record: VerifiedRelayRecord): void {
    const { peerId } = record
    if (!this.started || peerId === this.components.peerId.toString()) return
    const connected = this.components.connectionManager.getConnections().some((c) => c.remotePeer.toString() === peerId && c.limits == null)
    if (connected) {
      this.federate(peerId)
      return
    }
    if (this.dialing.has(peerId) || record.multiaddrs.length === 0) return
    if (!this.federated.has(peerId) && this.federated.size >= MAX_FEDERATED_RELAYS) return
    const failed = this.failed.get(peerId)
    if (failed !== undefined && failed.retryAt > Date.now()) return
    this.dialing.add(peerId)
    this.components.connectionManager.openConnection(record.multiaddrs, { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(FEDERATION_REDIAL_MAX_MS)]) })
      .then(() => {
        this.failed.delete(peerId)
        this.federate(peerId)
      })
      .catch((err) => {
        if (!this.started) return
        const failures = (failed?.failures ?? 0) + 1
        this.failed.delete(peerId)
        this.failed.set(peerId, { failures, retryAt: Date.now() + backoff(failures) })
        // the oldest failure is forgotten first: a flood of trusted records cannot grow this
        if (this.failed.size > MAX_REMEMBERED_RELAY_FAILURES) this.failed.delete(this.failed.keys().next().value as string)
        this.log('could not reach relay %s learned from %s - %e', peerId, RELAYS_TOPIC, err)
      })
      .finally(() => { this.dialing.delete(peerId) })
  }

  /** A peer connected: a configured relay, or one a trusted record proved, is federated. */
  private onConnect (evt: CustomEvent<PeerId>): void {
    const peerId = evt.detail.toString()
    if (this.trust.trusts(peerId)) {
      this.federate(peerId)
      // it learns our record (and so our federation) soon, not at the next interval
      this.publishSoon(RECORD_MIN_INTERVAL_MS)
    }
  }

  private federate (peerId: string): void {
    if (!this.started || this.federated.has(peerId)) return
    if (this.federated.size >= MAX_FEDERATED_RELAYS) {
      this.log('not federating with %s: %d relays already', peerId, MAX_FEDERATED_RELAYS)
      return
    }
    this.federated.add(peerId)
    this.init.onFederate?.(peerId)
    const peer = this.components.connectionManager.getConnections().find((c) => c.remotePeer.toString() === peerId)?.remotePeer
    if (peer === undefined) return
    this.components.peerStore.merge(peer, { tags: { [FEDERATION_TAG]: { value: FEDERATION_TAG_VALUE } } })
      .then(() => { this.log('federated with relay %s', peerId) })
      .catch((err) => { this.log.error('could not tag relay %s - %e', peerId, err) })
  }

  /**
   * libp2p's reconnect queue gave up on a federated relay and dropped its tag. A relay learned
   * from a record is dialed again at its next record; a `--peer` relay is re-dialed forever.
   */
  private onReconnectFailure (evt: CustomEvent<PeerId>): void {
    const peer = evt.detail.toString()
    if (!this.federated.delete(peer)) return
    this.log('lost relay %s', peer)
    for (const ma of this.init.peers) {
      if (peerIdOf(ma) === peer) void this.keepDialing(ma)
    }
  }

  private onSubscriptionChange (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void {
    // gossipsub reports a subscription before it can send to its peer (src/gossip-readiness.ts):
    // publishing at once would reach nobody new
    if (evt.detail.subscriptions.some((s) => s.subscribe && s.topic === RELAYS_TOPIC)) this.publishSoon(RECORD_MIN_INTERVAL_MS)
  }

  /** A peer joined our mesh on the relays topic: it can receive our record now. */
  private onGraft (evt: CustomEvent<{ topic: string }>): void {
    if (evt.detail.topic === RELAYS_TOPIC) this.publishSoon()
  }

  /**
   * Publishes our record within `delay` ms (or sooner if already planned), and no sooner than
   * `RECORD_MIN_INTERVAL_MS` after the last: a stream of newcomers neither floods the topic nor
   * keeps pushing the next record back.
   */
  private publishSoon (delay = 0): void {
    if (!this.started) return
    const at = Math.max(Date.now() + delay, this.lastPublished + RECORD_MIN_INTERVAL_MS)
    if (at >= this.nextPublish) return
    this.schedule(at)
  }

  private schedule (at: number): void {
    clearTimeout(this.publishTimer)
    this.nextPublish = at
    this.publishTimer = setTimeout(() => { void this.publish() }, Math.max(0, at - Date.now()))
  }

  private async publish (): Promise<void> {
    if (!this.started) return
    this.lastPublished = Date.now()
    this.schedule(this.lastPublished + RECORD_INTERVAL_MS)
    const { peerId, pubsub, addressManager } = this.components
    const federation = this.init.federationKey === undefined || this.proof === undefined ? undefined : { key: this.init.federationKey.publicKey, proof: this.proof }
    const addrs = addressManager.getAddresses().filter((ma) => !ma.getComponents().some((c) => c.name === 'p2p-circuit'))
    const record = encodeRelayRecord(relayRecordOf(peerId.publicKey as NonNullable<PeerId['publicKey']>, addrs, federation))
    try {
      await pubsub.publish(RELAYS_TOPIC, record)
    } catch (err) {
      this.log('could not publish our relay record - %e', err)
    }
  }

  /** Dials a `--peer` relay until it answers, with a doubling backoff. */
  private async keepDialing (ma: Multiaddr): Promise<void> {
    const key = ma.toString()
    if (this.redialing.has(key)) return
    this.redialing.add(key)
    const signal = this.controller.signal
    try {
      for (let attempt = 1; !signal.aborted; attempt++) {
        try {
          await this.components.connectionManager.openConnection(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(FEDERATION_REDIAL_MAX_MS)]) })
          return
        } catch (err) {
          if (signal.aborted) return
          const wait = backoff(attempt)
          this.log('relay %s unreachable (attempt %d), next try in %d ms - %e', key, attempt, wait, err)
          // an abort ends the loop (stop() aborts every wait at once)
          await sleep(wait, signal).catch(() => {})
        }
      }
    } finally {
      this.redialing.delete(key)
    }
  }
}

/** Wait before the next dial of a relay after `failures` failed ones (backoff.ts). */
function backoff (failures: number): number {
  return backoffDelay(failures, { initialMs: FEDERATION_REDIAL_MIN_MS, maxMs: FEDERATION_REDIAL_MAX_MS })
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
