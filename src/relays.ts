/**
 * The relays a room node knows, and enough of them connected to hold `maxRelays` reservations.
 *
 * circuit-relay-v2 does the reserving: the node listens on `/p2p-circuit` once per wanted
 * reservation, and the transport reserves on any connected peer that identifies as a relay, and
 * drops the reservation (and our `/p2p-circuit` addresses) when its connection closes. What it
 * cannot do is find relays it was never connected to: those come from the federation, whose
 * relays publish their peer records on `RELAYS_TOPIC` (libp2p pubsub peer discovery, which this
 * node only listens to), and from the relays a room peer's circuit address led us to. This set
 * dials them when reservations are missing, and reports which relays we are reachable through.
 */
import { PubSubPeerDiscovery } from '@libp2p/pubsub-peer-discovery'
import { TypedEventEmitter } from 'main-event'
import { MAX_KNOWN_RELAYS, RELAY_REDIAL_MAX_MS, RELAY_REDIAL_MIN_MS, RELAY_RESERVATION_GRACE_MS, RELAYS_TOPIC } from './constants.js'
import type { RelayEvents, RelayInfo, Relays } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Connection, IdentifyResult, Logger, PeerDiscovery, PeerInfo } from '@libp2p/interface'
import type { PubSubPeerDiscoveryComponents } from '@libp2p/pubsub-peer-discovery'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

/** The protocol only relays serve: a connected peer that speaks it is a relay. */
const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

export interface RelaySetInit {
  /** The relays the node was configured with (`relays`). */
  configured: Multiaddr[]
  maxRelays: number
  /** Upper bound of one relay dial, in ms. */
  dialTimeout: number
  log: Logger
}

interface KnownRelay {
  peerId: string
  /** WebSockets multiaddrs, each ending in `/p2p/<peerId>` */
  addrs: Multiaddr[]
  dialing: boolean
  /** consecutive failed dials, and when the next may start */
  failures: number
  retryAt: number
  /** a dial of ours succeeded: the transport is expected to reserve on it until then */
  reservingUntil: number
}

export class RelaySet extends TypedEventEmitter<RelayEvents> implements Relays {
  private readonly libp2p: Libp2p<RoomNodeServices>
  private readonly init: RelaySetInit
  private readonly known = new Map<string, KnownRelay>()
  private reserved = new Set<string>()
  private timer?: ReturnType<typeof setTimeout>
  private started = false

  constructor (libp2p: Libp2p<RoomNodeServices>, init: RelaySetInit) {
    super()
    this.libp2p = libp2p
    this.init = init
    this.update = this.update.bind(this)
    this.onRecord = this.onRecord.bind(this)
    this.onIdentify = this.onIdentify.bind(this)
    this.onConnectionClose = this.onConnectionClose.bind(this)
  }

  start (): void {
    if (this.started) return
    this.started = true
    for (const ma of this.init.configured) {
      const peerId = lastPeerId(ma.getComponents())
      if (peerId !== undefined) this.learn(peerId, [ma])
    }
    this.libp2p.services.relayDiscovery.addEventListener('peer', this.onRecord)
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.libp2p.addEventListener('connection:close', this.onConnectionClose)
    // the circuit listener announces every reservation made or lost with `listening`;
    // `self:peer:update` (debounced by a second) is the backstop
    this.libp2p.addEventListener('transport:listening', this.update)
    this.libp2p.addEventListener('self:peer:update', this.update)
    this.update()
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    clearTimeout(this.timer)
    this.libp2p.services.relayDiscovery.removeEventListener('peer', this.onRecord)
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.libp2p.removeEventListener('connection:close', this.onConnectionClose)
    this.libp2p.removeEventListener('transport:listening', this.update)
    this.libp2p.removeEventListener('self:peer:update', this.update)
  }

  list (): RelayInfo[] {
    return [...this.known.values()].map((r) => this.info(r))
  }

  // --- learning relays ----------------------------------------------------------------------

  /** A relay's peer record, published by that relay on the federation's relays topic. */
  private onRecord (evt: CustomEvent<PeerInfo>): void {
    this.learn(evt.detail.id.toString(), evt.detail.multiaddrs)
    this.fill()
  }

  /** Any peer that identifies as a relay, e.g. the relay of a room peer we dialed. */
  private onIdentify (evt: CustomEvent<IdentifyResult>): void {
    const { peerId, protocols, listenAddrs, connection } = evt.detail
    if (!protocols.includes(HOP_PROTOCOL) || connection.limits != null) return
    this.learn(peerId.toString(), [connection.remoteAddr, ...listenAddrs])
  }

  private learn (peerId: string, addrs: Multiaddr[]): void {
    if (peerId === this.libp2p.peerId.toString()) return
    // a browser reaches a relay over WebSockets; a circuit address would be a relay behind a relay
    const dialable = addrs
      .filter((ma) => !ma.toString().includes('/p2p-circuit') && /\/wss?(\/|$)/.test(ma.toString()))
      .map((ma) => withPeerId(ma, peerId))
    const known = this.known.get(peerId)
    if (known !== undefined) {
      for (const ma of dialable) if (!known.addrs.some((a) => a.equals(ma))) known.addrs.push(ma)
      return
    }
    if (dialable.length === 0 || this.known.size >= MAX_KNOWN_RELAYS) return
    const relay: KnownRelay = { peerId, addrs: dialable, dialing: false, failures: 0, retryAt: 0, reservingUntil: 0 }
    this.known.set(peerId, relay)
    const configured = this.init.configured.some((ma) => ma.getComponents().some((c) => c.name === 'p2p' && c.value === peerId))
    if (!configured) {
      this.init.log('learned relay %s', peerId)
      this.safeDispatchEvent('relay:discover', { detail: this.info(relay) })
    }
  }

  // --- reservations -------------------------------------------------------------------------

  /** Compares the relays we hold reservations on with the last look, and reports the change. */
  private update (): void {
    if (!this.started) return
    const now = reservedRelays(this.libp2p)
    const before = this.reserved
    this.reserved = now
    for (const peerId of now) {
      if (before.has(peerId)) continue
      const conn = this.connectionTo(peerId)
      if (conn !== undefined) this.learn(peerId, [conn.remoteAddr])
      const relay = this.known.get(peerId)
      this.init.log('reserved on relay %s', peerId)
      this.safeDispatchEvent('relay:connect', { detail: relay === undefined ? { peerId, multiaddr: '', connected: true, reserved: true } : this.info(relay) })
    }
    for (const peerId of before) {
      if (now.has(peerId)) continue
      const relay = this.known.get(peerId)
      this.init.log('lost the reservation on relay %s', peerId)
      this.safeDispatchEvent('relay:disconnect', { detail: relay === undefined ? { peerId, multiaddr: '', connected: false, reserved: false } : this.info(relay) })
    }
    this.fill()
  }

  private onConnectionClose (evt: CustomEvent<Connection>): void {
    if (this.known.has(evt.detail.remotePeer.toString())) this.update()
  }

  /**
   * Dials known relays we are not connected to while fewer than `maxRelays` reservations are
   * held or on their way: least-failed first, in random order among equals so the tabs of a
   * federation spread over its relays. A relay that fails waits out a doubling backoff.
   */
  private fill (): void {
    // a stopping node closes its relay connections: nothing to replace
    if (!this.started || this.libp2p.status !== 'started') return
    clearTimeout(this.timer)
    const now = Date.now()
    const relays = [...this.known.values()]
    const pending = relays.filter((r) => !this.reserved.has(r.peerId) && (r.dialing || r.reservingUntil > now)).length
    // node-config.ts listens on `/p2p-circuit` at least once, whatever maxRelays says
    let missing = Math.max(1, this.init.maxRelays) - this.reserved.size - pending
    if (missing <= 0) return
    const idle = relays.filter((r) => !r.dialing && !this.reserved.has(r.peerId) && this.connectionTo(r.peerId) === undefined)
    const shuffle = new Map(idle.map((r) => [r, Math.random()]))
    idle.sort((a, b) => a.failures - b.failures || (shuffle.get(a) ?? 0) - (shuffle.get(b) ?? 0))
    for (const r of idle) {
      if (missing === 0) break
      if (r.retryAt > now) continue
      missing--
      void this.dial(r)
    }
    // come back when the next backoff or reservation grace ends
    const wakeAt = Math.min(...relays.map((r) => r.reservingUntil > now ? r.reservingUntil : Infinity), ...idle.map((r) => r.retryAt > now ? r.retryAt : Infinity))
    if (missing > 0 || pending > 0) {
      if (Number.isFinite(wakeAt)) this.timer = setTimeout(() => { this.fill() }, wakeAt - now)
    }
  }

  private async dial (r: KnownRelay): Promise<void> {
    r.dialing = true
    try {
      await this.libp2p.dial(r.addrs, { signal: AbortSignal.timeout(this.init.dialTimeout) })
      r.failures = 0
      // the circuit transport reserves once identify says it is a relay
      r.reservingUntil = Date.now() + RELAY_RESERVATION_GRACE_MS
    } catch (err) {
      r.failures++
      r.retryAt = Date.now() + Math.min(RELAY_REDIAL_MIN_MS * 2 ** (r.failures - 1), RELAY_REDIAL_MAX_MS)
      this.init.log('could not reach relay %s (%d failures) - %e', r.peerId, r.failures, err)
    } finally {
      r.dialing = false
      this.fill()
    }
  }

  private connectionTo (peerId: string): Connection | undefined {
    return this.libp2p.getConnections().find((c) => c.remotePeer.toString() === peerId && c.limits == null && c.status === 'open')
  }

  private info (r: KnownRelay): RelayInfo {
    const conn = this.connectionTo(r.peerId)
    return {
      peerId: r.peerId,
      multiaddr: conn !== undefined ? withPeerId(conn.remoteAddr, r.peerId).toString() : r.addrs[0].toString(),
      connected: conn !== undefined,
      reserved: this.reserved.has(r.peerId)
    }
  }
}

/**
 * The node's listener for the federation's relay records (libp2p pubsub peer discovery on
 * `RELAYS_TOPIC`, listen-only: a browser is no relay to tell anyone about).
 */
export function relayRecords (): (components: PubSubPeerDiscoveryComponents) => PeerDiscovery {
  return (components) => new ListenOnlyPeerDiscovery(components, { topics: [RELAYS_TOPIC], listenOnly: true })
}

/**
 * @libp2p/pubsub-peer-discovery 12.0.0 in listen-only mode drops every record it receives: it
 * derives `isStarted()` from its broadcast timer, which listen-only mode never sets (the bug of
 * libp2p/js-libp2p-pubsub-peer-discovery#29, back again). Started here means subscribed.
 */
class ListenOnlyPeerDiscovery extends PubSubPeerDiscovery {
  private listening = false

  override isStarted (): boolean {
    return this.listening
  }

  override afterStart (): void {
    super.afterStart()
    this.listening = true
  }

  override stop (): void {
    this.listening = false
    super.stop()
  }
}

/** Peer IDs of the relays our `/p2p-circuit` addresses go through: one per reservation held. */
function reservedRelays (libp2p: Libp2p): Set<string> {
  const relays = new Set<string>()
  for (const ma of libp2p.getMultiaddrs()) {
    const components = ma.getComponents()
    const circuit = components.findIndex((c) => c.name === 'p2p-circuit')
    const relay = lastPeerId(components.slice(0, Math.max(circuit, 0)))
    if (relay !== undefined) relays.add(relay)
  }
  return relays
}

function lastPeerId (components: Array<{ name: string, value?: string }>): string | undefined {
  return components.filter((c) => c.name === 'p2p').pop()?.value
}

function withPeerId (ma: Multiaddr, peerId: string): Multiaddr {
  return ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${peerId}`)
}
