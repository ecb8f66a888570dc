/**
 * The room node: one libp2p node, its relays, its direct connections (direct.ts) and the rooms
 * joined. It carries every room's frames over one protocol and routes them, and libp2p's
 * discovery messages, to the rooms they concern.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { createLibp2p } from 'libp2p'
import {
  DEFAULT_BURST, DEFAULT_HISTORY_REQUESTS_PER_MINUTE, DEFAULT_HISTORY_SIZE, DEFAULT_MESSAGES_PER_SECOND, DEFAULT_SESSION_TYPE, FRAME_OVERHEAD_BYTES,
  HARD_MAX_FRAME_BYTES, HISTORY_PROTOCOL, HISTORY_WRITE_TIMEOUT_MS, MAX_HISTORY_FRAMES, MAX_ROOM_NAME_LENGTH, RELAY_PUBSUB_GRACE_MS, ROOM_PROTOCOL,
  SESSION_TYPES,
  // media (issue 11, src/media/)
  MAX_MEDIA_FRAME_BYTES, MEDIA_PROTOCOL
} from './constants.js'
import { DirectLinks } from './direct.js'
import { InvalidRoomNameError, InvalidRoomOptionsError, NoRelaysError, RoomClosedError } from './errors.js'
import { loadExtensions } from './extensions.js'
import { resolveIceServers } from './ice.js'
import { resolveIdentity } from './identity.js'
import { roomNodeConfig } from './node-config.js'
import { deriveRoomSecrets } from './private-room.js'
import { PubSubStreamGuard } from './pubsub-streams.js'
import { connectToRelay, parseRelayAddrs } from './relay-dial.js'
import { RelaySet } from './relays.js'
import { RoomImpl } from './room.js'
import { FrameSender, handleFrames, handleRequests, request } from './streams.js'
import { decodeLabelled, roomTopics } from './wire.js'
import { PreconnectedSockets } from './ws-preconnect.js'
import type { Extensions } from './extensions.js'
import type { FileService } from './files/service.js'
// media (issue 11, src/media/)
import type { MediaService } from './media/service.js'
import type { RoomContext, RoomSettings } from './room.js'
import type { JoinRoomInit, ResolvedRoomNodeOptions, Room, RoomNode, RoomNodeIdentity } from './index.js'
import type { RoomNodeServices } from './node-config.js'
import type { Logger, PrivateKey, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

export class RoomNodeImpl implements RoomNode, Startable {
  readonly libp2p: Libp2p<RoomNodeServices>
  readonly identity: RoomNodeIdentity
  readonly relays: RelaySet
  readonly links: DirectLinks
  private readonly options: ResolvedRoomNodeOptions
  private readonly log: Logger
  /** when `createRoomNode` was called: `performance.now()`, and ms since the epoch (announced) */
  private readonly createdAt: number
  private readonly startedAt: number
  private reservedAfter?: number
  /** by room key: the one identity of a room (name, type and secret) */
  private readonly joined = new Map<string, RoomImpl>()
  private readonly abort = new AbortController()
  private readonly frames: FrameSender
  /** Files in every room (src/files/): one protocol handler, one chunk store. */
  private readonly files: FileService
  /** Media in every room (src/media/): one signalling protocol, one sender per peer. */
  private readonly media: MediaService
  private started = false
  private stopped = false

  constructor (libp2p: Libp2p<RoomNodeServices>, options: ResolvedRoomNodeOptions, identity: RoomNodeIdentity, relays: RelaySet, links: DirectLinks, extensions: Extensions, createdAt: number, startedAt: number, iceServers: RTCIceServer[] = []) {
    this.libp2p = libp2p
    this.relays = relays
    this.links = links
    this.identity = identity
    this.options = options
    this.createdAt = createdAt
    this.startedAt = startedAt
    this.log = libp2p.logger.forComponent('p2p-rooms:node')
    this.frames = new FrameSender(libp2p, ROOM_PROTOCOL, { maxFrameBytes: HARD_MAX_FRAME_BYTES, signal: this.abort.signal })
    this.files = new extensions.FileService({
      logger: libp2p.logger,
      handle: async (protocol, handler, opts) => { await libp2p.handle(protocol, handler, opts) },
      unhandle: async (protocol) => { await libp2p.unhandle(protocol) },
      links
    }, options)
    // media (issue 11): signalling frames on their own protocol, over the direct connections only
    const mediaFrames = new FrameSender(libp2p, MEDIA_PROTOCOL, { maxFrameBytes: MAX_MEDIA_FRAME_BYTES, signal: this.abort.signal })
    this.media = new extensions.MediaService({
      logger: libp2p.logger,
      serve: async (protocol, onFrame, opts) => handleFrames(libp2p, protocol, onFrame, opts),
      send: async (peer, frame) => { await mediaFrames.send(peer, frame) }
    }, { iceServers, iceTransportPolicy: options.iceTransportPolicy })
  }

  /**
   * Registers the protocols every room shares and starts routing events to the rooms: every
   * listener is attached here, none in the constructor. Idempotent; a stopped node does not start
   * again (its libp2p node is stopped for good).
   */
  async start (): Promise<void> {
    if (this.started || this.stopped) return
    this.started = true
    this.relays.addEventListener('relay:connect', this.onRelayChange)
    this.relays.addEventListener('relay:disconnect', this.onRelayChange)
    if (this.relays.list().some((r) => r.reserved)) this.onRelayChange()
    const { pubsub } = this.libp2p.services
    pubsub.addEventListener('message', this.onPubsubMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    // a closed or reloaded tab leaves its rooms as it goes, instead of timing out in them
    globalThis.addEventListener?.('pagehide', this.onPageHide)
    // one handler per protocol for all rooms: a frame names its room
    await handleFrames(this.libp2p, ROOM_PROTOCOL, (from, frame) => {
      const labelled = decodeLabelled(frame)
      const room = labelled === undefined ? undefined : this.joined.get(labelled.label)
      if (labelled === undefined || room === undefined) {
        this.log('dropping a room frame from %s for no room of ours', from)
        return
      }
      void room.onFrame(from, labelled.rest)
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
    await this.files.start()
    await this.media.start()
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  get reservationMs (): number | undefined {
    return this.reservedAfter
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
    const room = new RoomImpl(name, settings, this.roomContext())
    this.joined.set(room.topics.room, room)
    room.start()
    return room
  }

  /** What a room gets of this node (room.ts `RoomContext`): our streams, links, pubsub and extensions. */
  private roomContext (): RoomContext {
    return {
      self: this.peerId,
      startedAt: this.startedAt,
      options: this.options,
      log: this.libp2p.logger.forComponent('p2p-rooms:room'),
      pubsub: this.libp2p.services.pubsub,
      links: this.links,
      running: () => this.libp2p.status === 'started',
      ownAddrs: () => webRTCCircuitAddrs(this.libp2p),
      sendFrame: async (peer, frame) => { await this.frames.send(peer, frame) },
      sendFrameNow: (peer, frame) => this.frames.sendNow(peer, frame),
      requestHistory: async (peer, req, limits, signal) => request(this.libp2p, peer, HISTORY_PROTOCOL, req, { ...limits, signal }),
      onLeft: (r) => { if (this.joined.get(r.topics.room) === r) this.joined.delete(r.topics.room) },
      // extensions (src/extensions.ts): each room attaches to the node's services
      files: this.files,
      media: this.media
    }
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

  /** Leaves every room, stops the file service and libp2p, and removes every listener `start` attached. Idempotent. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    globalThis.removeEventListener?.('pagehide', this.onPageHide)
    this.relays.removeEventListener('relay:connect', this.onRelayChange)
    this.relays.removeEventListener('relay:disconnect', this.onRelayChange)
    const { pubsub } = this.libp2p.services
    this.abort.abort(new RoomClosedError('the room node was stopped'))
    await Promise.all([...this.joined.values()].map(async (r) => { await r.leave() }))
    await this.files.stop()
    await this.media.stop()
    pubsub.removeEventListener('message', this.onPubsubMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    await this.libp2p.stop()
  }

  private readonly onPageHide = (): void => {
    for (const room of this.joined.values()) room.abandon()
    void this.stop()
  }

  /** A reservation made or lost changes our circuit addresses: rooms tell their members now. */
  private readonly onRelayChange = (): void => {
    this.reservedAfter ??= Math.round(performance.now() - this.createdAt)
    for (const r of this.joined.values()) r.announceNow()
  }

  private readonly onPubsubMessage = (evt: CustomEvent<import('@libp2p/gossipsub').Message>): void => {
    for (const r of this.joined.values()) {
      if (r.topics.discovery === evt.detail.topic) r.onPubsubMessage(evt.detail)
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<import('@libp2p/gossipsub').SubscriptionChangeData>): void => {
    const peer = evt.detail.peerId.toString()
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      for (const r of this.joined.values()) r.onSubscriptionChange(peer, topic, subscribe)
    }
  }
}

/**
 * Starts libp2p and resolves once it is connected to at least one relay: rooms can then learn
 * their members and dial them at once, while the reservation that lets others dial us completes
 * (rooms announce us as soon as it does).
 */
export async function startRoomNode (options: ResolvedRoomNodeOptions, privateKey?: PrivateKey): Promise<RoomNodeImpl> {
  if (options.relays.length === 0) throw new NoRelaysError('createRoomNode needs at least one relay multiaddr in `relays`')
  const createdAt = performance.now()
  const startedAt = Date.now()
  const relays = parseRelayAddrs(options.relays)
  // the relays' sockets open while we make our key and node; the transport takes them (ws-preconnect.ts)
  const preconnected = new PreconnectedSockets({ ttl: options.reservationTimeout })
  preconnected.open(relays)
  try {
    return await startWithRelays(options, relays, preconnected, createdAt, startedAt, privateKey)
  } finally {
    // taken by now, or never will be: a failed start, or a relay dialled some other way
    preconnected.close()
  }
}

async function startWithRelays (options: ResolvedRoomNodeOptions, relays: Multiaddr[], preconnected: PreconnectedSockets, createdAt: number, startedAt: number, privateKey?: PrivateKey): Promise<RoomNodeImpl> {
  // fetched while we reach the relay; awaited once we did
  const extensions = loadExtensions()
  extensions.catch(() => {})
  const iceServers = await resolveIceServers(options.iceServers, options.iceServersUrl)
  const identity = await resolveIdentity(options.identity, privateKey)
  const libp2p = await createLibp2p<RoomNodeServices>(roomNodeConfig({
    privateKey: identity.privateKey,
    iceServers,
    iceTransportPolicy: options.iceTransportPolicy,
    dialTimeout: options.dialTimeout,
    maxRelays: options.maxRelays,
    preconnected
  })).catch((err) => { identity.release(); throw err })
  // the key stays this page's (its Web Lock held) until the node stops, including a failed start below
  libp2p.addEventListener('stop', identity.release, { once: true })
  // watches reservations and keeps enough relays connected, from before the first dial
  const relaySet = new RelaySet(libp2p, { configured: relays, maxRelays: options.maxRelays, dialTimeout: options.dialTimeout, log: libp2p.logger.forComponent('p2p-rooms:relays') })
  relaySet.start()
  // a relay connection that lost a gossipsub stream is dialed anew, and the relay set redials it
  const pubsubStreams = new PubSubStreamGuard({ events: libp2p, log: libp2p.logger.forComponent('p2p-rooms:relays') }, { protocols: libp2p.services.pubsub.protocols, graceMs: RELAY_PUBSUB_GRACE_MS })
  pubsubStreams.start()
  const links = new DirectLinks({
    peerId: libp2p.peerId.toString(),
    logger: libp2p.logger,
    events: libp2p,
    dial: async (addrs, opts) => libp2p.dial(addrs, opts),
    getConnections: (peer) => libp2p.getConnections(peerIdFromString(peer)),
    hangUp: async (peer) => { await libp2p.hangUp(peerIdFromString(peer)) },
    // only circuits through relays we trust (configured, or vouched for by their federation)
    isKnownRelay: (peerId) => relaySet.trust.trusts(peerId)
  }, {
    startedAt,
    dialAttempts: options.dialAttempts,
    dialBackoff: options.dialBackoff,
    dialTimeout: options.dialTimeout,
    dialTakeover: options.dialTakeover
  })
  links.start()
  libp2p.addEventListener('stop', () => {
    links.stop()
    relaySet.stop()
    pubsubStreams.stop()
  }, { once: true })
  try {
    // a configured relay is trusted: reserve on it the moment it is connected (reserve.ts)
    await connectToRelay(libp2p, relays, options.reservationTimeout, (conn) => { libp2p.services.reserver.reserve(conn.remotePeer) })
  } catch (err) {
    await libp2p.stop()
    throw err
  }
  let loaded: Extensions
  try {
    loaded = await extensions
  } catch (err) {
    await libp2p.stop()
    throw err
  }
  const node = new RoomNodeImpl(libp2p, options, identity.identity, relaySet, links, loaded, createdAt, startedAt, iceServers)
  await node.start()
  return node
}

/** Our reachable addresses: the WebRTC-over-circuit ones, one per relay reservation. */
function webRTCCircuitAddrs (libp2p: Libp2p): string[] {
  return libp2p.getMultiaddrs()
    .map((ma) => ma.toString())
    .filter((a) => a.includes('/p2p-circuit/webrtc/'))
}
