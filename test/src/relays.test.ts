/**
 * The relay set of a node (src/relays.ts) with stubbed libp2p parts and fake timers: filling up
 * to `maxRelays`, backoff, failover, the outage redial cap that test/browser/relay-faults.test.ts
 * relies on, the hop protocol of untrusted peers, identify on relay connections only, and its
 * `Startable` life cycle.
 */
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  RELAY_LIVENESS_INTERVAL_MS, RELAY_LIVENESS_MISSES, RELAY_OUTAGE_REDIAL_MAX_MS, RELAY_REDIAL_JITTER, RELAY_REDIAL_MAX_MS, RELAY_REDIAL_MIN_MS,
  RELAY_RESERVATION_GRACE_MS
} from '../../src/constants.js'
import { RelayRecords } from '../../src/relay-discovery.js'
import { RelaySet } from '../../src/relays.js'
import type { RelayInfo } from '../../src/index.js'
import type { RelaySetComponents } from '../../src/relays.js'
import type { Connection, Libp2pEvents, Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

let SELF: string, A: string, B: string, C: string, STRANGER: string
beforeAll(async () => {
  const ids = await Promise.all(Array.from({ length: 5 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  ;[SELF, A, B, C, STRANGER] = ids
})

const log: Logger = Object.assign(() => {}, { error: () => {}, trace: () => {}, newScope: () => log, enabled: false })
const logger = { forComponent: () => log }

/** Where relay `peerId` listens: one port per relay, so addresses differ. */
const relayAddr = (peerId: string): Multiaddr => multiaddr(`/ip4/127.0.0.1/tcp/${9000 + [A, B, C].indexOf(peerId)}/ws/p2p/${peerId}`)

/**
 * A libp2p stand-in: connections to relays, reservations (our `/p2p-circuit` addresses), and
 * dials whose outcome each relay's `up` decides. Reserving is the test's move, as the transport's
 * would be: `reserve(peerId)`.
 */
class FakeNode {
  readonly events = new TypedEventEmitter<Libp2pEvents>()
  readonly records = new RelayRecords({ pubsub: {} as any, logger: logger as any })
  readonly connections = new Map<string, Connection>()
  readonly reservations = new Set<string>()
  /** every dial: the relay and when (fake time) */
  readonly dials: Array<{ peerId: string, at: number }> = []
  /** relays that answer a dial; others refuse it */
  readonly up = new Set<string>()
  readonly patch = vi.fn(async () => ({}) as any)
  readonly identify = vi.fn(async () => ({}) as any)
  readonly ping = vi.fn(async () => 1)
  status = 'started'

  components (): RelaySetComponents {
    return {
      peerId: peerIdFromString(SELF),
      get status () { return node.status },
      addEventListener: this.events.addEventListener.bind(this.events),
      removeEventListener: this.events.removeEventListener.bind(this.events),
      peerStore: { patch: this.patch },
      getMultiaddrs: () => [...this.reservations].map((r) => multiaddr(`${relayAddr(r).toString()}/p2p-circuit/p2p/${SELF}`)),
      getConnections: () => [...this.connections.values()],
      dial: async (addrs: Multiaddr[]) => {
        const peerId = addrs[0].getComponents().filter((c) => c.name === 'p2p').pop()?.value ?? ''
        this.dials.push({ peerId, at: Date.now() })
        if (!this.up.has(peerId)) throw new Error(`${peerId} is down`)
        const conn = {
          remotePeer: peerIdFromString(peerId),
          remoteAddr: relayAddr(peerId).decapsulateCode(421),
          limits: undefined,
          status: 'open',
          abort: vi.fn()
        } as unknown as Connection
        this.connections.set(peerId, conn)
        return conn
      },
      services: { relayDiscovery: this.records, ping: { ping: this.ping }, identify: { identify: this.identify } }
    }
  }

  /** The circuit transport made a reservation on `peerId` and announces its new address. */
  reserve (peerId: string): void {
    this.reservations.add(peerId)
    this.events.safeDispatchEvent('transport:listening', { detail: {} as any })
  }

  /** The relay went away: connection and reservation gone. */
  drop (peerId: string): void {
    const conn = this.connections.get(peerId)
    this.connections.delete(peerId)
    this.reservations.delete(peerId)
    if (conn !== undefined) this.events.safeDispatchEvent('connection:close', { detail: conn })
  }

  dialsOf (peerId: string): number[] {
    return this.dials.filter((d) => d.peerId === peerId).map((d) => d.at)
  }
}

let node: FakeNode
let set: RelaySet | undefined

function relaySet (configured: string[], maxRelays: number): RelaySet {
  set = new RelaySet(node.components(), { configured: configured.map(relayAddr), maxRelays, dialTimeout: 1_000, log })
  return set
}

/** Lets the dials started by a timer or an event settle (they resolve in microtasks). */
async function settle (): Promise<void> {
  await vi.advanceTimersByTimeAsync(0)
}

function gaps (times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i])
}

beforeEach(() => {
  vi.useFakeTimers()
  node = new FakeNode()
})

afterEach(() => {
  set?.stop()
  set = undefined
  vi.restoreAllMocks()
  vi.useRealTimers()
})

describe('relay set filling', () => {
  it('dials no more relays than maxRelays reservations need', async () => {
    node.up.add(A).add(B).add(C)
    relaySet([A, B, C], 2).start()
    await settle()
    expect(node.dials).toHaveLength(2)
    const dialed = node.dials.map((d) => d.peerId)
    for (const r of dialed) node.reserve(r)
    await vi.advanceTimersByTimeAsync(RELAY_RESERVATION_GRACE_MS * 3)
    expect(node.dials).toHaveLength(2)
    expect(set?.list().filter((r) => r.reserved).map((r) => r.peerId).sort()).toEqual(dialed.sort())
  })

  it('identifies a connected relay again when it made no reservation within RELAY_RESERVATION_GRACE_MS', async () => {
    node.up.add(A).add(B)
    // no shuffle: the relays are tried in the order configured
    vi.spyOn(Math, 'random').mockReturnValue(0)
    relaySet([A, B], 1).start()
    await settle()
    expect(node.dials.map((d) => d.peerId)).toEqual([A])
    await vi.advanceTimersByTimeAsync(RELAY_RESERVATION_GRACE_MS - 1)
    node.events.safeDispatchEvent('self:peer:update', { detail: {} as any })
    expect(node.identify).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    node.events.safeDispatchEvent('self:peer:update', { detail: {} as any })
    // the transport passed it over once: identify has it consider the relay anew
    expect(node.identify).toHaveBeenCalledWith(node.connections.get(A))
    expect(node.dials.map((d) => d.peerId)).toEqual([A])
  })

  it('fills the missing reservation from a relay a trusted record names, and says it discovered it', async () => {
    node.up.add(A).add(B)
    const discovered: RelayInfo[] = []
    const s = relaySet([A], 2)
    s.addEventListener('relay:discover', (evt) => { discovered.push(evt.detail) })
    s.start()
    await settle()
    node.reserve(A)
    expect(node.dialsOf(B)).toEqual([])
    node.records.safeDispatchEvent('peer', { detail: { id: peerIdFromString(B), multiaddrs: [relayAddr(B).decapsulateCode(421)] } })
    await settle()
    expect(discovered.map((r) => r.peerId)).toEqual([B])
    expect(node.dialsOf(B)).toHaveLength(1)
  })

  it('never dials a circuit or non-WebSockets address a record names', async () => {
    node.up.add(B)
    relaySet([], 1).start()
    node.records.safeDispatchEvent('peer', {
      detail: { id: peerIdFromString(B), multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/9001/ws/p2p/${A}/p2p-circuit`), multiaddr('/ip4/127.0.0.1/tcp/9001')] }
    })
    await settle()
    expect(node.dials).toEqual([])
    expect(set?.list()).toEqual([])
  })
})

describe('relay set backoff', () => {
  it('doubles the wait after each failed dial from RELAY_REDIAL_MIN_MS up to RELAY_REDIAL_MAX_MS while a reservation is held', async () => {
    // the smallest jitter: waits are exactly the doubling
    vi.spyOn(Math, 'random').mockReturnValue(0)
    node.up.add(A)
    relaySet([A, B], 2).start()
    await settle()
    node.reserve(A)
    await vi.advanceTimersByTimeAsync(10 * RELAY_REDIAL_MAX_MS)
    const expected = [1, 2, 4, 8, 16, 32].map((n) => n * RELAY_REDIAL_MIN_MS)
    const waits = gaps(node.dialsOf(B))
    expect(waits.slice(0, expected.length)).toEqual(expected)
    expect(waits.slice(expected.length).length).toBeGreaterThan(2)
    for (const w of waits.slice(expected.length)) expect(w).toBe(RELAY_REDIAL_MAX_MS)
  })

  it('stretches each wait by at most RELAY_REDIAL_JITTER', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999)
    node.up.add(A)
    relaySet([A, B], 2).start()
    await settle()
    node.reserve(A)
    await vi.advanceTimersByTimeAsync(4 * RELAY_REDIAL_MAX_MS)
    const waits = gaps(node.dialsOf(B))
    expect(waits[0]).toBeGreaterThan(RELAY_REDIAL_MIN_MS)
    expect(waits[0]).toBeLessThanOrEqual(Math.ceil(RELAY_REDIAL_MIN_MS * (1 + RELAY_REDIAL_JITTER)))
    expect(Math.max(...waits)).toBeLessThanOrEqual(Math.ceil(RELAY_REDIAL_MAX_MS * (1 + RELAY_REDIAL_JITTER)))
  })

  it('dials a relay at once when a trusted record shows it alive, whatever its backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    node.up.add(A)
    relaySet([A, B], 2).start()
    await settle()
    node.reserve(A)
    await vi.advanceTimersByTimeAsync(RELAY_REDIAL_MAX_MS)
    const before = node.dialsOf(B).length
    node.up.add(B)
    node.records.safeDispatchEvent('peer', { detail: { id: peerIdFromString(B), multiaddrs: [relayAddr(B)] } })
    await settle()
    expect(node.dialsOf(B)).toHaveLength(before + 1)
  })
})

describe('relay set failover', () => {
  it('dials another known relay at once when the reservation is lost and its relay is down', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    node.up.add(A).add(B)
    const lost: string[] = []
    const gained: string[] = []
    const s = relaySet([A, B], 1)
    s.addEventListener('relay:disconnect', (evt) => { lost.push(evt.detail.peerId) })
    s.addEventListener('relay:connect', (evt) => { gained.push(evt.detail.peerId) })
    s.start()
    await settle()
    expect(node.dials.map((d) => d.peerId)).toEqual([A])
    node.reserve(A)
    node.up.delete(A)
    node.drop(A)
    await settle()
    expect(lost).toEqual([A])
    // the lost relay is tried first (a restart may be over already), then the other one
    expect(node.dials.map((d) => d.peerId)).toEqual([A, A, B])
    node.reserve(B)
    expect(gained).toEqual([A, B])
    expect(s.list().find((r) => r.peerId === B)).toMatchObject({ connected: true, reserved: true })
  })

  it('redials the lost relay without waiting when it is back at once (a restart)', async () => {
    node.up.add(A)
    relaySet([A], 1).start()
    await settle()
    node.reserve(A)
    node.drop(A)
    await settle()
    expect(node.dialsOf(A)).toHaveLength(2)
    expect(gaps(node.dialsOf(A))).toEqual([0])
  })
})

describe('relay set outage', () => {
  const outageCap = RELAY_OUTAGE_REDIAL_MAX_MS * (1 + RELAY_REDIAL_JITTER)

  it('with no reservation held, redials every relay within RELAY_OUTAGE_REDIAL_MAX_MS (+ jitter), however long the outage', async () => {
    // the largest jitter: the slowest redials there can be
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999)
    node.up.add(A)
    relaySet([A, B], 2).start()
    await settle()
    node.reserve(A)
    // B has been failing for minutes: its backoff has grown to RELAY_REDIAL_MAX_MS
    await vi.advanceTimersByTimeAsync(5 * RELAY_REDIAL_MAX_MS)
    expect(Math.max(...gaps(node.dialsOf(B)))).toBeGreaterThan(RELAY_REDIAL_MAX_MS)
    const outageStart = Date.now()
    node.up.delete(A)
    node.drop(A)
    await vi.advanceTimersByTimeAsync(10 * 60_000)
    for (const relay of [A, B]) {
      const times = [outageStart, ...node.dialsOf(relay).filter((t) => t >= outageStart)]
      expect(times.length, relay).toBeGreaterThan(100)
      expect(Math.max(...gaps(times)), relay).toBeLessThanOrEqual(Math.ceil(outageCap))
    }
  })

  it('has a relay back on its address reserved on within RELAY_OUTAGE_REDIAL_MAX_MS (+ jitter)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999)
    node.up.add(A)
    relaySet([A], 1).start()
    await settle()
    node.reserve(A)
    node.up.delete(A)
    node.drop(A)
    await vi.advanceTimersByTimeAsync(5 * 60_000)
    node.up.add(A)
    const back = Date.now()
    await vi.advanceTimersByTimeAsync(Math.ceil(outageCap))
    expect(node.connections.has(A)).toBe(true)
    expect(node.dialsOf(A).at(-1)! - back).toBeLessThanOrEqual(Math.ceil(outageCap))
  })

  it('goes back to the long backoff once a reservation is held again', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    node.up.add(A)
    relaySet([A, B], 2).start()
    await settle()
    node.reserve(A)
    node.up.delete(A)
    node.drop(A)
    await vi.advanceTimersByTimeAsync(60_000)
    node.up.add(A)
    await vi.advanceTimersByTimeAsync(RELAY_OUTAGE_REDIAL_MAX_MS)
    node.reserve(A)
    const from = Date.now()
    await vi.advanceTimersByTimeAsync(10 * RELAY_REDIAL_MAX_MS)
    expect(Math.max(...gaps(node.dialsOf(B).filter((t) => t >= from)))).toBe(RELAY_REDIAL_MAX_MS)
  })
})

describe('relay set trust', () => {
  it('strikes the hop protocol off an untrusted peer that claims it, and never dials it', async () => {
    relaySet([A], 1).start()
    const conn = { remotePeer: peerIdFromString(STRANGER), remoteAddr: multiaddr('/webrtc'), limits: undefined } as unknown as Connection
    node.events.safeDispatchEvent('peer:identify', { detail: { peerId: peerIdFromString(STRANGER), protocols: ['/ipfs/id/1.0.0', RELAY_V2_HOP_CODEC], connection: conn } as any })
    await settle()
    expect(node.patch).toHaveBeenCalledWith(peerIdFromString(STRANGER), { protocols: ['/ipfs/id/1.0.0'] })
    expect(node.dialsOf(STRANGER)).toEqual([])
  })
})

describe('relay set identify', () => {
  const connection = (peerId: string, fields: Partial<Connection>): Connection =>
    ({ remotePeer: peerIdFromString(peerId), remoteAddr: relayAddr(A), status: 'open', limits: undefined, multiplexer: '/yamux/1.0.0', ...fields }) as unknown as Connection

  it('runs identify once on each connection to a relay, and on no circuit or WebRTC connection', async () => {
    const before = connection(A, {})
    node.connections.set(A, before)
    relaySet([A, B], 2).start()
    // opened before the set started: identified at start
    expect(node.identify.mock.calls).toEqual([[before]])
    const relay = connection(B, {})
    const circuit = connection(STRANGER, { limits: { bytes: 131072n, seconds: 120 }, remoteAddr: multiaddr(`${relayAddr(A).toString()}/p2p-circuit/p2p/${STRANGER}`) })
    const webrtc = connection(STRANGER, { multiplexer: '/webrtc', remoteAddr: multiaddr(`${relayAddr(A).toString()}/p2p-circuit/webrtc/p2p/${STRANGER}`) })
    for (const conn of [relay, circuit, webrtc, relay, before]) node.events.safeDispatchEvent('connection:open', { detail: conn })
    await settle()
    expect(node.identify.mock.calls).toEqual([[before], [relay]])
  })
})

describe('relay set start and stop', () => {
  const types = ['peer:identify', 'connection:open', 'connection:close', 'transport:listening', 'self:peer:update'] as const

  it('attaches no listener and dials nothing before start', async () => {
    node.up.add(A)
    relaySet([A], 1)
    await vi.advanceTimersByTimeAsync(RELAY_REDIAL_MAX_MS)
    for (const type of types) expect(node.events.listenerCount(type), type).toBe(0)
    expect(node.records.listenerCount('peer')).toBe(0)
    expect(node.dials).toEqual([])
  })

  it('attaches each listener once however often it is started, and detaches them however often it is stopped', () => {
    const s = relaySet([A], 1)
    s.start()
    s.start()
    expect(s.isStarted()).toBe(true)
    for (const type of types) expect(node.events.listenerCount(type), type).toBe(1)
    expect(node.records.listenerCount('peer')).toBe(1)
    s.stop()
    s.stop()
    expect(s.isStarted()).toBe(false)
    for (const type of types) expect(node.events.listenerCount(type), type).toBe(0)
    expect(node.records.listenerCount('peer')).toBe(0)
  })

  it('dials nothing more once stopped', async () => {
    node.up.add(A)
    const s = relaySet([A, B], 2)
    s.start()
    await settle()
    const dials = node.dials.length
    s.stop()
    await vi.advanceTimersByTimeAsync(10 * RELAY_REDIAL_MAX_MS)
    expect(node.dials).toHaveLength(dials)
  })

  it('dials nothing while the node is not started (a stopping node closes its relay connections)', async () => {
    node.up.add(A)
    node.status = 'stopping'
    relaySet([A], 1).start()
    await vi.advanceTimersByTimeAsync(RELAY_REDIAL_MAX_MS)
    expect(node.dials).toEqual([])
  })
})

describe('relay set liveness', () => {
  const relayConnection = (peerId: string): { abort: ReturnType<typeof vi.fn> } => node.connections.get(peerId) as unknown as { abort: ReturnType<typeof vi.fn> }

  /** A relay set of relay A that reserved on it; A's connection. */
  async function reservedOnA (): Promise<{ abort: ReturnType<typeof vi.fn> }> {
    node.up.add(A)
    relaySet([A], 1).start()
    await settle()
    node.reserve(A)
    return relayConnection(A)
  }

  it('closes a relay connection that missed its pings in a row, and dials the relay again', async () => {
    const conn = await reservedOnA()
    node.ping.mockRejectedValue(new Error('ping timed out'))
    await vi.advanceTimersByTimeAsync(RELAY_LIVENESS_INTERVAL_MS * (RELAY_LIVENESS_MISSES - 1))
    expect(conn.abort).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(RELAY_LIVENESS_INTERVAL_MS)
    expect(conn.abort).toHaveBeenCalledOnce()
    expect(node.ping).toHaveBeenCalledTimes(RELAY_LIVENESS_MISSES)
    // the connection goes as libp2p closes it: the set dials the relay again at once
    node.drop(A)
    await settle()
    expect(node.dialsOf(A)).toHaveLength(2)
  })

  it('forgives a missed ping once the next one is answered', async () => {
    const conn = await reservedOnA()
    for (let i = 0; i < 4; i++) {
      // missed, answered, missed, answered: never RELAY_LIVENESS_MISSES (2) in a row
      if (i % 2 === 0) node.ping.mockRejectedValueOnce(new Error('ping timed out'))
      await vi.advanceTimersByTimeAsync(RELAY_LIVENESS_INTERVAL_MS)
    }
    expect(node.ping).toHaveBeenCalledTimes(4)
    expect(conn.abort).not.toHaveBeenCalled()
  })

  it('counts the misses of each connection: a new connection to the relay starts afresh', async () => {
    const first = await reservedOnA()
    node.ping.mockRejectedValueOnce(new Error('ping timed out'))
    await vi.advanceTimersByTimeAsync(RELAY_LIVENESS_INTERVAL_MS)
    expect(node.ping).toHaveBeenCalledTimes(1)
    // the connection closes for another reason after one miss; the set dials the relay again
    node.drop(A)
    await settle()
    const second = relayConnection(A)
    expect(second).not.toBe(first)
    node.reserve(A)
    node.ping.mockRejectedValueOnce(new Error('ping timed out'))
    await vi.advanceTimersByTimeAsync(RELAY_LIVENESS_INTERVAL_MS)
    // one miss on the new connection: not RELAY_LIVENESS_MISSES (2) in a row on it
    expect(node.ping).toHaveBeenCalledTimes(2)
    expect(second.abort).not.toHaveBeenCalled()
  })

  it('pings no relay once stopped', async () => {
    node.up.add(A)
    relaySet([A], 1).start()
    await settle()
    set?.stop()
    await vi.advanceTimersByTimeAsync(RELAY_LIVENESS_INTERVAL_MS * 3)
    expect(node.ping).not.toHaveBeenCalled()
  })
})
