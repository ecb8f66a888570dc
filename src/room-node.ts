/**
 * The room node: one libp2p node, reservations on the configured relays, and the rooms joined.
 * It routes libp2p and gossipsub events to the rooms they concern.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { InvalidRoomNameError, NoRelaysError, ReservationTimeoutError, RoomClosedError } from './errors.js'
import { roomNodeConfig } from './node-config.js'
import { RoomImpl } from './room.js'
import type { ResolvedRoomNodeOptions, Room, RoomNode } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Logger, PrivateKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

const MAX_ROOM_NAME_LENGTH = 256

export class RoomNodeImpl implements RoomNode {
  readonly libp2p: Libp2p<RoomNodeServices>
  readonly reservationMs: number
  private readonly options: ResolvedRoomNodeOptions
  private readonly log: Logger
  private readonly joined = new Map<string, RoomImpl>()
  private stopped = false

  constructor (libp2p: Libp2p<RoomNodeServices>, options: ResolvedRoomNodeOptions, reservationMs: number) {
    this.libp2p = libp2p
    this.options = options
    this.reservationMs = reservationMs
    this.log = libp2p.logger.forComponent('p2p-rooms:node')
    this.wire()
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  async joinRoom (name: string): Promise<Room> {
    if (this.stopped) throw new RoomClosedError('the room node was stopped')
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_ROOM_NAME_LENGTH) {
      throw new InvalidRoomNameError(`a room name is a string of 1 to ${MAX_ROOM_NAME_LENGTH} characters`)
    }
    let room = this.joined.get(name)
    if (room === undefined) {
      room = new RoomImpl(name, {
        libp2p: this.libp2p,
        options: this.options,
        log: this.libp2p.logger.forComponent('p2p-rooms:room'),
        ownAddrs: () => webRTCCircuitAddrs(this.libp2p),
        onLeft: (r) => { if (this.joined.get(r.name) === r) this.joined.delete(r.name) },
        onPeerGone: async (peers) => { await this.hangUpUnshared(peers) }
      })
      this.joined.set(name, room)
      room.start()
    }
    return room
  }

  getRooms (): Room[] {
    return [...this.joined.values()]
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await Promise.all([...this.joined.values()].map(async (r) => { await r.leave() }))
    await this.libp2p.stop()
  }

  /** A direct connection to a peer we share no room with any more has no further use. */
  private async hangUpUnshared (peers: string[]): Promise<void> {
    if (this.libp2p.status !== 'started') return
    const rooms = [...this.joined.values()]
    await Promise.all(peers
      .filter((peer) => !rooms.some((r) => r.has(peer)))
      .map(async (peer) => { await this.libp2p.hangUp(peerIdFromString(peer)).catch(() => {}) }))
  }

  private wire (): void {
    const { pubsub } = this.libp2p.services
    const each = (fn: (r: RoomImpl) => void): void => { for (const r of this.joined.values()) fn(r) }
    pubsub.addEventListener('message', (evt) => {
      const topic = evt.detail.topic
      each((r) => { if (r.topics.room === topic || r.topics.discovery === topic) r.onPubsubMessage(evt.detail) })
    })
    pubsub.addEventListener('subscription-change', (evt) => {
      const peer = evt.detail.peerId.toString()
      for (const { topic, subscribe } of evt.detail.subscriptions) {
        each((r) => { r.onSubscriptionChange(peer, topic, subscribe) })
      }
    })
    pubsub.addEventListener('gossipsub:graft', (evt) => {
      each((r) => { r.recheck(evt.detail.peerId.toString()) })
    })
    // gossipsub has no event for "outbound stream open": its heartbeat bounds the wait
    pubsub.addEventListener('gossipsub:heartbeat', () => { each((r) => { r.recheck() }) })
    this.libp2p.addEventListener('connection:open', (evt) => { each((r) => { r.onConnectionOpen(evt.detail) }) })
    this.libp2p.addEventListener('connection:close', (evt) => { each((r) => { r.onConnectionClose(evt.detail) }) })
  }
}

/**
 * Starts libp2p, dials the relays and resolves once a reservation is held on at least one of them,
 * so that what `joinRoom` announces is reachable.
 */
export async function startRoomNode (options: ResolvedRoomNodeOptions, privateKey?: PrivateKey): Promise<RoomNodeImpl> {
  if (options.relays.length === 0) throw new NoRelaysError('createRoomNode needs at least one relay multiaddr in `relays`')
  const relays = options.relays.map((r) => multiaddr(r))
  const started = Date.now()
  const libp2p = await createLibp2p<RoomNodeServices>(roomNodeConfig({
    privateKey,
    iceServers: options.iceServers,
    iceTransportPolicy: options.iceTransportPolicy,
    dialTimeout: options.dialTimeout
  }))
  try {
    const reserved = waitForReservation(libp2p, options.reservationTimeout)
    reserved.catch(() => {}) // observed below; keeps a failed dial from leaving it unhandled
    const dials = await Promise.allSettled(relays.map(async (ma) => libp2p.dial(ma)))
    if (dials.every((d) => d.status === 'rejected')) {
      const reasons = dials.map((d) => describeError((d as PromiseRejectedResult).reason))
      throw new ReservationTimeoutError(`no relay could be dialed: ${reasons.join('; ')}`, { cause: (dials[0] as PromiseRejectedResult).reason })
    }
    await reserved
  } catch (err) {
    await libp2p.stop()
    throw err
  }
  return new RoomNodeImpl(libp2p, options, Date.now() - started)
}

/** Our reachable addresses: the WebRTC-over-circuit ones, one per relay reservation. */
function webRTCCircuitAddrs (libp2p: Libp2p): string[] {
  return libp2p.getMultiaddrs()
    .map((ma) => ma.toString())
    .filter((a) => a.includes('/p2p-circuit/webrtc/'))
}

/**
 * `getMultiaddrs()` is live, but `self:peer:update` is debounced by a second in libp2p's address
 * manager; the circuit listener's `transport:listening` fires as soon as a reservation is made.
 */
async function waitForReservation (libp2p: Libp2p, timeoutMs: number): Promise<void> {
  const has = (): boolean => webRTCCircuitAddrs(libp2p).length > 0
  if (has()) return
  const events = ['transport:listening', 'self:peer:update'] as const
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      done()
      reject(new ReservationTimeoutError(`no relay reservation within ${timeoutMs} ms`))
    }, timeoutMs)
    function done (): void {
      clearTimeout(timer)
      for (const e of events) libp2p.removeEventListener(e, check)
    }
    function check (): void {
      if (!has()) return
      done()
      resolve()
    }
    for (const e of events) libp2p.addEventListener(e, check)
  })
}

/** `name: message`, looking inside an AggregateError, whose own message is often empty. */
function describeError (err: any): string {
  const inner = Array.isArray(err?.errors) && err.errors.length > 0 ? ` (${err.errors.map(describeError).join(', ')})` : ''
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}${inner}`
}
