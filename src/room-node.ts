/**
 * The room node: one libp2p node, reservations on the configured relays, and the rooms joined.
 * It routes libp2p and gossipsub events to the rooms they concern.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { resolveIceServers } from './ice.js'
import {
  DEFAULT_BURST, DEFAULT_HISTORY_REQUESTS_PER_MINUTE, DEFAULT_HISTORY_SIZE, DEFAULT_MESSAGES_PER_SECOND, DEFAULT_SESSION_TYPE, FRAME_OVERHEAD_BYTES,
  HISTORY_PROTOCOL, HISTORY_WRITE_TIMEOUT_MS, PAIRWISE_PROTOCOL
} from './constants.js'
import { InvalidRoomNameError, InvalidRoomOptionsError, NoRelaysError, ReservationTimeoutError, RoomClosedError } from './errors.js'
import { resolveIdentity } from './identity.js'
import { roomNodeConfig } from './node-config.js'
import { deriveRoomSecrets } from './private-room.js'
import { RelaySet } from './relays.js'
import { RoomImpl } from './room.js'
import { FrameSender, handleFrames, handleRequests, request } from './streams.js'
import { decodeLabelled, roomTopics } from './wire.js'
import type { RoomSettings } from './room.js'
import type { JoinRoomInit, ResolvedRoomNodeOptions, Room, RoomNode, RoomNodeIdentity, SessionType } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Logger, PrivateKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

const MAX_ROOM_NAME_LENGTH = 256
const SESSION_TYPES: SessionType[] = ['broadcast', 'one-way', 'pairwise']

export class RoomNodeImpl implements RoomNode {
  readonly libp2p: Libp2p<RoomNodeServices>
  readonly reservationMs: number
  readonly identity: RoomNodeIdentity
  readonly relays: RelaySet
  private readonly options: ResolvedRoomNodeOptions
  private readonly log: Logger
  /** by room topic: the one identity of a room (name, type and secret) */
  private readonly joined = new Map<string, RoomImpl>()
  private readonly abort = new AbortController()
  private readonly frames: FrameSender
  private stopped = false

  constructor (libp2p: Libp2p<RoomNodeServices>, options: ResolvedRoomNodeOptions, reservationMs: number, identity: RoomNodeIdentity, relays: RelaySet) {
    this.libp2p = libp2p
    this.relays = relays
    // a reservation made or lost changes our circuit addresses: rooms tell their members now,
    // not at their next periodic announcement
    const announceNow = (): void => { for (const r of this.joined.values()) r.announceNow() }
    relays.addEventListener('relay:connect', announceNow)
    relays.addEventListener('relay:disconnect', announceNow)
    this.identity = identity
    this.options = options
    this.reservationMs = reservationMs
    this.log = libp2p.logger.forComponent('p2p-rooms:node')
    this.frames = new FrameSender(libp2p, PAIRWISE_PROTOCOL, { maxFrameBytes: HARD_MAX_FRAME_BYTES, signal: this.abort.signal })
    this.wire()
    // a closed or reloaded tab leaves its rooms as it goes, instead of timing out in them
    globalThis.addEventListener?.('pagehide', this.onPageHide)
  }

  private readonly onPageHide = (): void => {
    for (const room of this.joined.values()) room.abandon()
    void this.stop()
  }

  /** Registers the direct-stream protocols every room shares: pairwise messages and backlogs. */
  async handleProtocols (): Promise<void> {
    // one handler per protocol for all rooms: a frame names its room's topic
    await handleFrames(this.libp2p, PAIRWISE_PROTOCOL, (from, frame) => {
      const labelled = decodeLabelled(frame)
      const room = labelled === undefined ? undefined : this.joined.get(labelled.label)
      if (labelled === undefined || room === undefined) {
        this.log('dropping a pairwise frame from %s for no room of ours', from)
        return
      }
      void room.onPairwiseFrame(from, labelled.rest)
    }, { maxFrameBytes: HARD_MAX_FRAME_BYTES })
    // a backlog is at most the room's historySize messages of at most its maxMessageBytes (the
    // room checks both, and its quota of requests); the write timeout frees a response nobody reads
    const roomOf = (req: Uint8Array): RoomImpl | undefined => {
      const labelled = decodeLabelled(req)
      return labelled === undefined ? undefined : this.joined.get(labelled.label)
    }
    await handleRequests(this.libp2p, HISTORY_PROTOCOL, async (from, req) => roomOf(req)?.backlogFor(from, req) ?? [], {
      maxFrameBytes: HARD_MAX_FRAME_BYTES,
      maxFrames: MAX_HISTORY_FRAMES,
      writeTimeout: HISTORY_WRITE_TIMEOUT_MS,
      onWriteTimeout: (from, req) => { roomOf(req)?.historyWriteTimedOut(from) }
    })
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  async joinRoom (name: string, init: JoinRoomInit = {}): Promise<Room> {
    if (this.stopped) throw new RoomClosedError('the room node was stopped')
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_ROOM_NAME_LENGTH) {
      throw new InvalidRoomNameError(`a room name is a string of 1 to ${MAX_ROOM_NAME_LENGTH} characters`)
    }
    const settings = await this.roomSettings(name, init)
    if (this.stopped) throw new RoomClosedError('the room node was stopped')
    const existing = this.joined.get(roomTopics(name, settings.type, settings.secret?.topicId).room)
    if (existing !== undefined) return existing
    const room = new RoomImpl(name, settings, {
        libp2p: this.libp2p,
        options: this.options,
        log: this.libp2p.logger.forComponent('p2p-rooms:room'),
        ownAddrs: () => webRTCCircuitAddrs(this.libp2p),
        onLeft: (r) => { if (this.joined.get(r.topics.room) === r) this.joined.delete(r.topics.room) },
        onPeerGone: async (peers) => { await this.hangUpUnshared(peers) },
        onPeerRestarted: async (peer) => { await this.libp2p.hangUp(peerIdFromString(peer)).catch(() => {}) },
        sendFrame: async (peer, frame) => { await this.frames.send(peer, frame) },
        requestHistory: async (peer, req, limits, signal) => request(this.libp2p, peer, HISTORY_PROTOCOL, req, { ...limits, signal })
      })
    this.joined.set(room.topics.room, room)
    room.start()
    return room
  }

  /**
   * Resolves `joinRoom`'s options; a private room's topic ID and key are derived here, once.
   *
   * @throws InvalidRoomOptionsError
   */
  private async roomSettings (name: string, init: JoinRoomInit): Promise<RoomSettings> {
    const settings: RoomSettings = {
      type: init.type ?? DEFAULT_SESSION_TYPE,
      maxMessageBytes: init.maxMessageBytes ?? this.options.maxMessageBytes,
      messagesPerSecond: init.messagesPerSecond ?? DEFAULT_MESSAGES_PER_SECOND,
      burst: init.burst ?? DEFAULT_BURST,
      historySize: init.historySize ?? DEFAULT_HISTORY_SIZE,
      historyRequestsPerMinute: init.historyRequestsPerMinute ?? DEFAULT_HISTORY_REQUESTS_PER_MINUTE
    }
    if (!SESSION_TYPES.includes(settings.type)) throw new InvalidRoomOptionsError(`type must be one of ${SESSION_TYPES.join(', ')}, not ${String(settings.type)}`)
    for (const key of ['maxMessageBytes', 'messagesPerSecond', 'burst', 'historyRequestsPerMinute'] as const) {
      if (!(settings[key] > 0)) throw new InvalidRoomOptionsError(`${key} must be a positive number, not ${settings[key]}`)
    }
    if (settings.maxMessageBytes > HARD_MAX_FRAME_BYTES - FRAME_OVERHEAD_BYTES) throw new InvalidRoomOptionsError(`maxMessageBytes must be at most ${HARD_MAX_FRAME_BYTES - FRAME_OVERHEAD_BYTES}`)
    if (!(Number.isSafeInteger(settings.historySize) && settings.historySize >= 0 && settings.historySize <= MAX_HISTORY_FRAMES)) {
      throw new InvalidRoomOptionsError(`historySize must be an integer from 0 to ${MAX_HISTORY_FRAMES}, not ${settings.historySize}`)
    }
    if (init.secret !== undefined) {
      const length = typeof init.secret === 'string' ? init.secret.length : init.secret?.byteLength
      if (!(length > 0)) throw new InvalidRoomOptionsError('a private room needs a non-empty secret (a string or bytes)')
      const { topicId, master } = await deriveRoomSecrets(name, settings.type, init.secret)
      settings.secret = { topicId, master }
    }
    return settings
  }

  getRooms (): Room[] {
    return [...this.joined.values()]
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    globalThis.removeEventListener?.('pagehide', this.onPageHide)
    this.abort.abort(new RoomClosedError('the room node was stopped'))
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
  const iceServers = await resolveIceServers(options.iceServers, options.iceServersUrl)
  const identity = await resolveIdentity(options.identity, privateKey)
  const libp2p = await createLibp2p<RoomNodeServices>(roomNodeConfig({
    privateKey: identity.privateKey,
    iceServers,
    iceTransportPolicy: options.iceTransportPolicy,
    dialTimeout: options.dialTimeout,
    maxRelays: options.maxRelays
  })).catch((err) => { identity.release(); throw err })
  // the key stays this page's (its Web Lock held) until the node stops, including a failed start below
  libp2p.addEventListener('stop', identity.release, { once: true })
  // watches reservations and keeps enough relays connected, from before the first dial
  const relaySet = new RelaySet(libp2p, { configured: relays, maxRelays: options.maxRelays, dialTimeout: options.dialTimeout, log: libp2p.logger.forComponent('p2p-rooms:relays') })
  relaySet.start()
  libp2p.addEventListener('stop', () => { relaySet.stop() }, { once: true })
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
  const node = new RoomNodeImpl(libp2p, options, Date.now() - started, identity.identity, relaySet)
  await node.handleProtocols()
  return node
}

/**
 * Frames on the shared protocols are bounded before the room is known; each room then applies
 * its own `maxMessageBytes`.
 */
const HARD_MAX_FRAME_BYTES = 1024 * 1024 + FRAME_OVERHEAD_BYTES
/** Largest `historySize`; a member never serves more, whatever it is asked. */
const MAX_HISTORY_FRAMES = 10_000

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
