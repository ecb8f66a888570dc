/**
 * The relay's own Prometheus metrics, next to libp2p's in one registry. Every value is read from
 * the plain counters the relay's parts keep (limits.ts, circuits.ts, the room follower) when
 * Prometheus scrapes, so those parts stay free of prom-client. No metric carries a room name,
 * topic or peer ID: rooms can be private.
 */
import { Counter, Gauge } from 'prom-client'
import { CIRCUIT_ENDS } from './circuits.js'
import { ERROR_SOURCES, REFUSAL_REASONS } from './refusals.js'
import type { CircuitCounts } from './circuits.js'
import type { LimitCounts } from './limits.js'
import type { RefusalCounts } from './refusals.js'
import type { Registry } from 'prom-client'

export interface MetricSources {
  limits: LimitCounts
  refusals: RefusalCounts
  circuits: CircuitCounts
  /** Connections opened and closed, all directions. */
  connections: { opened: number, closed: number }
  /** Reservations whose peer is connected. */
  reservations(): number
  /** Inbound TCP connections in their handshake. */
  handshakes(): number
  roomsFollowed(): number
  /** Peers counted in a followed room. */
  roomMembers(): number
  federatedRelays(): number
  /** Relay records seen, by verdict. */
  relayRecords: { accepted: number, ignored: number, rejected: number }
  announcementsRejected(): number
  /** Connections closed for a missing gossipsub stream (src/pubsub-streams.ts). */
  pubsubStreamLosses(): number
}

/** A counter whose value is read from `read` at scrape time. */
function counter (registry: Registry, name: string, help: string, read: () => number): void {
  registry.registerMetric(new Counter({
    name,
    help,
    registers: [],
    collect () {
      this.reset()
      this.inc(read())
    }
  }))
}

/** A counter with one label, each value read from `read` at scrape time. */
function labelledCounter (registry: Registry, name: string, help: string, label: string, read: () => Record<string, number>): void {
  registry.registerMetric(new Counter({
    name,
    help,
    labelNames: [label],
    registers: [],
    collect () {
      this.reset()
      for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n)
    }
  }))
}

function gauge (registry: Registry, name: string, help: string, read: () => number): void {
  registry.registerMetric(new Gauge({ name, help, registers: [], collect () { this.set(read()) } }))
}

/** Registers every `p2p_rooms_relay_*` metric in `registry`. */
export function registerRelayMetrics (registry: Registry, s: MetricSources): void {
  // underscores in label values, as Prometheus label values usually are
  const snake = (r: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.replace(/-/g, '_'), v]))

  labelledCounter(registry, 'p2p_rooms_relay_connections_total', 'Connections opened and closed (event="open"|"close"), all directions', 'event',
    () => ({ open: s.connections.opened, close: s.connections.closed }))
  counter(registry, 'p2p_rooms_relay_connection_attempts_total', 'Inbound connections that reached the admission check', () => s.limits.connectionAttempts)
  counter(registry, 'p2p_rooms_relay_connection_successes_total', 'Inbound connections admitted that completed encryption and multiplexing', () => s.limits.connectionSuccesses)
  counter(registry, 'p2p_rooms_relay_connection_failures_total', 'Inbound connections admitted that closed before completing their upgrade', () => s.limits.connectionFailures)
  labelledCounter(registry, 'p2p_rooms_relay_refusals_total', `Connections, reservations, rooms, announcements and HTTP requests refused, by reason (${REFUSAL_REASONS.map((r) => r.replace(/-/g, '_')).join(', ')})`, 'reason',
    () => snake(s.refusals.refusals))
  labelledCounter(registry, 'p2p_rooms_relay_errors_total', `Errors the relay survived, each logged, by source (${ERROR_SOURCES.map((r) => r.replace(/-/g, '_')).join(', ')})`, 'source',
    () => snake(s.refusals.errors))
  gauge(registry, 'p2p_rooms_relay_handshakes', 'Inbound TCP connections not yet upgraded to libp2p connections (counted toward --max-connections)', s.handshakes)

  gauge(registry, 'p2p_rooms_relay_reservations', 'Circuit-relay reservations whose peer is connected', s.reservations)
  counter(registry, 'p2p_rooms_relay_reservations_opened_total', 'New circuit-relay reservations (refreshes not counted)', () => s.limits.reservationsOpened)

  counter(registry, 'p2p_rooms_relay_circuits_opened_total', 'Relayed connections (circuits) opened to a reserved peer', () => s.circuits.opened)
  gauge(registry, 'p2p_rooms_relay_circuits', 'Relayed connections (circuits) open now', () => s.circuits.open)
  labelledCounter(registry, 'p2p_rooms_relay_circuits_closed_total', `Circuits closed, by who closed them (${CIRCUIT_ENDS.map((e) => e.replace(/-/g, '_')).join(', ')})`, 'by',
    () => snake(s.circuits.closed))
  counter(registry, 'p2p_rooms_relay_webrtc_upgrades_total', 'Estimate: circuits closed by an endpoint within half the duration limit, as a room node does once its direct WebRTC connection is up', () => s.circuits.upgrades)

  gauge(registry, 'p2p_rooms_relay_rooms_followed', 'Room discovery topics followed', s.roomsFollowed)
  gauge(registry, 'p2p_rooms_relay_room_members', 'Peers counted in at least one followed room', s.roomMembers)
  gauge(registry, 'p2p_rooms_relay_federated_relays', 'Relays federated with and connected', s.federatedRelays)
  labelledCounter(registry, 'p2p_rooms_relay_relay_records_total', 'Relay records seen on the relays topic, by verdict (accepted: trusted; ignored: valid, not trusted; rejected: malformed or forged)', 'verdict',
    () => ({ ...s.relayRecords }))
  counter(registry, 'p2p_rooms_relay_announcements_rejected_total', 'Discovery messages rejected as malformed, oversized or not their sender\'s own', s.announcementsRejected)
  counter(registry, 'p2p_rooms_relay_pubsub_stream_losses_total', 'Connections closed because they lacked a gossipsub stream each way past the grace, or lost one', s.pubsubStreamLosses)
}
