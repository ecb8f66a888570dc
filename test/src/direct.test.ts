/**
 * The rules of direct connections (src/direct.ts) with stubbed libp2p parts and fake timers: who
 * dials, takeover, retries and backoff, healing, hang-up, duplicates, which addresses are dialled.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { DirectLinks } from '../../src/direct.js'
import type { DirectLinksComponents } from '../../src/direct.js'
import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const TAKEOVER = 2_000
const BACKOFF = 100

let SELF: string, PEER: string, RELAY: string, STRANGER: string
beforeAll(async () => {
  const ids = await Promise.all(Array.from({ length: 4 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  ;[SELF, PEER, RELAY, STRANGER] = ids
})

const circuit = (relay: string, peer: string): string => `/ip4/127.0.0.1/tcp/9090/ws/p2p/${relay}/p2p-circuit/webrtc/p2p/${peer}`

interface FakeConnection extends Connection { closed: boolean }

let opened = 0

function conn (peer: string, kind: 'direct' | 'relayed', direction: 'inbound' | 'outbound' = 'outbound'): FakeConnection {
  const c = {
    remotePeer: { toString: () => peer },
    remoteAddr: multiaddr(kind === 'direct' ? `/webrtc/p2p/${peer}` : circuit(RELAY, peer).replace('/webrtc', '')),
    status: 'open',
    direction,
    multiplexer: kind === 'direct' ? '/webrtc' : '/yamux/1.0.0',
    limits: kind === 'direct' ? undefined : { bytes: 1n },
    closed: false,
    rtt: 5,
    timeline: { open: ++opened },
    close: vi.fn(async () => { c.closed = true; c.status = 'closed' })
  }
  return c as unknown as FakeConnection
}

/** A libp2p stand-in: its connections, its events, and a dial the test scripts. */
class FakeNode {
  readonly events = new TypedEventEmitter<any>()
  readonly connections = new Map<string, FakeConnection[]>()
  readonly dials: Array<{ addrs: string[] }> = []
  readonly hangUps: string[] = []
  /** what the next dials do: a connection to open, or an error to throw */
  script: Array<'ok' | Error> = []

  components (): DirectLinksComponents {
    return {
      peerId: SELF,
      logger: { forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) } as any,
      events: this.events,
      dial: async (addrs: Multiaddr[], opts) => {
        this.dials.push({ addrs: addrs.map(String) })
        const peer = addrs[0].getComponents().at(-1)?.value as string
        const next = this.script.shift() ?? 'ok'
        if (next instanceof Error) throw next
        opts.onProgress({ type: 'webrtc:open-signaling-stream' })
        opts.onProgress({ type: 'webrtc:read-ice-candidates' })
        return this.open(peer, 'direct', 'outbound')
      },
      getConnections: (peer) => (this.connections.get(peer) ?? []).filter((c) => c.status === 'open'),
      hangUp: async (peer) => {
        this.hangUps.push(peer)
        for (const c of this.connections.get(peer) ?? []) this.close(c)
      },
      isKnownRelay: (id) => id === RELAY
    }
  }

  open (peer: string, kind: 'direct' | 'relayed', direction: 'inbound' | 'outbound'): FakeConnection {
    const c = conn(peer, kind, direction)
    this.connections.set(peer, [...(this.connections.get(peer) ?? []), c])
    this.events.safeDispatchEvent('connection:open', { detail: c })
    return c
  }

  close (c: FakeConnection): void {
    ;(c as any).status = 'closed'
    this.events.safeDispatchEvent('connection:close', { detail: c })
  }
}

let node: FakeNode
let links: DirectLinks
/** our node started at 1,000; a peer announcing 500 started earlier (we dial), 2,000 later (it dials) */
const OURS = 1_000
const EARLIER = 500
const LATER = 2_000

function events (type: 'peer:direct' | 'peer:drop' | 'peer:unreachable'): string[] {
  const seen: string[] = []
  links.addEventListener(type, (e) => { seen.push(e.detail.peerId) })
  return seen
}

beforeEach(() => {
  vi.useFakeTimers()
  node = new FakeNode()
  links = new DirectLinks(node.components(), { startedAt: OURS, dialAttempts: 4, dialBackoff: BACKOFF, dialTimeout: 20_000, dialTakeover: TAKEOVER })
  links.start()
})
afterEach(() => {
  links.stop()
  vi.useRealTimers()
})

describe('direct links', () => {
  it('dials a peer whose node started earlier, at once, over its circuit address', async () => {
    const direct = events('peer:direct')
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(0)
    expect(node.dials).toEqual([{ addrs: [circuit(RELAY, PEER)] }])
    expect(direct).toEqual([PEER])
    expect(links.isDirect(PEER)).toBe(true)
    expect(links.stats(PEER)).toEqual({ dialAttempts: 1, dialSuccesses: 1, dialFailures: 0 })
    expect(Object.keys(links.phases(PEER)).sort()).toEqual(['connected', 'dialStarted', 'relayed', 'signaled'])
  })

  it('waits for a peer that started later to dial, and takes over after dialTakeover', async () => {
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: LATER })
    await vi.advanceTimersByTimeAsync(TAKEOVER - 1)
    expect(node.dials).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(node.dials).toHaveLength(1)
  })

  it('needs no takeover when the peer dials in time', async () => {
    const direct = events('peer:direct')
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: LATER })
    node.open(PEER, 'relayed', 'inbound')
    node.open(PEER, 'direct', 'inbound')
    await vi.advanceTimersByTimeAsync(TAKEOVER * 2)
    expect(node.dials).toHaveLength(0)
    expect(direct).toEqual([PEER])
    expect(links.phases(PEER)).toHaveProperty('relayed')
  })

  it('takes over from no peer that is already dialing us', async () => {
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: LATER })
    // its signaling circuit comes in, then its dial takes long (a busy CPU)
    node.open(PEER, 'relayed', 'inbound')
    await vi.advanceTimersByTimeAsync(TAKEOVER * 5)
    expect(node.dials).toHaveLength(0)
  })

  it('breaks a tie of start times by peer ID, the same way on both sides', () => {
    const other = new DirectLinks({ ...node.components(), peerId: PEER }, { startedAt: OURS, dialAttempts: 1, dialBackoff: 1, dialTimeout: 1, dialTakeover: 1 })
    expect(links.weDial(PEER, OURS)).toBe(SELF < PEER)
    expect(other.weDial(SELF, OURS)).toBe(PEER < SELF)
    expect(links.weDial(PEER, OURS)).not.toBe(other.weDial(SELF, OURS))
    // without a start time, the smaller peer ID dials
    expect(links.weDial(PEER)).toBe(SELF < PEER)
  })

  it('retries a failed dial with a doubling backoff, counting each attempt', async () => {
    node.script = [new Error('DTLS alert: unknown CA'), new Error('TimeoutError'), 'ok']
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(0)
    expect(node.dials).toHaveLength(1)
    // the second attempt comes after backoff × [0.5, 1.5), the third after twice that
    await vi.advanceTimersByTimeAsync(BACKOFF * 1.5)
    expect(node.dials).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(BACKOFF * 3)
    expect(node.dials).toHaveLength(3)
    expect(links.isDirect(PEER)).toBe(true)
    expect(links.stats(PEER)).toEqual({ dialAttempts: 3, dialSuccesses: 1, dialFailures: 2, lastError: 'Error: TimeoutError' })
  })

  it('reports a peer the relay holds no reservation for as unreachable, without retrying', async () => {
    const unreachable = events('peer:unreachable')
    node.script = [new Error('failed to connect via relay with status NO_RESERVATION')]
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(BACKOFF * 100)
    expect(node.dials).toHaveLength(1)
    expect(unreachable).toEqual([PEER])
  })

  it('heals a dropped connection while the peer is wanted', async () => {
    const drops = events('peer:drop')
    const direct = events('peer:direct')
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(0)
    node.close(node.connections.get(PEER)?.[0] as FakeConnection)
    await vi.advanceTimersByTimeAsync(0)
    expect(drops).toEqual([PEER])
    expect(node.dials).toHaveLength(2)
    expect(direct).toEqual([PEER, PEER])
  })

  it('shares one dial between the rooms that want a peer, and hangs up once the last lets go', async () => {
    links.want(PEER, 'room a', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    links.want(PEER, 'room b', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(0)
    expect(node.dials).toHaveLength(1)
    links.release(PEER, 'room a')
    expect(node.hangUps).toEqual([])
    links.release(PEER, 'room b')
    expect(node.hangUps).toEqual([PEER])
    // no longer wanted: a drop is not healed
    await vi.advanceTimersByTimeAsync(TAKEOVER * 2)
    expect(node.dials).toHaveLength(1)
  })

  it('stops a takeover timer when the peer is let go', async () => {
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: LATER })
    links.release(PEER, 'room')
    await vi.advanceTimersByTimeAsync(TAKEOVER * 2)
    expect(node.dials).toHaveLength(0)
  })

  it('dials only /p2p-circuit/webrtc addresses of the peer, through relays it knows', async () => {
    links.want(PEER, 'room', {
      startedAt: EARLIER,
      addrs: [
        `/ip4/10.0.0.7/tcp/80/ws/p2p/${PEER}`, // a LAN address of the announcer's choosing
        circuit(STRANGER, PEER), // a relay we do not know
        `/ip4/127.0.0.1/tcp/9090/ws/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`, // a plain circuit
        circuit(RELAY, STRANGER), // another peer
        'not a multiaddr',
        `${circuit(RELAY, PEER)}/p2p-circuit`
      ]
    })
    await vi.advanceTimersByTimeAsync(TAKEOVER * 2)
    expect(node.dials).toHaveLength(0)
    links.want(PEER, 'room', { addrs: [circuit(STRANGER, PEER), circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(0)
    expect(node.dials).toEqual([{ addrs: [circuit(RELAY, PEER)] }])
  })

  it('keeps the connection the rule\'s dialer opened when both sides dialed', async () => {
    const direct = events('peer:direct')
    const ours = node.open(PEER, 'direct', 'outbound')
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    // the peer took over at the same time
    const theirs = node.open(PEER, 'direct', 'inbound')
    await vi.advanceTimersByTimeAsync(0)
    // we started later, so ours stays
    expect(theirs.close).toHaveBeenCalled()
    expect(ours.close).not.toHaveBeenCalled()
    expect(direct).toEqual([PEER])
  })

  it('keeps the newer connection when the dialer dials again over one it has lost', async () => {
    const direct = events('peer:direct')
    const old = node.open(PEER, 'direct', 'outbound')
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    // our side of the old connection died without the peer noticing; we healed by dialing again
    const healed = node.open(PEER, 'direct', 'outbound')
    await vi.advanceTimersByTimeAsync(0)
    expect(old.close).toHaveBeenCalled()
    expect(healed.close).not.toHaveBeenCalled()
    expect(direct).toEqual([PEER])
  })

  it('does nothing after stop', async () => {
    links.stop()
    links.want(PEER, 'room', { addrs: [circuit(RELAY, PEER)], startedAt: EARLIER })
    await vi.advanceTimersByTimeAsync(TAKEOVER * 2)
    expect(node.dials).toHaveLength(0)
  })
})
