/**
 * The node's `relayDiscovery` service: the federation's relay records, heard on `RELAYS_TOPIC`
 * and checked with the node's `RelayTrust` (relay-records.ts), handed to `RelaySet` (relays.ts);
 * and the filter that keeps circuit-relay-v2's transport to reserving on trusted relays.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { RELAYS_TOPIC } from './constants.js'
import { RelayTrust } from './relay-records.js'
import type { VerifiedRelayRecord } from './relay-records.js'
import type { GossipSub, TopicValidatorFn } from '@libp2p/gossipsub'
import type { ComponentLogger, Logger, PeerDiscoveryEvents, PeerInfo, Startable, TopologyFilter } from '@libp2p/interface'

export interface RelayRecordsComponents {
  pubsub: GossipSub
  logger: ComponentLogger
}

/**
 * The node's listener for the federation's relay records on `RELAYS_TOPIC` (listen-only: a
 * browser is no relay to tell anyone about). Every record is checked with the node's
 * `RelayTrust` in gossipsub's validator: a forged one is rejected (the peer forwarding it loses
 * score), an untrusted one ignored (neither delivered nor forwarded), a trusted one emitted as
 * `peer`. It is deliberately no libp2p peer discovery: records never reach the peer store or
 * libp2p's dialers, only `RelaySet`.
 */
export class RelayRecords extends TypedEventEmitter<PeerDiscoveryEvents> implements Startable {
  private readonly components: RelayRecordsComponents
  private readonly log: Logger
  private trust = new RelayTrust()
  private started = false
  /** The circuit relay transport's filter (`relayRecords().reservationFilter`), when made by `relayRecords()`. */
  readonly reservationFilter?: TopologyFilter
  /** Records seen, by verdict: accepted (trusted), ignored (valid, untrusted), rejected (malformed, forged). */
  readonly counts = { accepted: 0, ignored: 0, rejected: 0 }

  constructor (components: RelayRecordsComponents, reservationFilter?: TopologyFilter) {
    super()
    this.components = components
    this.reservationFilter = reservationFilter
    this.log = components.logger.forComponent('p2p-rooms:relay-records')
  }

  /** Checks records against `trust` from now on (until then it trusts nothing). */
  setTrust (trust: RelayTrust): void {
    this.trust = trust
  }

  /** The trust records are checked against. */
  getTrust (): RelayTrust {
    return this.trust
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    this.started = true
  }

  afterStart (): void {
    const { pubsub } = this.components
    pubsub.topicValidators.set(RELAYS_TOPIC, this.validate)
    pubsub.subscribe(RELAYS_TOPIC)
  }

  stop (): void {
    this.started = false
    const { pubsub } = this.components
    pubsub.topicValidators.delete(RELAYS_TOPIC)
    try {
      pubsub.unsubscribe(RELAYS_TOPIC)
    } catch {
      // gossipsub stopped first: nothing is subscribed any more
    }
  }

  private readonly validate: TopicValidatorFn = async (_peer, msg) => {
    const verdict = msg.type === 'signed' ? await this.trust.verify(msg.data, msg.key) : undefined
    if (verdict === undefined || !verdict.ok) {
      const ignored = verdict?.reason === 'untrusted'
      this.counts[ignored ? 'ignored' : 'rejected']++
      if (!ignored) this.log('rejected a relay record from %p: %s', msg.type === 'signed' ? msg.from : 'an unsigned message', verdict?.reason ?? 'unsigned')
      return ignored ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
    }
    this.counts.accepted++
    if (this.started) this.safeDispatchEvent('peer', { detail: peerInfo(verdict.record) })
    return TopicValidatorResult.Accept
  }
}

function peerInfo (record: VerifiedRelayRecord): PeerInfo {
  return { id: peerIdFromString(record.peerId), multiaddrs: record.multiaddrs }
}

/** What `relayRecords()` returns: a service factory carrying the transport's reservation filter. */
export interface RelayRecordsFactory {
  (components: RelayRecordsComponents): RelayRecords
  /**
   * For `circuitRelayTransport({ discoveryFilter })`: the transport reserves only on a peer this
   * says it has not seen, i.e. a trusted relay not yet notified (libp2p's registrar adds a peer
   * on connect and removes it on disconnect).
   */
  reservationFilter: TopologyFilter
}

/**
 * The node's relay records listener (`services: { relayDiscovery: relays }`), and the filter that
 * keeps the circuit relay transport to trusted relays (`circuitRelayTransport({ discoveryFilter:
 * relays.reservationFilter })`): both read the trust `RelaySet` hands the service when it starts.
 */
export function relayRecords (): RelayRecordsFactory {
  let service: RelayRecords | undefined
  const seen = new Set<string>()
  const reservationFilter: TopologyFilter = {
    has: (peerId) => service?.getTrust().trusts(peerId.toString()) !== true || seen.has(peerId.toString()),
    add: (peerId) => { seen.add(peerId.toString()) },
    remove: (peerId) => { seen.delete(peerId.toString()) }
  }
  const factory = (components: RelayRecordsComponents): RelayRecords => {
    service = new RelayRecords(components, reservationFilter)
    return service
  }
  return Object.assign(factory, { reservationFilter })
}
