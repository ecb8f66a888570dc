/**
 * The gossipsub stream guard of relay connections (src/pubsub-streams.ts), with stubbed
 * connections and streams and fake timers: the grace after identify, a stream lost later, and
 * what it leaves alone.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PubSubStreamGuard } from '../../src/pubsub-streams.js'
import type { Connection, IdentifyResult, Libp2pEvents, Logger, PeerId } from '@libp2p/interface'

const GRACE_MS = 15_000
const PROTOCOLS = ['/meshsub/1.2.0', '/meshsub/1.1.0', '/floodsub/1.0.0']
const log: Logger = Object.assign(() => {}, { error: () => {}, trace: () => {}, newScope: () => log, enabled: false })

type FakeStream = EventTarget & { protocol: string, direction: 'inbound' | 'outbound', status: string, close: () => void }
type FakeConnection = EventTarget & { remotePeer: PeerId, status: string, limits?: object, streams: FakeStream[], abort: ReturnType<typeof vi.fn>, closeSelf: () => void }

function stream (protocol: string, direction: 'inbound' | 'outbound'): FakeStream {
  const s = Object.assign(new EventTarget(), { protocol, direction, status: 'open' }) as FakeStream
  // as libp2p's: the stream leaves its connection's list, then says it closed
  s.close = () => { s.status = 'closed'; s.dispatchEvent(new Event('close')) }
  return s
}

let remotePeer: PeerId
let events: TypedEventEmitter<Libp2pEvents>
let guard: PubSubStreamGuard

function connection (streams: FakeStream[], limits?: object): FakeConnection {
  const conn = Object.assign(new EventTarget(), { remotePeer, status: 'open', limits, streams }) as FakeConnection
  for (const s of streams) s.addEventListener('close', () => { conn.streams = conn.streams.filter((x) => x !== s) })
  conn.abort = vi.fn(() => { conn.status = 'closed' })
  // a connection closing by itself closes its streams first, then changes its status (libp2p's order)
  conn.closeSelf = () => {
    for (const s of [...conn.streams]) s.close()
    conn.status = 'closed'
    conn.dispatchEvent(new Event('close'))
  }
  return conn
}

function identified (conn: FakeConnection, protocols = ['/ipfs/id/1.0.0', ...PROTOCOLS]): void {
  events.safeDispatchEvent('peer:identify', { detail: { peerId: remotePeer, protocols, connection: conn as unknown as Connection, listenAddrs: [] } as unknown as IdentifyResult })
}

const both = (): FakeStream[] => [stream('/meshsub/1.2.0', 'inbound'), stream('/meshsub/1.2.0', 'outbound')]

beforeEach(async () => {
  vi.useFakeTimers()
  remotePeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  events = new TypedEventEmitter<Libp2pEvents>()
  guard = new PubSubStreamGuard({ events, log }, { protocols: PROTOCOLS, graceMs: GRACE_MS })
  guard.start()
})
afterEach(() => {
  guard.stop()
  vi.useRealTimers()
})

describe('pubsub stream guard', () => {
  it('leaves a connection that has a gossipsub stream each way by the end of the grace', async () => {
    const conn = connection([stream('/ipfs/ping/1.0.0', 'outbound')])
    identified(conn)
    await vi.advanceTimersByTimeAsync(GRACE_MS - 1)
    conn.streams.push(...both())
    await vi.advanceTimersByTimeAsync(1)
    expect(conn.abort).not.toHaveBeenCalled()
  })

  it('aborts a connection still without its outbound gossipsub stream when the grace ends', async () => {
    const conn = connection([stream('/meshsub/1.2.0', 'inbound')])
    identified(conn)
    await vi.advanceTimersByTimeAsync(GRACE_MS - 1)
    expect(conn.abort).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(conn.abort).toHaveBeenCalledOnce()
    expect(conn.abort.mock.calls[0][0].name).toBe('PubSubStreamLostError')
    expect(conn.abort.mock.calls[0][0].message).toContain('no outbound gossipsub stream')
  })

  it('aborts a connection as soon as a gossipsub stream closes after the grace, the connection still open', async () => {
    const conn = connection(both())
    identified(conn)
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    expect(conn.abort).not.toHaveBeenCalled()
    conn.streams.find((s) => s.direction === 'inbound')?.close()
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.abort).toHaveBeenCalledOnce()
    expect(conn.abort.mock.calls[0][0].message).toContain('no inbound gossipsub stream')
  })

  it('keeps a connection whose closed stream gossipsub replaced at once', async () => {
    const conn = connection(both())
    identified(conn)
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    conn.streams.find((s) => s.direction === 'inbound')?.close()
    conn.streams.push(stream('/meshsub/1.2.0', 'inbound'))
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.abort).not.toHaveBeenCalled()
    // and it watches the new one
    conn.streams.find((s) => s.direction === 'inbound')?.close()
    await vi.advanceTimersByTimeAsync(0)
    expect(conn.abort).toHaveBeenCalledOnce()
  })

  it('does nothing to a connection that closes by itself', async () => {
    const early = connection([])
    identified(early)
    early.closeSelf()
    const late = connection(both())
    identified(late)
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    late.closeSelf()
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    expect(early.abort).not.toHaveBeenCalled()
    expect(late.abort).not.toHaveBeenCalled()
  })

  it('ignores limited connections and peers that do not speak gossipsub', async () => {
    const limited = connection([], { bytes: 1n })
    identified(limited)
    const other = connection([])
    identified(other, ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0'])
    await vi.advanceTimersByTimeAsync(GRACE_MS * 2)
    expect(limited.abort).not.toHaveBeenCalled()
    expect(other.abort).not.toHaveBeenCalled()
  })

  it('watches a connection once however often it is identified, and stops for good', async () => {
    const conn = connection([])
    identified(conn)
    await vi.advanceTimersByTimeAsync(GRACE_MS / 2)
    identified(conn)
    await vi.advanceTimersByTimeAsync(GRACE_MS / 2)
    expect(conn.abort).toHaveBeenCalledOnce()

    const later = connection([])
    identified(later)
    guard.stop()
    guard.stop()
    await vi.advanceTimersByTimeAsync(GRACE_MS)
    expect(later.abort).not.toHaveBeenCalled()
    expect(vi.getTimerCount()).toBe(0)
  })
})
