/**
 * The room node's lifecycle (`Startable`: idempotent start and stop, listeners attached in
 * `start`) on a stubbed libp2p node: no network, milliseconds. Real nodes are in test/node.
 */
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it, vi } from 'vitest'
import * as C from '../../src/constants.js'
import { RoomNodeImpl } from '../../src/room-node.js'
import type { ResolvedRoomNodeOptions } from '../../src/index.js'

const OPTIONS = {
  relays: [],
  announceInterval: C.DEFAULT_ANNOUNCE_INTERVAL_MS,
  heartbeatInterval: C.DEFAULT_HEARTBEAT_INTERVAL_MS,
  presenceTimeout: C.DEFAULT_PRESENCE_TIMEOUT_MS,
  peerTtl: C.DEFAULT_PEER_TTL_MS,
  maxMessageBytes: C.DEFAULT_MAX_MESSAGE_BYTES
} as unknown as ResolvedRoomNodeOptions

const silent = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })

/** A room node on a stubbed libp2p: `handled` counts protocol registrations, `stopped` libp2p stops. */
function roomNode (): { node: RoomNodeImpl, pubsub: TypedEventEmitter<any>, relays: TypedEventEmitter<any>, libp2p: any, files: { start: ReturnType<typeof vi.fn>, stop: ReturnType<typeof vi.fn> }, media: { start: ReturnType<typeof vi.fn>, stop: ReturnType<typeof vi.fn> } } {
  const pubsub = new TypedEventEmitter<any>()
  const libp2p: any = {
    peerId: { toString: () => 'peer-self' },
    status: 'started',
    logger: { forComponent: () => silent },
    services: { pubsub },
    handle: vi.fn(async () => {}),
    unhandle: vi.fn(async () => {}),
    getMultiaddrs: () => [],
    stop: vi.fn(async () => { libp2p.status = 'stopped' })
  }
  const relays: any = Object.assign(new TypedEventEmitter<any>(), { list: () => [] })
  const links: any = new TypedEventEmitter<any>()
  const files = { start: vi.fn(async () => {}), stop: vi.fn(async () => {}), attach: vi.fn() }
  const media = { start: vi.fn(async () => {}), stop: vi.fn(async () => {}), attach: vi.fn() }
  const extensions: any = { FileService: class { constructor () { return files } }, MediaService: class { constructor () { return media } } }
  const node = new RoomNodeImpl(libp2p, OPTIONS, { kind: 'ephemeral' } as any, relays, links, extensions, 0, Date.now())
  return { node, pubsub, relays, libp2p, files, media }
}

describe('room node lifecycle', () => {
  it('attaches no listener and registers no protocol before start()', () => {
    const { pubsub, relays, libp2p } = roomNode()
    expect(pubsub.listenerCount('message')).toBe(0)
    expect(relays.listenerCount('relay:connect')).toBe(0)
    expect(libp2p.handle).not.toHaveBeenCalled()
  })

  it('starts once however often start() is called', async () => {
    const { node, pubsub, relays, libp2p, files, media } = roomNode()
    await node.start()
    await node.start()
    expect(pubsub.listenerCount('message')).toBe(1)
    expect(pubsub.listenerCount('subscription-change')).toBe(1)
    expect(relays.listenerCount('relay:connect')).toBe(1)
    // the room protocol and the history protocol
    expect(libp2p.handle).toHaveBeenCalledTimes(2)
    expect(files.start).toHaveBeenCalledTimes(1)
    expect(media.start).toHaveBeenCalledTimes(1)
  })

  it('stops once however often stop() is called, removes its listeners, and does not start again', async () => {
    const { node, pubsub, relays, libp2p, files, media } = roomNode()
    await node.start()
    await Promise.all([node.stop(), node.stop()])
    await node.stop()
    expect(libp2p.stop).toHaveBeenCalledTimes(1)
    expect(files.stop).toHaveBeenCalledTimes(1)
    expect(media.stop).toHaveBeenCalledTimes(1)
    expect(pubsub.listenerCount('message')).toBe(0)
    expect(relays.listenerCount('relay:connect')).toBe(0)
    await node.start()
    expect(pubsub.listenerCount('message')).toBe(0)
    await expect(node.joinRoom('lobby')).rejects.toHaveProperty('name', 'RoomClosedError')
  })
})
