/**
 * The relays a room node knows, and enough of them connected to hold `maxRelays` reservations.
 *
 * circuit-relay-v2 does the reserving: the node listens on `/p2p-circuit` once per wanted
 * reservation, and the transport reserves on a connected peer that identifies as a relay, and
 * drops the reservation (and our `/p2p-circuit` addresses) when its connection closes. What it
 * cannot do is find relays it was never connected to: those come from the federation, whose
 * relays publish their relay records on `RELAYS_TOPIC`, which this node only listens to. This set
 * dials them when reservations are missing, and reports which relays we are reachable through.
 *
 * **Only trusted relays.** A node trusts the relays it was given (`relays`) and those their
 * federation vouches for, checked with the very `RelayTrust` the relays use (relay-records.ts):
 * a record that is not trusted is never dialed, and the transport reserves only on trusted
 * relays (`reservationFilter`). Before, any record was believed and any peer claiming the relay
 * protocol (a room member, over WebRTC) was reserved on, so failover could dial an attacker.
 *
 * **Identify runs with relays only.** node-config.ts turns identify's automatic run off; this set
 * runs it on each connection that is neither limited nor WebRTC, i.e. to a relay over WebSockets,
 * where the transport needs it to reserve and gossipsub to open its streams. A circuit only
 * signals WebRTC, and a direct WebRTC connection carries only our own streams, opened by protocol:
 * identify there cost each side a stream, a signed peer record and peer store updates per peer
 * met, on the path of every meeting, and let a room member claim protocols (such as the relay's)
 * to us.
 *
 * **Coming back after an outage.** A relay that restarts on the same address must have its tabs
 * back within seconds, not after a doubling backoff grown to a minute (the transport's own
 * re-reservation after a lost relay waits on discovery; js-libp2p#3601): while the node holds no
 * reservation at all it redials every `RELAY_OUTAGE_REDIAL_MAX_MS` at most, and it redials at once
 * when the browser comes back online (`online`), when the page becomes visible again (timers of
 * hidden tabs are throttled), when a reservation is lost, and when a trusted record shows a relay
 * alive. A relay that stops answering without closing its connection (its host lost power or its
 * network) is found by a ping every `RELAY_LIVENESS_INTERVAL_MS`, and its connection closed after
 * `RELAY_LIVENESS_MISSES` missed in a row.
 */
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { TypedEventEmitter } from 'main-event'
import { backoffDelay } from './backoff.js'
import {
  MAX_KNOWN_RELAYS, MAX_RELAY_ADDRS, RELAY_LIVENESS_INTERVAL_MS, RELAY_LIVENESS_MISSES, RELAY_LIVENESS_TIMEOUT_MS, RELAY_ONLINE_PING_TIMEOUT_MS,
  RELAY_OUTAGE_REDIAL_MAX_MS, RELAY_REDIAL_JITTER, RELAY_REDIAL_MAX_MS, RELAY_REDIAL_MIN_MS, RELAY_RESERVATION_GRACE_MS
} from './constants.js'
import { RelayRecords } from './relay-discovery.js'
import { peerIdOf, relayDialAddr, RelayTrust, withPeerId } from './relay-records.js'
import type { RelayInfo, Relays, RelaySetEvents } from './index.js'
import type { Identify } from '@libp2p/identify'
import type { AbortOptions, Connection, IdentifyResult, Libp2pEvents, Logger, PeerDiscovery, PeerId, PeerInfo, PeerStore, Startable } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { TypedEventTarget } from 'main-event'

/**
 * The part of the libp2p node a `RelaySet` uses (a room node's `Libp2p<RoomNodeServices>` is one),
 * so that unit tests can hand it stubs.
 */
export interface RelaySetComponents extends Pick<TypedEventTarget<Libp2pEvents>, 'addEventListener' | 'removeEventListener'> {
  peerId: PeerId
  /** Only a `'started'` node dials relays: a stopping one closes its relay connections. */
  status: string
  /** Where untrusted peers claiming the relay protocol have it struck off. */
  peerStore: Pick<PeerStore, 'patch'>
  /** Our addresses: each `/p2p-circuit` one names a relay we hold a reservation on. */
  getMultiaddrs(): Multiaddr[]
  getConnections(): Connection[]
  dial(addrs: Multiaddr[], options?: AbortOptions): Promise<Connection>
  services: {
    /** `relayRecords()`: trusted relay records, and the transport's reservation filter. */
    relayDiscovery: PeerDiscovery
    /** Relay connections are pinged when the browser comes back online. */
    ping: Pick<Ping, 'ping'>
    /** Runs on each relay connection, and again on one that made no reservation. */
    identify: Pick<Identify, 'identify'>
  }
}

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

/**
 * `node.relays`. A `Startable`: `start()` learns the configured relays, attaches every listener
 * and dials; `stop()` detaches them and clears the timer; both are idempotent.
 */
export class RelaySet extends TypedEventEmitter<RelaySetEvents> implements Relays, Startable {
  private readonly libp2p: RelaySetComponents
  private readonly init: RelaySetInit
  private readonly known = new Map<string, KnownRelay>()
  /** The relays this node trusts: shared with the relay records and the transport's filter. */
  readonly trust: RelayTrust
  private reserved = new Set<string>()
  /** Connections identify ran on (or is running on), so that each is identified once by us. */
  private readonly identified = new WeakSet<Connection>()
  private timer?: ReturnType<typeof setTimeout>
  private liveness?: ReturnType<typeof setInterval>
  /** relay connections pinged by the liveness check right now */
  private readonly pinging = new WeakSet<Connection>()
  /** per relay connection, the liveness pings it missed in a row (a new connection starts at 0) */
  private missedPings = new WeakMap<Connection, number>()
  private started = false

  constructor (libp2p: RelaySetComponents, init: RelaySetInit) {
    super()
    this.libp2p = libp2p
    this.init = init
    this.trust = new RelayTrust({ peers: init.configured.map(peerIdOf).filter((p): p is string => p !== undefined) })
    this.update = this.update.bind(this)
    this.onRecord = this.onRecord.bind(this)
    this.onIdentify = this.onIdentify.bind(this)
    this.onConnectionOpen = this.onConnectionOpen.bind(this)
    this.onConnectionClose = this.onConnectionClose.bind(this)
    this.onOnline = this.onOnline.bind(this)
    this.onVisibilityChange = this.onVisibilityChange.bind(this)
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    if (this.started) return
    this.started = true
    for (const ma of this.init.configured) {
      const peerId = peerIdOf(ma)
      if (peerId !== undefined) this.learn(peerId, [ma])
    }
    const records = this.libp2p.services.relayDiscovery
    if (records instanceof RelayRecords) records.setTrust(this.trust)
    else this.init.log.error('relayDiscovery is not relayRecords(): relay records are not checked')
    records.addEventListener('peer', this.onRecord)
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.libp2p.addEventListener('connection:open', this.onConnectionOpen)
    this.libp2p.addEventListener('connection:close', this.onConnectionClose)
    // the circuit listener announces every reservation made or lost with `listening`;
    // `self:peer:update` (debounced by a second) is the backstop
    this.libp2p.addEventListener('transport:listening', this.update)
    this.libp2p.addEventListener('self:peer:update', this.update)
    // a browser back online, or a tab back in view (its timers were throttled), redials at once
    globalThis.addEventListener?.('online', this.onOnline)
    globalThis.document?.addEventListener?.('visibilitychange', this.onVisibilityChange)
    for (const conn of this.libp2p.getConnections()) this.identifyServer(conn)
    this.liveness = setInterval(() => { this.checkLiveness() }, RELAY_LIVENESS_INTERVAL_MS)
    this.update()
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    clearTimeout(this.timer)
    clearInterval(this.liveness)
    this.missedPings = new WeakMap()
    this.libp2p.services.relayDiscovery.removeEventListener('peer', this.onRecord)
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.libp2p.removeEventListener('connection:open', this.onConnectionOpen)
    this.libp2p.removeEventListener('connection:close', this.onConnectionClose)
    this.libp2p.removeEventListener('transport:listening', this.update)
    this.libp2p.removeEventListener('self:peer:update', this.update)
    globalThis.removeEventListener?.('online', this.onOnline)
    globalThis.document?.removeEventListener?.('visibilitychange', this.onVisibilityChange)
  }

  list (): RelayInfo[] {
    return [...this.known.values()].map((r) => this.info(r))
  }

  // --- learning relays ----------------------------------------------------------------------

  /** A trusted relay's record (relay records are checked before they get here): it is alive. */
  private onRecord (evt: CustomEvent<PeerInfo>): void {
    const peerId = evt.detail.id.toString()
    this.learn(peerId, evt.detail.multiaddrs)
    const relay = this.known.get(peerId)
    // it just published, so it is up: no reason to wait out a backoff grown while it was not
    if (relay !== undefined && !this.reserved.has(peerId)) relay.retryAt = 0
    this.fill()
  }

  /**
   * A peer identified. A trusted relay's connection tells us where we reached it; a peer claiming
   * the relay protocol that we do not trust has it struck off its peer store entry, so the
   * transport's relay search (which reads the peer store) never reserves on it either.
   */
  private onIdentify (evt: CustomEvent<IdentifyResult>): void {
    const { peerId, protocols, connection } = evt.detail
    if (!protocols.includes(RELAY_V2_HOP_CODEC)) return
    const id = peerId.toString()
    if (!this.trust.trusts(id)) {
      this.init.log('%s claims the relay protocol but is no trusted relay: not reserving on it', id)
      this.libp2p.peerStore.patch(peerId, { protocols: protocols.filter((p) => p !== RELAY_V2_HOP_CODEC) })
        .catch((err) => { this.init.log.error('could not strike the relay protocol off %s - %e', id, err) })
      return
    }
    if (connection.limits == null) this.learn(id, [connection.remoteAddr])
  }

  private onConnectionOpen (evt: CustomEvent<Connection>): void {
    this.identifyServer(evt.detail)
  }

  /** Runs identify once on `conn` if it is an open connection to a relay (see the module doc). */
  private identifyServer (conn: Connection): void {
    if (conn.status !== 'open' || conn.limits != null || conn.multiplexer === '/webrtc' || this.identified.has(conn)) return
    this.identified.add(conn)
    // the transport reserves on a trusted relay once identify says it is one: give it the grace
    const relay = this.known.get(conn.remotePeer.toString())
    if (relay !== undefined) relay.reservingUntil = Date.now() + RELAY_RESERVATION_GRACE_MS
    this.libp2p.services.identify.identify(conn)
      .catch((err) => { this.init.log('could not identify %p - %e', conn.remotePeer, err) })
  }

  private learn (peerId: string, addrs: Multiaddr[]): void {
    if (peerId === this.libp2p.peerId.toString()) return
    const dialable = addrs.map((ma) => relayDialAddr(ma, peerId)).filter((ma): ma is Multiaddr => ma !== undefined)
    const known = this.known.get(peerId)
    if (known !== undefined) {
      for (const ma of dialable) if (!known.addrs.some((a) => a.equals(ma)) && known.addrs.length < MAX_RELAY_ADDRS) known.addrs.push(ma)
      return
    }
    if (dialable.length === 0 || this.known.size >= MAX_KNOWN_RELAYS) return
    const relay: KnownRelay = { peerId, addrs: dialable.slice(0, MAX_RELAY_ADDRS), dialing: false, failures: 0, retryAt: 0, reservingUntil: 0 }
    this.known.set(peerId, relay)
    if (!this.trust.isConfigured(peerId)) {
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
      // its reservation is made: no longer one on its way
      if (relay !== undefined) relay.reservingUntil = 0
      this.init.log('reserved on relay %s', peerId)
      this.safeDispatchEvent('relay:connect', { detail: relay === undefined ? { peerId, multiaddr: '', connected: true, reserved: true } : this.info(relay) })
    }
    for (const peerId of before) {
      if (now.has(peerId)) continue
      const relay = this.known.get(peerId)
      this.init.log('lost the reservation on relay %s', peerId)
      // the relay may be back at once (a restart): the first redial does not wait, and no
      // reservation is on its way there any more (the grace of an earlier dial would otherwise
      // keep the node from dialing another relay for up to RELAY_RESERVATION_GRACE_MS)
      if (relay !== undefined) {
        relay.retryAt = 0
        relay.reservingUntil = 0
      }
      this.safeDispatchEvent('relay:disconnect', { detail: relay === undefined ? { peerId, multiaddr: '', connected: false, reserved: false } : this.info(relay) })
    }
    if (now.size === 0 && before.size > 0) this.shortenBackoffs()
    this.fill()
  }

  private onConnectionClose (evt: CustomEvent<Connection>): void {
    if (this.known.has(evt.detail.remotePeer.toString())) this.update()
  }

  /**
   * The browser says it is online again: whatever failed while it was not may work now, and a
   * relay connection that looks open may have died meanwhile without a close reaching us (a
   * relay restarted, a NAT forgot us): each is pinged, and one that does not answer within
   * `RELAY_ONLINE_PING_TIMEOUT_MS` is closed, which frees its reservation to be made again.
   */
  private onOnline (): void {
    this.init.log('online again: checking relay connections and redialing relays')
    this.redialNow()
    for (const peerId of this.reserved) {
      const conn = this.connectionTo(peerId)
      if (conn === undefined) continue
      this.libp2p.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(RELAY_ONLINE_PING_TIMEOUT_MS) })
        .catch((err) => {
          this.init.log('relay %s did not answer once online: closing its connection - %e', peerId, err)
          conn.abort(err)
        })
    }
  }

  /**
   * A relay connection can die without a close reaching us: a relay whose host lost power or its
   * network leaves a WebSocket that looks open until TCP notices (hours), and libp2p's connection
   * monitor only measures (node-config.ts: a slow ping must not close a room's WebRTC
   * connections). So each relay connection is pinged every `RELAY_LIVENESS_INTERVAL_MS`, and one
   * that missed `RELAY_LIVENESS_MISSES` pings in a row, each given `RELAY_LIVENESS_TIMEOUT_MS`, is
   * closed: its reservation goes, and the set reserves on another relay or dials it again.
   */
  private checkLiveness (): void {
    for (const r of this.known.values()) {
      const conn = this.connectionTo(r.peerId)
      if (conn === undefined || this.pinging.has(conn)) continue
      this.pinging.add(conn)
      this.libp2p.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(RELAY_LIVENESS_TIMEOUT_MS) })
        .then(() => { this.missedPings.delete(conn) }, (err) => {
          const missed = (this.missedPings.get(conn) ?? 0) + 1
          if (missed < RELAY_LIVENESS_MISSES) {
            this.missedPings.set(conn, missed)
            return
          }
          this.missedPings.delete(conn)
          if (!this.started || conn.status !== 'open') return
          this.init.log('relay %s missed %d pings in a row: closing its connection - %e', r.peerId, missed, err)
          conn.abort(err)
        })
        .finally(() => { this.pinging.delete(conn) })
    }
  }

  private onVisibilityChange (): void {
    if (globalThis.document?.visibilityState === 'visible') this.redialNow()
  }

  private redialNow (): void {
    for (const r of this.known.values()) r.retryAt = 0
    this.fill()
  }

  /** With no reservation left, no relay waits longer than `RELAY_OUTAGE_REDIAL_MAX_MS` to be redialed. */
  private shortenBackoffs (): void {
    const latest = Date.now() + RELAY_OUTAGE_REDIAL_MAX_MS
    for (const r of this.known.values()) r.retryAt = Math.min(r.retryAt, latest)
  }

  /**
   * Dials known relays we are not connected to while fewer than `maxRelays` reservations are
   * held or on their way: least-failed first, in random order among equals so the tabs of a
   * federation spread over its relays. A relay that fails waits out a doubling backoff, at most
   * `RELAY_REDIAL_MAX_MS`, or `RELAY_OUTAGE_REDIAL_MAX_MS` while no reservation is held at all.
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
    const idle = relays.filter((r) => !r.dialing && !this.reserved.has(r.peerId) && r.reservingUntil <= now)
    const shuffle = new Map(idle.map((r) => [r, Math.random()]))
    idle.sort((a, b) => a.failures - b.failures || (shuffle.get(a) ?? 0) - (shuffle.get(b) ?? 0))
    for (const r of idle) {
      if (missing === 0) break
      const conn = this.connectionTo(r.peerId)
      if (conn !== undefined) {
        // connected without a reservation: e.g. we reached it to dial a room peer through it
        // before we knew to trust it, so the transport passed it over; identify it again
        missing--
        this.reidentify(r, conn)
        continue
      }
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

  /**
   * Runs identify on `conn` again, which has the transport consider `r` as a relay anew: the
   * transport is notified of a relay once per connection (its topology filter), and passed it
   * over then (untrusted yet, or no reservation wanted), so the filter forgets it first.
   */
  private reidentify (r: KnownRelay, conn: Connection): void {
    r.reservingUntil = Date.now() + RELAY_RESERVATION_GRACE_MS
    const records = this.libp2p.services.relayDiscovery
    if (records instanceof RelayRecords) records.reservationFilter?.remove(conn.remotePeer)
    this.libp2p.services.identify.identify(conn)
      .catch((err) => { this.init.log('could not identify relay %s again - %e', r.peerId, err) })
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
      const maxMs = this.reserved.size === 0 ? RELAY_OUTAGE_REDIAL_MAX_MS : RELAY_REDIAL_MAX_MS
      // jitter: the tabs of a restarted relay must not all come back in the same instant
      const wait = backoffDelay(r.failures, { initialMs: RELAY_REDIAL_MIN_MS, maxMs, jitter: [1, 1 + RELAY_REDIAL_JITTER] })
      r.retryAt = Date.now() + wait
      this.init.log('could not reach relay %s (%d failures), next try in %d ms - %e', r.peerId, r.failures, Math.round(wait), err)
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

/** Peer IDs of the relays our `/p2p-circuit` addresses go through: one per reservation held. */
function reservedRelays (libp2p: Pick<RelaySetComponents, 'getMultiaddrs'>): Set<string> {
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
