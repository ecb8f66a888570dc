import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_PRESENCE_TIMEOUT_MS } from '../../../src/constants.js'
import { Membership } from '../../../src/room/members.js'
import { PresenceMonitor } from '../../../src/room/presence-monitor.js'
import { StubLinks, fakeTimers, silent } from './stubs.js'
import type { LeaveReason } from '../../../src/index.js'

const TIMEOUT = DEFAULT_PRESENCE_TIMEOUT_MS
const INTERVAL = DEFAULT_HEARTBEAT_INTERVAL_MS

beforeEach(() => { fakeTimers() })
afterEach(() => { vi.useRealTimers() })

/** A presence monitor whose silent members leave a membership, as the room wires them. */
function presenceAndMembers (): { monitor: PresenceMonitor, members: Membership, links: StubLinks, leaves: Array<{ peer: string, reason: LeaveReason, at: number }>, heartbeats: () => number } {
  const links = new StubLinks()
  const leaves: Array<{ peer: string, reason: LeaveReason, at: number }> = []
  const heartbeat = vi.fn()
  const members = new Membership({
    room: 'test',
    log: silent,
    links,
    holder: 'room',
    peerTtl: 35_000,
    checkEvery: 10_000,
    hello: async () => new Uint8Array([1]),
    sendFrame: async () => {},
    heard: () => true,
    onDiscover: () => {},
    onJoin: (peer) => { monitor.joined(peer) },
    onLeave: (peer, reason) => {
      monitor.forget(peer)
      leaves.push({ peer, reason, at: performance.now() })
    },
    onUpdate: () => {}
  })
  const monitor = new PresenceMonitor({
    timeout: TIMEOUT,
    heartbeatInterval: INTERVAL,
    heartbeat,
    onSilent: (peer) => { if (members.joined(peer)) members.remove(peer, 'timeout') },
    afterCheck: () => {}
  })
  members.start()
  monitor.start()
  return { monitor, members, links, leaves, heartbeats: () => heartbeat.mock.calls.length }
}

/** `peer` is direct, greeted, heard from: a member that joined. */
async function join (members: Membership, links: StubLinks, peer: string): Promise<void> {
  links.direct.add(peer)
  members.touch(peer)
  members.greetIfUnreached(peer)
  await vi.advanceTimersByTimeAsync(0)
  members.maybeJoin(peer)
  expect(members.joined(peer)).toBe(true)
}

describe('room presence', () => {
  it('lets a silent member leave with reason \'timeout\' within presenceTimeout and a sixteenth of it', async () => {
    const { monitor, members, links, leaves } = presenceAndMembers()
    await join(members, links, 'peer-bob')
    const joinedAt = performance.now()
    await vi.advanceTimersByTimeAsync(TIMEOUT * 2)
    expect(leaves.map((l) => [l.peer, l.reason])).toEqual([['peer-bob', 'timeout']])
    expect(leaves[0].at - joinedAt).toBeGreaterThan(TIMEOUT)
    expect(leaves[0].at - joinedAt).toBeLessThanOrEqual(TIMEOUT * (1 + 1 / 16))
    expect(links.release).toHaveBeenCalledWith('peer-bob', 'room')
    expect(members.has('peer-bob')).toBe(false)
    monitor.stop()
  })

  it('keeps a member that keeps being heard', async () => {
    const { monitor, members, links, leaves } = presenceAndMembers()
    await join(members, links, 'peer-carol')
    for (let t = 0; t < TIMEOUT * 3; t += INTERVAL) {
      monitor.heard('peer-carol')
      await vi.advanceTimersByTimeAsync(INTERVAL)
    }
    expect(leaves).toEqual([])
    monitor.stop()
  })

  it('sends a heartbeat every heartbeatInterval, and nothing once stopped', async () => {
    const { monitor, heartbeats } = presenceAndMembers()
    await vi.advanceTimersByTimeAsync(INTERVAL * 3)
    expect(heartbeats()).toBe(3)
    monitor.stop()
    monitor.stop()
    await vi.advanceTimersByTimeAsync(INTERVAL * 3)
    expect(heartbeats()).toBe(3)
  })

  it('starts once however often start() is called, and never again after stop()', async () => {
    const { monitor, heartbeats } = presenceAndMembers()
    monitor.start()
    monitor.start()
    await vi.advanceTimersByTimeAsync(INTERVAL)
    expect(heartbeats()).toBe(1)
    monitor.stop()
    monitor.start()
    await vi.advanceTimersByTimeAsync(INTERVAL)
    expect(heartbeats()).toBe(1)
  })
})
