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
import { MAX_HANDSHAKES_PER_IP, MAX_OUTBOUND_BUFFER_BYTES } from './constants.js'
import { ipKey } from './refusals.js'
import type { Refusal, RefusalCounter } from './refusals.js'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import type { Socket } from 'node:net'

export type { Refusal, RefusalReason } from './refusals.js'

export interface LimitsInit {
  /** Connections held at once, counting sockets mid-handshake. */
  maxConnections: number
  /** ms a socket may take to become a libp2p connection. */
  handshakeTimeout: number
  /** Inbound connections per second per IP. */
  inboundConnectionThreshold: number
  maxReservations: number
  maxReservationsPerIp: number
  /** Counts and reports every refusal. */
  refusals: RefusalCounter
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
}

export interface Limits {
  /** To pass as libp2p's `connectionGater`. */
  readonly gater: ConnectionGater
  readonly counts: LimitCounts
  /** Starts enforcing on `libp2p`, which was created with `gater`. */
  attach(libp2p: Libp2p<{ relay: CircuitRelayService }>): void
  /**
   * Admits or closes a TCP connection the WebSockets listener just accepted (sockets.ts), before
   * it sends a byte: it counts toward `maxConnections` from now, and is closed if it has not
   * become a libp2p connection within `handshakeTimeout`.
   */
  admitSocket(socket: Socket): void
  /** Sockets admitted that are not libp2p connections yet. */
  readonly handshakes: number
  /** Refuses every connection and reservation from now on: the relay is shutting down. */
  close(): void
}

export function createLimits (init: LimitsInit): Limits {
  return new RelayLimits(init)
}

/** A socket the WebSockets listener accepted that is not a libp2p connection yet. */
interface Handshake {
  socket: Socket
  /** the per-IP key (ipKey) it counts under */
  ip: string | undefined
  timer: ReturnType<typeof setTimeout>
}

class RelayLimits implements Limits {
  readonly gater: ConnectionGater
  readonly counts: LimitCounts = {
    connectionAttempts: 0,
    connectionSuccesses: 0,
    connectionFailures: 0,
    reservationsOpened: 0
  }

  private readonly init: LimitsInit
  private readonly rate: RateLimiter
  private readonly upgraded = new WeakSet<MultiaddrConnection>()
  /** sockets admitted and mid-handshake, by `address:port` */
  private readonly pending = new Map<string, Handshake>()
  /** sockets mid-handshake per IP key */
  private readonly pendingPerIp = new Map<string, number>()
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
        this.settle(maConn)
        this.boundOutbound(maConn)
        return false
      },
      denyOutboundUpgradedConnection: (_peer, maConn) => {
        this.boundOutbound(maConn)
        return false
      },
      denyInboundRelayReservation: (peer) => this.denyReservation(peer)
    }
  }

  get handshakes (): number {
    return this.pending.size
  }

  attach (libp2p: Libp2p<{ relay: CircuitRelayService }>): void {
    this.libp2p = libp2p
    libp2p.addEventListener('peer:disconnect', (evt) => { this.dropReservation(evt.detail) })
  }

  close (): void {
    this.closing = true
  }

  private refuse (refusal: Refusal): true {
    this.init.refusals.refuse(refusal)
    return true
  }

  admitSocket (socket: Socket): void {
    const address = normalise(socket.remoteAddress)
    const ip = ipKey(address)
    const refused = (reason: Refusal['reason']): void => {
      this.counts.connectionAttempts++
      this.refuse({ kind: 'connection', reason, ip: address })
      socket.destroy()
    }
    if (this.closing) return refused('shutting-down')
    if (ip !== undefined && !this.consume(ip)) return refused('connection-rate')
    if (this.pending.size + (this.libp2p?.getConnections().length ?? 0) >= this.init.maxConnections) return refused('max-connections')
    if (ip !== undefined && (this.pendingPerIp.get(ip) ?? 0) >= MAX_HANDSHAKES_PER_IP) return refused('handshakes-per-ip')
    const key = `${address}:${socket.remotePort}`
    const timer = setTimeout(() => {
      if (this.pending.get(key)?.socket !== socket) return
      this.refuse({ kind: 'connection', reason: 'handshake-timeout', ip: address })
      socket.destroy()
    }, this.init.handshakeTimeout)
    this.pending.set(key, { socket, ip, timer })
    if (ip !== undefined) this.pendingPerIp.set(ip, (this.pendingPerIp.get(ip) ?? 0) + 1)
    socket.once('close', () => { this.forget(key, socket) })
  }

  /** The socket of `maConn` became a libp2p connection: it is counted as one from now on. */
  private settle (maConn: MultiaddrConnection): void {
    const key = socketKey(maConn.remoteAddr)
    const handshake = key === undefined ? undefined : this.pending.get(key)
    if (key !== undefined && handshake !== undefined) this.forget(key, handshake.socket)
  }

  private forget (key: string, socket: Socket): void {
    const handshake = this.pending.get(key)
    if (handshake?.socket !== socket) return
    clearTimeout(handshake.timer)
    this.pending.delete(key)
    if (handshake.ip === undefined) return
    const left = (this.pendingPerIp.get(handshake.ip) ?? 1) - 1
    if (left <= 0) this.pendingPerIp.delete(handshake.ip)
    else this.pendingPerIp.set(handshake.ip, left)
  }

  /**
   * A peer that does not read must not make the relay queue without bound: libp2p leaves a
   * connection's write buffer unbounded, so it is bounded here and the connection aborted past it.
   */
  private boundOutbound (maConn: MultiaddrConnection): void {
    maConn.maxWriteBufferLength = MAX_OUTBOUND_BUFFER_BYTES
    maConn.addEventListener('close', (evt) => {
      if (evt.error?.name === 'StreamBufferError') {
        this.refuse({ kind: 'connection', reason: 'outbound-buffer', ip: ipOf(maConn.remoteAddr) })
      }
    }, { once: true })
  }

  private denyConnection (maConn: MultiaddrConnection): boolean {
    const key = socketKey(maConn.remoteAddr)
    const admitted = key !== undefined && this.pending.has(key)
    const ip = ipOf(maConn.remoteAddr)
    // a socket admitted by admitSocket was counted and checked then: only a listener
    // sockets.ts could not guard is checked here
    if (!admitted) {
      this.counts.connectionAttempts++
      if (this.closing) return this.refuse({ kind: 'connection', reason: 'shutting-down', ip })
      const k = ipKey(ip)
      if (k !== undefined && !this.consume(k)) return this.refuse({ kind: 'connection', reason: 'connection-rate', ip })
      if ((this.libp2p?.getConnections().length ?? 0) >= this.init.maxConnections) {
        return this.refuse({ kind: 'connection', reason: 'max-connections', ip })
      }
    } else {
      this.counts.connectionAttempts++
      if (this.closing) return this.refuse({ kind: 'connection', reason: 'shutting-down', ip })
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
    const key = ipKey(ip)
    if (key !== undefined) {
      let sameIp = 0
      for (const [other, reservation] of reservations) {
        if (!other.equals(peer) && ipKey(ipOf(reservation.addr)) === key) sameIp++
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
  return normalise(ma?.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value)
}

function normalise (ip: string | undefined): string | undefined {
  return ip?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1')
}

/** `address:port` of a multiaddr's IP and TCP port, as admitSocket keys a socket. */
function socketKey (ma: Multiaddr): string | undefined {
  const components = ma.getComponents()
  const ip = ipOf(ma)
  const port = components.find((c) => c.name === 'tcp')?.value
  return ip === undefined || port === undefined ? undefined : `${ip}:${port}`
}
