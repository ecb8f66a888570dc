/**
 * A room's lifecycle (`Startable`): `start()` and `stop()`/`leave()` are idempotent, listeners are
 * attached in `start`, and no timer of the room runs once it is left.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as C from '../../../src/constants.js'
import { RoomImpl } from '../../../src/room.js'
import { StubLinks, fakeTimers, silent } from './stubs.js'
import type { ResolvedRoomNodeOptions } from '../../../src/index.js'
import type { RoomContext } from '../../../src/room.js'

const OPTIONS = {
  announceInterval: C.DEFAULT_ANNOUNCE_INTERVAL_MS,
  heartbeatInterval: C.DEFAULT_HEARTBEAT_INTERVAL_MS,
  presenceTimeout: C.DEFAULT_PRESENCE_TIMEOUT_MS,
  peerTtl: C.DEFAULT_PEER_TTL_MS
} as unknown as ResolvedRoomNodeOptions

function room (): { room: RoomImpl, links: StubLinks, subscribes: () => number, published: () => number, left: () => number } {
  const links = new StubLinks()
  const subscribe = vi.fn()
  const publish = vi.fn(async () => ({ recipients: ['relay'] }))
  const onLeft = vi.fn()
  const ctx: RoomContext = {
    self: 'peer-self',
    startedAt: 1,
    options: OPTIONS,
    log: silent,
    pubsub: { subscribe, unsubscribe: vi.fn(), publish } as any,
    links: links as any,
    running: () => true,
    ownAddrs: () => ['/addr/p2p/peer-self'],
    sendFrame: async () => {},
    sendFrameNow: () => true,
    requestHistory: async () => [],
    onLeft,
    files: { attach: () => ({ close: () => {} }) } as any,
    media: { attach: () => ({ close: () => {}, stats: () => undefined }) } as any
  }
  const r = new RoomImpl('test', { type: 'broadcast', maxMessageBytes: 1024, messagesPerSecond: 50, burst: 100, historySize: 10, historyRequestsPerMinute: 10 }, ctx)
  return { room: r, links, subscribes: () => subscribe.mock.calls.length, published: () => publish.mock.calls.length, left: () => onLeft.mock.calls.length }
}

beforeEach(() => { fakeTimers() })
afterEach(() => { vi.useRealTimers() })

describe('room lifecycle', () => {
  it('listens to the node\'s links only once started', () => {
    const { room: r, links } = room()
    expect(links.listenerCount('peer:direct')).toBe(0)
    r.start()
    expect(links.listenerCount('peer:direct')).toBe(1)
  })

  it('starts once however often start() is called', async () => {
    const { room: r, subscribes, published } = room()
    r.start()
    r.start()
    expect(subscribes()).toBe(1)
    await vi.advanceTimersByTimeAsync(C.DEFAULT_ANNOUNCE_INTERVAL_MS)
    // the announcement on start, and one per interval
    expect(published()).toBe(2)
  })

  it('stops once however often stop() or leave() is called, runs no timer after, and does not start again', async () => {
    const { room: r, links, published, left } = room()
    r.start()
    await Promise.all([r.stop(), r.leave(), r.stop()])
    expect(left()).toBe(1)
    expect(links.listenerCount('peer:direct')).toBe(0)
    const after = published()
    r.start()
    await vi.advanceTimersByTimeAsync(C.DEFAULT_PEER_TTL_MS * 2)
    expect(published()).toBe(after)
    expect(vi.getTimerCount()).toBe(0)
    await expect(r.publish('late')).rejects.toHaveProperty('name', 'RoomClosedError')
  })
})
