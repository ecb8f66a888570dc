/**
 * Admission control: which inbound connections and circuit-relay reservations the relay accepts,
 * through libp2p's connection gater. libp2p enforces `maxConnections` and
 * `inboundConnectionThreshold` too, but refuses silently; here every refusal has a reason that is
 * counted and reported, and libp2p's own limits are set out of the way (see index.ts).
 *
 * Reservations: circuit v2 holds at most one per peer (a second RESERVE refreshes it). libp2p
 * keeps a reservation until its TTL (2 h) even after its peer disconnected, so a relay with
 * churning tabs filled up with dead reservations and refused everyone (js-libp2p#2833;
 * go-libp2p drops them on disconnect since libp2p/go-libp2p#2974): here a reservation goes as
 * soon as its peer's last connection does.
 */
import { RateLimiter } from '@libp2p/utils'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

/** Why a connection or reservation was refused. */
export type RefusalReason =
  | 'max-connections' // `maxConnections` connections are open
  | 'connection-rate' // the IP opened `inboundConnectionThreshold` connections in the last second
  | 'max-reservations' // `maxReservations` reservations are held (answered RESERVATION_REFUSED)
  | 'reservations-per-ip' // peers on that IP hold `maxReservationsPerIp` reservations (PERMISSION_DENIED)
  | 'shutting-down' // the relay is stopping

export const REFUSAL_REASONS: RefusalReason[] = ['max-connections', 'connection-rate', 'max-reservations', 'reservations-per-ip', 'shutting-down']

export interface Refusal {
  /** What was refused. */
  kind: 'connection' | 'reservation'
  reason: RefusalReason
  /** The remote IP address. */
  ip?: string
  /** The remote peer (reservations only: a connection is refused before its peer is known). */
  peerId?: string
}

export interface LimitsInit {
  maxConnections: number
  /** Inbound connections per second per IP. */
  inboundConnectionThreshold: number
  maxReservations: number
  maxReservationsPerIp: number
  /** Called on every refusal. */
  onRefuse(refusal: Refusal): void
}

/** Running totals, read by metrics.ts and `status()`. */
export interface LimitCounts {
  /** Inbound connections that reached the relay's admission check. */
  connectionAttempts: number
  /** Inbound connections admitted that completed encryption and multiplexing. */
  connectionSuccesses: number
  /** Inbound connections admitted that closed before completing their upgrade. */
  connectionFailures: number
  /** New reservations (refreshes of a held one not counted). */
  reservationsOpened: number
  refusals: Record<RefusalReason, number>
}

export interface Limits {
  /** To pass as libp2p's `connectionGater`. */
  readonly gater: ConnectionGater
  readonly counts: LimitCounts
  /** Starts enforcing on `libp2p`, which was created with `gater`. */
  attach(libp2p: Libp2p<{ relay: CircuitRelayService }>): void
  /** Refuses every connection and reservation from now on: the relay is shutting down. */
  close(): void
}

export function createLimits (init: LimitsInit): Limits {
  return new RelayLimits(init)
}

class RelayLimits implements Limits {
  readonly gater: ConnectionGater
  readonly counts: LimitCounts = {
    connectionAttempts: 0,
    connectionSuccesses: 0,
    connectionFailures: 0,
    reservationsOpened: 0,
    refusals: Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>
  }

  private readonly init: LimitsInit
  private readonly rate: RateLimiter
  private readonly upgraded = new WeakSet<MultiaddrConnection>()
  private libp2p?: Libp2p<{ relay: CircuitRelayService }>
  private closing = false

  constructor (init: LimitsInit) {
    this.init = init
    this.rate = new RateLimiter({ points: init.inboundConnectionThreshold, duration: 1 })
    this.gater = {
      denyInboundConnection: (maConn) => this.denyConnection(maConn),
      denyInboundUpgradedConnection: (_peer, maConn) => {
        this.upgraded.add(maConn)
        this.counts.connectionSuccesses++
        return false
      },
      denyInboundRelayReservation: (peer) => this.denyReservation(peer)
    }
  }

  attach (libp2p: Libp2p<{ relay: CircuitRelayService }>): void {
    this.libp2p = libp2p
    libp2p.addEventListener('peer:disconnect', (evt) => { this.dropReservation(evt.detail) })
  }

  close (): void {
    this.closing = true
  }

  private refuse (refusal: Refusal): true {
    this.counts.refusals[refusal.reason]++
    this.init.onRefuse(refusal)
    return true
  }

  private denyConnection (maConn: MultiaddrConnection): boolean {
    this.counts.connectionAttempts++
    const ip = ipOf(maConn.remoteAddr)
    if (this.closing) return this.refuse({ kind: 'connection', reason: 'shutting-down', ip })
    if (ip !== undefined && !this.consume(ip)) return this.refuse({ kind: 'connection', reason: 'connection-rate', ip })
    if ((this.libp2p?.getConnections().length ?? 0) >= this.init.maxConnections) {
      return this.refuse({ kind: 'connection', reason: 'max-connections', ip })
    }
    maConn.addEventListener('close', () => {
      if (!this.upgraded.has(maConn)) this.counts.connectionFailures++
    }, { once: true })
    return false
  }

  private consume (ip: string): boolean {
    try {
      this.rate.consume(ip)
      return true
    } catch {
      return false
    }
  }

  private denyReservation (peer: PeerId): boolean {
    const libp2p = this.libp2p
    if (libp2p === undefined) return true
    const peerId = peer.toString()
    const ip = ipOf(libp2p.getConnections(peer).find((c) => c.limits == null)?.remoteAddr)
    if (this.closing) return this.refuse({ kind: 'reservation', reason: 'shutting-down', ip, peerId })
    const reservations = libp2p.services.relay.reservations
    if (ip !== undefined) {
      let sameIp = 0
      for (const [other, reservation] of reservations) {
        if (!other.equals(peer) && ipOf(reservation.addr) === ip) sameIp++
      }
      if (sameIp >= this.init.maxReservationsPerIp) return this.refuse({ kind: 'reservation', reason: 'reservations-per-ip', ip, peerId })
    }
    // A refresh replaces the held reservation instead of letting libp2p re-time it:
    // retimeable-signal 1.0.1's reset() leaves the previous timer armed, so a reservation refreshed
    // twice still expired at its first refresh + TTL (and clear() cannot disarm it), which dropped
    // long-lived tabs off the relay. A reservation that is never re-timed can be disarmed.
    const held = reservations.get(peer)
    if (held !== undefined) this.dropReservation(peer)
    // libp2p's reservation store decides right after this returns (it answers RESERVATION_REFUSED
    // when `maxReservations` are held); look once it has
    setImmediate(() => {
      if (!reservations.has(peer)) this.refuse({ kind: 'reservation', reason: 'max-reservations', ip, peerId })
      else if (held === undefined) this.counts.reservationsOpened++
    })
    return false
  }

  private dropReservation (peer: PeerId): void {
    const reservations = this.libp2p?.services.relay.reservations
    const reservation = reservations?.get(peer)
    if (reservation === undefined) return
    // its expiry would otherwise delete whatever reservation the peer holds by then
    reservation.signal.clear()
    reservations?.delete(peer)
  }
}

/** The IP address of a multiaddr (an IPv4-mapped IPv6 address as IPv4), if it has one. */
export function ipOf (ma: Multiaddr | undefined): string | undefined {
  const ip = ma?.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
  return ip?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1')
}
