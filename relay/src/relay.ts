/**
 * The relay behind `createRelay`: its libp2p node (node-config.ts) and what is wired around it,
 * the limits and refusal counts (limits.ts, refusals.ts), the room follower (room-follower.ts),
 * circuit tracking (circuits.ts) and metrics (metrics.ts). Not exported from the package.
 */
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { TypedEventEmitter } from 'main-event'
import { RELAY_PUBSUB_GRACE_MS } from 'p2p-rooms/constants'
import { PubSubStreamGuard } from 'p2p-rooms/pubsub-streams'
import { peerIdOf } from 'p2p-rooms/relay-records'
import { Registry } from 'prom-client'
import { trackCircuits } from './circuits.js'
import {
  ANNOUNCEMENT_CACHE_TTL_MS, CONNECTION_CLOSE_TIMEOUT_MS, DEFAULT_ANNOUNCEMENTS_PER_SECOND, DEFAULT_CIRCUIT_DATA_LIMIT_BYTES,
  DEFAULT_CIRCUIT_DURATION_LIMIT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_INBOUND_CONNECTION_THRESHOLD, DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_RESERVATIONS, DEFAULT_MAX_RESERVATIONS_PER_IP, DEFAULT_MAX_ROOMS, DEFAULT_MAX_ROOMS_PER_IP, DEFAULT_MAX_ROOMS_PER_PEER,
  DEFAULT_PING_INTERVAL_MS, DEFAULT_ROOM_TTL_MS, MAX_CACHED_ANNOUNCEMENTS, MAX_CACHED_ANNOUNCEMENTS_PER_ROOM
} from './constants.js'
import { InvalidConfigError } from './errors.js'
import { createLimits, ipOf } from './limits.js'
import { registerRelayMetrics } from './metrics.js'
import { relayNodeConfig } from './node-config.js'
import { createRefusalCounter, ipKey } from './refusals.js'
import { RoomFollower } from './room-follower.js'
import type { CircuitTracker } from './circuits.js'
import type { Relay, RelayEvents, RelayInit, RelayStatus, TransferBytes } from './index.js'
import type { Limits } from './limits.js'
import type { RelayServices } from './node-config.js'
import type { ErrorSource, Refusal, RefusalCounter } from './refusals.js'
import type { Logger, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

/** Every option of `RelayInit` with a default, resolved. */
export type RelayOptions = ReturnType<typeof resolveOptions>

/**
 * `init` with its defaults filled in, `peers` parsed.
 *
 * @throws InvalidConfigError when `peers` names this relay itself
 */
export function resolveOptions (init: RelayInit) {
  const options = {
    maxReservations: init.maxReservations ?? DEFAULT_MAX_RESERVATIONS,
    maxReservationsPerIp: init.maxReservationsPerIp ?? DEFAULT_MAX_RESERVATIONS_PER_IP,
    maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    handshakeTimeout: init.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    inboundConnectionThreshold: init.inboundConnectionThreshold ?? DEFAULT_INBOUND_CONNECTION_THRESHOLD,
    circuitDurationLimit: init.circuitDurationLimit ?? DEFAULT_CIRCUIT_DURATION_LIMIT_MS,
    circuitDataLimit: init.circuitDataLimit ?? DEFAULT_CIRCUIT_DATA_LIMIT_BYTES,
    maxRooms: init.maxRooms ?? DEFAULT_MAX_ROOMS,
    maxRoomsPerPeer: init.maxRoomsPerPeer ?? DEFAULT_MAX_ROOMS_PER_PEER,
    maxRoomsPerIp: init.maxRoomsPerIp ?? DEFAULT_MAX_ROOMS_PER_IP,
    announcementsPerSecond: init.announcementsPerSecond ?? DEFAULT_ANNOUNCEMENTS_PER_SECOND,
    roomTtl: init.roomTtl ?? DEFAULT_ROOM_TTL_MS,
    pingInterval: init.pingInterval ?? DEFAULT_PING_INTERVAL_MS
  }
  const peers = (init.peers ?? []).map((p) => multiaddr(p))
  if (init.privateKey !== undefined) {
    const self = peerIdFromPrivateKey(init.privateKey).toString()
    const own = peers.find((ma) => peerIdOf(ma) === self)
    if (own !== undefined) throw new InvalidConfigError(`--peer ${own.toString()} is this relay itself (peer ID ${self}, from its --identity): give the other relays' multiaddrs`)
  }
  return { ...options, peers }
}

/**
 * A relay. `start()` builds and starts its libp2p node; `stop()` refuses newcomers, closes every
 * connection and stops the node. Both are idempotent; a stopped relay is not started again (its
 * limits and trackers are closed for good).
 */
export class RelayServer extends TypedEventEmitter<RelayEvents> implements Relay, Startable {
  private readonly init: RelayInit
  private readonly options: RelayOptions
  readonly registry = new Registry()
  private readonly refusals: RefusalCounter
  private readonly limits: Limits
  private readonly connections = { opened: 0, closed: 0 }
  private node?: Libp2p<RelayServices>
  private follower?: RoomFollower
  private pubsubStreams?: PubSubStreamGuard
  private circuits?: CircuitTracker
  private log?: Logger
  private startedAt = 0
  private state: 'new' | 'starting' | 'started' | 'stopped' = 'new'
  private starting?: Promise<void>

  /** @throws InvalidConfigError when `init.peers` names this relay itself */
  constructor (init: RelayInit) {
    super()
    this.init = init
    this.options = resolveOptions(init)
    this.refusals = createRefusalCounter((refusal) => { this.safeDispatchEvent(`${refusal.kind}:refuse`, { detail: refusal }) })
    this.limits = createLimits({ ...this.options, refusals: this.refusals })
  }

  get libp2p (): Libp2p<RelayServices> {
    if (this.node === undefined) throw new Error('the relay was never started')
    return this.node
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  isStarted (): boolean {
    return this.state === 'started'
  }

  async start (): Promise<void> {
    if (this.state === 'new') {
      this.state = 'starting'
      this.starting = this.build()
    }
    await this.starting
  }

  private async build (): Promise<void> {
    const { init, options, limits, refusals } = this
    const libp2p = this.node = await createLibp2p(relayNodeConfig({
      ...options,
      listen: init.listen,
      announce: init.announce,
      privateKey: init.privateKey,
      tls: init.tls,
      federationKey: init.federationKey,
      limits,
      registry: this.registry,
      onFederate: (peerId) => { this.follower?.forget(peerId) },
      onUnguarded: (err) => {
        refusals.error('libp2p')
        this.log?.error('%s', err.message)
      }
    }))
    const log = this.log = libp2p.logger.forComponent('p2p-rooms:relay')
    const follower = this.follower = new RoomFollower(libp2p.services.pubsub, {
      maxRooms: options.maxRooms,
      maxRoomsPerPeer: options.maxRoomsPerPeer,
      maxRoomsPerIp: options.maxRoomsPerIp,
      announcementsPerSecond: options.announcementsPerSecond,
      roomTtl: options.roomTtl,
      maxCachedPerRoom: MAX_CACHED_ANNOUNCEMENTS_PER_ROOM,
      maxCached: MAX_CACHED_ANNOUNCEMENTS,
      announcementTtl: ANNOUNCEMENT_CACHE_TTL_MS,
      log,
      refusals,
      ignore: (peer) => libp2p.services.federation.isRelay(peer),
      ipOf: (peerId) => ipKey(ipOf(libp2p.getConnections().find((c) => c.remotePeer.toString() === peerId && c.limits == null)?.remoteAddr))
    })
    follower.start()
    libp2p.addEventListener('peer:disconnect', (evt) => { follower.forget(evt.detail.toString()) })
    // a peer's connection that lost a gossipsub stream is closed, as tabs close theirs: gossipsub
    // never opens that stream again on the same connection (libp2p/js-libp2p#2771), and a tab or a
    // federated relay we can no longer tell, or hear, is a room that silently stops meeting
    const pubsubStreams = this.pubsubStreams = new PubSubStreamGuard({ events: libp2p, log }, { protocols: libp2p.services.pubsub.protocols, graceMs: RELAY_PUBSUB_GRACE_MS })
    pubsubStreams.start()
    limits.attach(libp2p)
    const circuits = this.circuits = trackCircuits(libp2p, { durationLimit: options.circuitDurationLimit })
    libp2p.addEventListener('connection:open', () => { this.connections.opened++ })
    libp2p.addEventListener('connection:close', () => { this.connections.closed++ })
    registerRelayMetrics(this.registry, {
      limits: limits.counts,
      refusals: refusals.counts,
      circuits: circuits.counts,
      connections: this.connections,
      reservations: () => this.liveReservations(),
      handshakes: () => limits.handshakes,
      roomsFollowed: () => follower.size,
      roomMembers: () => follower.peers,
      federatedRelays: () => libp2p.services.federation.peers().length,
      relayRecords: libp2p.services.federation.records,
      announcementsRejected: () => follower.rejected,
      pubsubStreamLosses: () => pubsubStreams.aborted
    })
    await libp2p.start()
    this.startedAt = Date.now()
    // stopped while starting: the stop waited for this start, and takes over now
    if (this.state === 'starting') this.state = 'started'
  }

  async stop (): Promise<void> {
    if (this.state === 'stopped' || this.state === 'new') {
      this.state = 'stopped'
      return
    }
    this.state = 'stopped'
    await this.starting
    const libp2p = this.libp2p
    // refuse newcomers, then close connections cleanly before the listeners go: closing a
    // WebSockets listener destroys the sockets of every connection it accepted
    this.limits.close()
    this.circuits?.close()
    this.follower?.stop()
    this.pubsubStreams?.stop()
    await Promise.all(libp2p.getConnections().map(async (conn) => {
      try {
        await conn.close({ signal: AbortSignal.timeout(CONNECTION_CLOSE_TIMEOUT_MS) })
      } catch (err: any) {
        conn.abort(err)
      }
    }))
    await libp2p.stop()
  }

  getMultiaddrs (): string[] {
    return this.libp2p.getMultiaddrs().map((ma: Multiaddr) => ma.toString())
  }

  countRefusal (refusal: Refusal): void {
    this.refusals.refuse(refusal)
  }

  countError (source: ErrorSource): void {
    this.refusals.error(source)
  }

  renewCertificate (tls: { cert: string, key: string }): void {
    this.libp2p.services.certificates.renew(tls)
  }

  async status (): Promise<RelayStatus> {
    const { libp2p, limits, refusals } = this
    const follower = this.follower as RoomFollower
    const circuits = this.circuits as CircuitTracker
    // what /status reports as the limits in force (the ping interval is not a limit, peers no number)
    const { pingInterval: _pingInterval, peers: _peers, ...inForce } = this.options
    const roomsRefused = refusals.counts.refusals['max-rooms'] + refusals.counts.refusals['rooms-per-peer'] + refusals.counts.refusals['rooms-per-ip']
    return {
      peerId: libp2p.peerId.toString(),
      multiaddrs: this.getMultiaddrs(),
      connectedPeers: libp2p.getPeers().length,
      connections: libp2p.getConnections().length,
      reservations: this.liveReservations(),
      roomsFollowed: follower.size,
      roomMembers: follower.peers,
      handshakes: limits.handshakes,
      federatedRelays: libp2p.services.federation.peers(),
      uptimeMs: Date.now() - this.startedAt,
      counters: {
        connectionsOpened: this.connections.opened,
        connectionsClosed: this.connections.closed,
        roomsRefused,
        announcementsRejected: follower.rejected,
        pubsubStreamLosses: this.pubsubStreams?.aborted ?? 0,
        ...limits.counts,
        refusals: { ...refusals.counts.refusals },
        errors: { ...refusals.counts.errors },
        circuits: structuredClone(circuits.counts)
      },
      limits: inForce,
      transfer: await transferBytes(this.registry, this.libp2p.services.pubsub.protocols)
    }
  }

  /** Reservations whose peer is still connected: limits.ts drops the others on disconnect, this covers the moment between. */
  private liveReservations (): number {
    const libp2p = this.libp2p
    return [...libp2p.services.relay.reservations.keys()].filter((p) => libp2p.getConnections(p).length > 0).length
  }
}

/**
 * Reads libp2p's per-protocol byte counters (`libp2p_data_transfer_bytes_total`): the hop
 * protocol's are `circuit`, those of gossipsub's `pubsubProtocols` (what it speaks) `pubsub`.
 */
async function transferBytes (registry: Registry, pubsubProtocols: string[]): Promise<TransferBytes> {
  const out: TransferBytes = { circuit: { sent: 0, received: 0 }, pubsub: { sent: 0, received: 0 } }
  const metric = registry.getSingleMetric('libp2p_data_transfer_bytes_total')
  if (metric === undefined) return out
  for (const { labels, value } of (await metric.get()).values) {
    const [protocol, direction] = String(labels.protocol).split(' ') as [string, 'sent' | 'received']
    if (direction !== 'sent' && direction !== 'received') continue
    if (protocol === RELAY_V2_HOP_CODEC) out.circuit[direction] += value
    else if (pubsubProtocols.includes(protocol)) out.pubsub[direction] += value
  }
  return out
}
