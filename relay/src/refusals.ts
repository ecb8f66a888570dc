/**
 * Every refusal of the relay has a named reason, counted (`p2p_rooms_relay_refusals_total{reason}`,
 * `/status` `counters.refusals`) and reported as a `<kind>:refuse` event, which the binary logs.
 * Counts only: a refusal never names a room. Errors the relay survived are counted here too.
 */

/** Why a connection, reservation, room, announcement or HTTP request was refused. */
export type RefusalReason =
  | 'max-connections' // `maxConnections` connections (idle sockets and handshakes included) are open
  | 'connection-rate' // the IP opened `inboundConnectionThreshold` connections in the last second
  | 'handshakes-per-ip' // the IP has `MAX_HANDSHAKES_PER_IP` connections mid-handshake
  | 'handshake-timeout' // a connection did not finish its upgrade within `handshakeTimeout`
  | 'outbound-buffer' // a peer did not read what it was sent: `MAX_OUTBOUND_BUFFER_BYTES` queued
  | 'max-reservations' // `maxReservations` reservations are held (answered RESERVATION_REFUSED)
  | 'reservations-per-ip' // peers on that IP hold `maxReservationsPerIp` reservations (PERMISSION_DENIED)
  | 'max-rooms' // `maxRooms` rooms are followed: a new room is not
  | 'rooms-per-peer' // the peer has `maxRoomsPerPeer` rooms followed: its next subscription is not counted
  | 'rooms-per-ip' // the peers of its IP have `maxRoomsPerIp` rooms followed
  | 'announcement-rate' // the peer sent announcements faster than `announcementsPerSecond`
  | 'http-connections' // `HTTP_MAX_CONNECTIONS` HTTP connections are open
  | 'http-malformed' // a request the HTTP parser, or the relay, could not make sense of (400, 431)
  | 'http-timeout' // a request's headers or body did not arrive in time (408)
  | 'ice-origin' // `/ice-servers` asked from a page whose origin is not in `iceOrigins` (403)
  | 'ice-rate' // `/ice-servers` asked more than `iceRateLimit` times a minute from one IP (429)
  | 'shutting-down' // the relay is stopping

export const REFUSAL_REASONS: RefusalReason[] = [
  'max-connections', 'connection-rate', 'handshakes-per-ip', 'handshake-timeout', 'outbound-buffer',
  'max-reservations', 'reservations-per-ip', 'max-rooms', 'rooms-per-peer', 'rooms-per-ip', 'announcement-rate',
  'http-connections', 'http-malformed', 'http-timeout', 'ice-origin', 'ice-rate', 'shutting-down'
]

/** What was refused. */
export type RefusalKind = 'connection' | 'reservation' | 'room' | 'announcement' | 'http'

export interface Refusal {
  kind: RefusalKind
  reason: RefusalReason
  /** The remote IP address, when known. */
  ip?: string
  /** The remote peer, when known (a connection is refused before its peer is known). */
  peerId?: string
}

/** Where an error the relay survived came from. */
export type ErrorSource = 'uncaught-exception' | 'unhandled-rejection' | 'http' | 'identity-lock' | 'libp2p'

export const ERROR_SOURCES: ErrorSource[] = ['uncaught-exception', 'unhandled-rejection', 'http', 'identity-lock', 'libp2p']

/** Running totals of refusals by reason and survived errors by source. */
export interface RefusalCounts {
  refusals: Record<RefusalReason, number>
  errors: Record<ErrorSource, number>
}

export interface RefusalCounter {
  readonly counts: RefusalCounts
  /** Counts `refusal` and reports it. */
  refuse(refusal: Refusal): void
  /** Counts an error survived. */
  error(source: ErrorSource): void
}

export function createRefusalCounter (onRefuse: (refusal: Refusal) => void): RefusalCounter {
  const counts: RefusalCounts = {
    refusals: Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>,
    errors: Object.fromEntries(ERROR_SOURCES.map((s) => [s, 0])) as Record<ErrorSource, number>
  }
  return {
    counts,
    refuse (refusal) {
      counts.refusals[refusal.reason]++
      onRefuse(refusal)
    },
    error (source) {
      counts.errors[source]++
    }
  }
}

/**
 * The address a per-IP limit counts: an IPv4 address as it is (an IPv4-mapped IPv6 address as
 * IPv4), an IPv6 address as its /64, the smallest network one subscriber usually gets
 * (RFC 6177): anyone can pick from 2^64 addresses in it.
 */
export function ipKey (ip: string | undefined): string | undefined {
  if (ip === undefined || ip === '') return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped !== null) return mapped[1]
  if (!ip.includes(':')) return ip
  const groups = expandIpv6(ip.split('%')[0])
  if (groups === undefined) return ip
  return `${groups.slice(0, 4).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function expandIpv6 (ip: string): string[] | undefined {
  const halves = ip.toLowerCase().split('::')
  if (halves.length > 2) return undefined
  const parse = (part: string): string[] => part === '' ? [] : part.split(':')
  let head = parse(halves[0])
  let tail = halves.length === 2 ? parse(halves[1]) : []
  // a trailing dotted IPv4 part is two groups
  const last = (halves.length === 2 ? tail : head).at(-1)
  if (last?.includes('.') === true) {
    const octets = last.split('.').map(Number)
    if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return undefined
    const groups = [((octets[0] << 8) | octets[1]).toString(16), ((octets[2] << 8) | octets[3]).toString(16)]
    if (halves.length === 2) tail = [...tail.slice(0, -1), ...groups]
    else head = [...head.slice(0, -1), ...groups]
  }
  const missing = 8 - head.length - tail.length
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined
  const groups = [...head, ...Array<string>(missing).fill('0'), ...tail]
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined
  return groups.map((g) => g.replace(/^0+(?=.)/, ''))
}
