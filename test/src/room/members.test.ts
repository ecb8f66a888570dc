import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_PEER_TTL_MS, HELLO_RETRY_MS } from '../../../src/constants.js'
import { Membership } from '../../../src/room/members.js'
import { StubLinks, fakeTimers, silent } from './stubs.js'
import type { MembershipComponents } from '../../../src/room/members.js'

interface Seen {
  discovers: string[]
  joins: string[]
  leaves: Array<[string, string]>
  updates: Array<[string, string]>
  hellos: string[]
}

/** A membership with stubbed links; `heard` says whom the room heard from. */
function membership (init: Partial<MembershipComponents> = {}): { members: Membership, links: StubLinks, seen: Seen, heard: Set<string> } {
  const links = new StubLinks()
  const heard = new Set<string>()
  const seen: Seen = { discovers: [], joins: [], leaves: [], updates: [], hellos: [] }
  const members = new Membership({
    room: 'test',
    log: silent,
    links,
    holder: 'room',
    peerTtl: DEFAULT_PEER_TTL_MS,
    checkEvery: DEFAULT_ANNOUNCE_INTERVAL_MS,
    hello: async () => new Uint8Array([1]),
    sendFrame: async (peer) => { seen.hellos.push(peer) },
    heard: (peer) => heard.has(peer),
    onDiscover: (peer) => { seen.discovers.push(peer) },
    onJoin: (peer) => { seen.joins.push(peer) },
    onLeave: (peer, reason) => { seen.leaves.push([peer, reason]) },
    onUpdate: (peer, path) => { seen.updates.push([peer, path]) },
    ...init
  })
  members.start()
  return { members, links, seen, heard }
}

/** peer-bob heard, connected and joined; then its connection drops. */
async function joinThenDrop (members: Membership, links: StubLinks, seen: Seen, heard: Set<string>): Promise<void> {
  heard.add('peer-bob')
  members.touch('peer-bob')
  links.connect('peer-bob')
  await vi.advanceTimersByTimeAsync(0)
  expect(seen.joins).toEqual(['peer-bob'])
  links.drop('peer-bob')
}

beforeEach(() => { fakeTimers() })
afterEach(() => { vi.useRealTimers() })

describe('room membership', () => {
  it('discovers an announced peer once, and asks the node for a direct connection to it at its addresses', () => {
    const { members, links, seen } = membership()
    members.announced('peer-bob', ['/addr/bob'], 42)
    members.announced('peer-bob', ['/addr/bob'], 42)
    expect(seen.discovers).toEqual(['peer-bob'])
    expect(links.want).toHaveBeenCalledWith('peer-bob', 'room', { addrs: ['/addr/bob'], startedAt: 42 })
    expect(members.peers()).toEqual([{ peerId: 'peer-bob', path: 'relayed' }])
  })

  it('joins a member once it is direct, our hello went out and we heard from it', async () => {
    const { members, links, seen, heard } = membership()
    members.announced('peer-bob', [], undefined)
    links.connect('peer-bob')
    await vi.advanceTimersByTimeAsync(0)
    expect(seen.hellos).toEqual(['peer-bob'])
    // direct and greeted, but not heard yet
    expect(seen.joins).toEqual([])
    heard.add('peer-bob')
    members.maybeJoin('peer-bob')
    expect(seen.joins).toEqual(['peer-bob'])
    expect(members.peers()).toEqual([{ peerId: 'peer-bob', path: 'direct' }])
  })

  it('does not join a member that is not directly connected, however often it is heard', async () => {
    const { members, seen, heard } = membership()
    heard.add('peer-bob')
    members.touch('peer-bob')
    members.greetIfUnreached('peer-bob')
    members.maybeJoin('peer-bob')
    await vi.advanceTimersByTimeAsync(0)
    expect(seen.hellos).toEqual([])
    expect(seen.joins).toEqual([])
  })

  it('reports a joined member\'s dropped and healed connection as peer:update', async () => {
    const { members, links, seen, heard } = membership()
    await joinThenDrop(members, links, seen, heard)
    expect(members.peers()).toEqual([{ peerId: 'peer-bob', path: 'relayed' }])
    links.connect('peer-bob')
    await vi.advanceTimersByTimeAsync(0)
    expect(seen.updates).toEqual([['peer-bob', 'relayed'], ['peer-bob', 'direct']])
    expect(members.peers()).toEqual([{ peerId: 'peer-bob', path: 'direct' }])
  })

  it('reports a healed connection as direct only once our hello went out on it, when peers() says so too', async () => {
    // a listener of peer:update that asked peers() then was told 'relayed' (media signals that
    // arrived meanwhile were held, and never replayed: a stream added during the heal never played)
    let release = (): void => {}
    let slow = false
    const atUpdate: Array<[string, string]> = []
    const { members, links, seen, heard } = membership({
      sendFrame: async (peer) => {
        seen.hellos.push(peer)
        if (slow) await new Promise<void>((resolve) => { release = resolve })
      },
      onUpdate: (peer, path) => { seen.updates.push([peer, path]); atUpdate.push([path, members.peers()[0].path]) }
    })
    await joinThenDrop(members, links, seen, heard)
    slow = true
    links.connect('peer-bob')
    await vi.advanceTimersByTimeAsync(0)
    // direct again, but our hello has not gone out on the new connection yet
    expect(seen.updates).toEqual([['peer-bob', 'relayed']])
    expect(members.peers()).toEqual([{ peerId: 'peer-bob', path: 'relayed' }])
    release()
    await vi.advanceTimersByTimeAsync(0)
    expect(seen.updates).toEqual([['peer-bob', 'relayed'], ['peer-bob', 'direct']])
    expect(atUpdate).toEqual([['relayed', 'relayed'], ['direct', 'direct']])
  })

  it('removes a member the relay calls unreachable, with that reason, and releases its link', () => {
    const { members, links, seen } = membership()
    members.announced('peer-bob', [], undefined)
    links.safeDispatchEvent('peer:unreachable', { detail: { peerId: 'peer-bob' } })
    expect(seen.leaves).toEqual([['peer-bob', 'unreachable']])
    expect(links.release).toHaveBeenCalledWith('peer-bob', 'room')
  })

  it('expires a member neither direct nor re-announced within peerTtl, and retries its dial meanwhile', async () => {
    const { members, links, seen } = membership()
    members.announced('peer-bob', ['/addr/bob'], undefined)
    links.want.mockClear()
    await vi.advanceTimersByTimeAsync(DEFAULT_ANNOUNCE_INTERVAL_MS)
    expect(links.want).toHaveBeenCalledWith('peer-bob', 'room', { addrs: ['/addr/bob'], startedAt: undefined })
    await vi.advanceTimersByTimeAsync(DEFAULT_PEER_TTL_MS + DEFAULT_ANNOUNCE_INTERVAL_MS)
    expect(seen.leaves).toEqual([['peer-bob', 'timeout']])
  })

  it('keeps a directly connected member that is not re-announced', async () => {
    const { members, links, seen } = membership()
    members.announced('peer-bob', [], undefined)
    links.connect('peer-bob')
    await vi.advanceTimersByTimeAsync(DEFAULT_PEER_TTL_MS * 3)
    expect(seen.leaves).toEqual([])
  })

  it('says hello again after HELLO_RETRY_MS when a hello fails on a connection that still looks open', async () => {
    let fail = true
    const sent: string[] = []
    const { members, links } = membership({ sendFrame: async (peer) => { if (fail) { fail = false; throw new Error('stream reset') } sent.push(peer) } })
    members.announced('peer-bob', [], undefined)
    links.connect('peer-bob')
    await vi.advanceTimersByTimeAsync(0)
    expect(sent).toEqual([])
    await vi.advanceTimersByTimeAsync(HELLO_RETRY_MS)
    expect(sent).toEqual(['peer-bob'])
  })

  it('stops listening to the node and expiring on stop(), idempotently', async () => {
    const { members, links, seen } = membership()
    members.announced('peer-bob', [], undefined)
    members.stop()
    members.stop()
    links.connect('peer-bob')
    await vi.advanceTimersByTimeAsync(DEFAULT_PEER_TTL_MS * 2)
    expect(seen.hellos).toEqual([])
    expect(seen.leaves).toEqual([])
    members.releaseAll()
    expect(links.release).toHaveBeenCalledWith('peer-bob', 'room')
    expect(members.peers()).toEqual([])
  })
})
