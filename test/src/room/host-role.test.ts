import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RANK_DECIDE_WITHIN_MS, RANK_SETTLE_MS } from '../../../src/constants.js'
import { RoomClosedError } from '../../../src/errors.js'
import { HostRole } from '../../../src/room/host-role.js'
import { fakeTimers, silent } from './stubs.js'
import type { HostRoleComponents } from '../../../src/room/host-role.js'

const SELF = 'peer-self'

/** A host role with stubbed components: `changes` records `host:change`, `rankChanges` our heartbeats-now. */
function hostRole (init: Partial<HostRoleComponents> = {}): { role: HostRole, changes: Array<{ host: string, previous: string }>, rankChanges: () => number, abort: AbortController } {
  const changes: Array<{ host: string, previous: string }> = []
  const rankChanged = vi.fn()
  const abort = new AbortController()
  const role = new HostRole({
    self: SELF,
    room: 'test',
    log: silent,
    announceInterval: 10_000,
    signal: abort.signal,
    rank: 1_000,
    onChange: (host, previous) => { changes.push({ host, previous }) },
    rankChanged,
    ...init
  })
  return { role, changes, rankChanges: () => rankChanged.mock.calls.length, abort }
}

/** `peer` is discovered, heard with `rank`, and joins. */
function meet (role: HostRole, peer: string, rank: number): void {
  role.discover(peer)
  role.hear(peer, { rank, settled: true, restarted: false }, [])
  role.join(peer)
  role.elect()
}

beforeEach(() => { fakeTimers() })
afterEach(() => { vi.useRealTimers() })

describe('room host role', () => {
  it('is its own host while it knows of nobody', () => {
    const { role, changes } = hostRole()
    role.elect()
    expect(role.host).toBe(SELF)
    expect(role.decided()).toBe(true)
    expect(changes).toEqual([])
  })

  it('elects the member with the lowest rank and says so once', () => {
    const { role, changes } = hostRole()
    meet(role, 'peer-early', 1)
    meet(role, 'peer-late', 2_000)
    expect(role.host).toBe('peer-early')
    expect(changes).toEqual([{ host: 'peer-early', previous: SELF }])
  })

  it('accepts a handoff only from the host', () => {
    const { role, changes } = hostRole()
    meet(role, 'peer-host', 1)
    meet(role, 'peer-other', 2)
    // a member that is not the host hands the role to us: refused, nothing moves
    expect(role.receiveHandoff('peer-other', { to: SELF, rank: 0 })).toBe('notHost')
    expect(role.host).toBe('peer-host')
    // the host does
    expect(role.receiveHandoff('peer-host', { to: SELF, rank: 0 })).toBe(true)
    expect(role.host).toBe(SELF)
    expect(changes.map((c) => c.host)).toEqual(['peer-host', SELF])
  })

  it('tells the room at once when a handoff makes us host, or when ours makes someone else host', () => {
    const { role, rankChanges } = hostRole()
    meet(role, 'peer-host', 1)
    const before = rankChanges()
    role.receiveHandoff('peer-host', { to: SELF, rank: 0 })
    expect(rankChanges()).toBe(before + 1)
    role.handOff('peer-host', role.handoffRank())
    expect(role.host).toBe('peer-host')
    expect(rankChanges()).toBe(before + 2)
  })

  it('is not host, and is undecided, while a member it discovered is unheard', async () => {
    const { role } = hostRole()
    role.discover('peer-unheard')
    role.elect()
    expect(role.host).not.toBe(SELF)
    expect(role.decided()).toBe(false)
    // a one-way publish waits; hearing the member decides it
    let decided = false
    void role.whenDecided().then(() => { decided = true })
    meet(role, 'peer-unheard', 1)
    await vi.advanceTimersByTimeAsync(0)
    expect(decided).toBe(true)
    expect(role.host).toBe('peer-unheard')
  })

  it('decides at the latest RANK_DECIDE_WITHIN_MS after joining, even if a member it discovered is never heard', async () => {
    const { role } = hostRole()
    role.discover('peer-never')
    role.elect()
    let decided = false
    void role.whenDecided().then(() => { decided = true })
    await vi.advanceTimersByTimeAsync(RANK_DECIDE_WITHIN_MS + 1)
    // the room looks again with its presence check: the decision comes with the next elect
    role.elect()
    await vi.advanceTimersByTimeAsync(0)
    expect(decided).toBe(true)
    expect(role.host).toBe(SELF)
  })

  it('rejects a waiting publish with RoomClosedError when the room is left', async () => {
    const { role, abort } = hostRole()
    role.discover('peer-unheard')
    role.elect()
    const waiting = role.whenDecided()
    abort.abort(new RoomClosedError('room "test" was left'))
    await expect(waiting).rejects.toHaveProperty('name', 'RoomClosedError')
  })

  it('takes a member that restarted as a newcomer once we are settled: it loses the host role', async () => {
    const { role } = hostRole()
    meet(role, 'peer-host', 1)
    meet(role, 'peer-other', 2_000)
    expect(role.host).toBe('peer-host')
    await vi.advanceTimersByTimeAsync(RANK_SETTLE_MS + 1)
    role.elect()
    expect(role.ranks.settled).toBe(true)
    role.hear('peer-host', { rank: 1, settled: false, restarted: true }, [])
    role.elect()
    expect(role.host).not.toBe('peer-host')
  })
})
