import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { HostRules, electHost, handoffRank } from '../../src/host.js'

describe('host rule', () => {
  it('elects the member with the lowest rank', () => {
    expect(electHost([{ peerId: 'b', rank: 20 }, { peerId: 'a', rank: 30 }, { peerId: 'c', rank: 10 }])).toBe('c')
  })

  it('breaks a tie by the smaller peer ID', () => {
    expect(electHost([{ peerId: 'b', rank: 5 }, { peerId: 'a', rank: 5 }])).toBe('a')
  })

  it('agrees whatever order the members are seen in', () => {
    const members = Array.from({ length: 8 }, (_, i) => ({ peerId: `p${(i * 5) % 8}`, rank: 100 + (i % 3) }))
    const hosts = new Set(Array.from({ length: 20 }, () => electHost([...members].sort(() => Math.random() - 0.5))))
    expect(hosts.size).toBe(1)
  })

  it('elects nobody among no members', () => {
    expect(electHost([])).toBeUndefined()
  })

  it('hands off with a rank below every member, so the new host wins the rule', () => {
    const members = [{ peerId: 'host', rank: 1 }, { peerId: 'x', rank: 2 }, { peerId: 'y', rank: 3 }]
    const rank = handoffRank(members)
    expect(electHost([...members.filter((m) => m.peerId !== 'y'), { peerId: 'y', rank }])).toBe('y')
  })
})

const SETTLE = 5_000
const ALONE = 12_000
const DECIDE = 30_000

/** One member's view, on a clock the test moves. */
function member (self: string, rank: number, clock: { t: number }): HostRules {
  return new HostRules({ self, rank, settleAfter: SETTLE, settleAlone: ALONE, decideWithin: DECIDE, now: () => clock.t })
}

/**
 * `viewer` hears a heartbeat of `from` (discovered first, as an announcement would), and counts
 * it as joined; when the viewer then has something to say at once, `from` hears its heartbeat.
 */
function hear (viewer: HostRules, from: HostRules): void {
  viewer.discover(from.self)
  const answer = viewer.hear(from.self, from.rank, from.settled, from.admissions())
  viewer.join(from.self)
  if (answer) {
    from.discover(viewer.self)
    from.hear(viewer.self, viewer.rank, viewer.settled, viewer.admissions())
  }
}

/** Every member hears every other's heartbeat once. */
function heartbeats (members: HostRules[]): void {
  for (const viewer of members) for (const from of members) if (viewer !== from) hear(viewer, from)
}

describe('host rules: admitting ranks', () => {
  it('never lets a member that claims rank 0 undercut the members already settled in the room', () => {
    const clock = { t: 0 }
    const a = member('a', 1_000, clock)
    const b = member('b', 2_000, clock)
    heartbeats([a, b])
    clock.t += SETTLE
    heartbeats([a, b])
    expect([a.settled, b.settled]).toEqual([true, true])
    expect([a.host(), b.host()]).toEqual(['a', 'a'])

    const mallory = member('mallory', 0, clock)
    for (const viewer of [a, b]) {
      hear(viewer, mallory)
      expect(viewer.host()).toBe('a')
      // ranked after everyone present, whatever it claims, and it cannot move itself earlier later
      expect(viewer.rankOf('mallory')).toBeGreaterThan(2_000)
      viewer.hear('mallory', -1e15, true)
      expect(viewer.host()).toBe('a')
    }
    // a handoff from the host remains the way to change hosts
    const rank = a.handoffRank()
    for (const viewer of [a, b]) viewer.handoff('b', rank)
    expect([a.host(), b.host()]).toEqual(['b', 'b'])
  })

  it('defends the rank of a member alone in its room once it has settled', () => {
    const clock = { t: 0 }
    const a = member('a', 1_000, clock)
    clock.t += ALONE
    expect(a.host()).toBe('a')
    const mallory = member('mallory', 0, clock)
    hear(a, mallory)
    expect(a.host()).toBe('a')
  })

  it('lets members that join together trust each other\'s claims, and agree', () => {
    const clock = { t: 0 }
    const a = member('a', 2_000, clock)
    const b = member('b', 1_000, clock)
    clock.t += 500
    hear(a, b)
    hear(b, a)
    expect([a.host(), b.host()]).toEqual(['b', 'b'])
  })

  it('ranks a newcomer whose clock is behind after the settled members, in its own view as in theirs', () => {
    const clock = { t: 0 }
    const a = member('a', 5_000, clock)
    const b = member('b', 6_000, clock)
    heartbeats([a, b])
    clock.t += 60_000
    heartbeats([a, b])
    // its clock is a minute behind: it claims to have joined before everyone
    const late = member('late', 1_000, clock)
    late.discover('a')
    late.discover('b')
    // they greet each other: the settled ones admit it after themselves and say so
    heartbeats([a, b, late])
    heartbeats([a, b, late])
    expect(late.rank).toBeGreaterThan(6_000)
    expect([a.host(), b.host(), late.host()]).toEqual(['a', 'a', 'a'])
    // every view of it agrees with its own
    expect([a.rankOf('late'), b.rankOf('late')]).toEqual([late.rank, late.rank])
    clock.t += SETTLE
    expect(late.settled).toBe(true)
  })

  it('does not count itself as host while a member it discovered is unheard', () => {
    const clock = { t: 0 }
    const a = member('a', 1_000, clock)
    const b = member('b', 2_000, clock)
    heartbeats([a, b])
    clock.t += 60_000
    heartbeats([a, b])
    const c = member('c', 1e15, clock)
    const d = member('d', 1e15, clock)
    // the newcomer knows nobody: it is its own host
    expect(c.host()).toBe('c')
    c.discover('a')
    c.discover('b')
    expect(c.decided()).toBe(false)
    // one of the members it discovered stands in for the host it has not heard yet
    expect(c.host()).toBe('a')
    hear(c, b)
    // a is still unheard and may rank first: not c, the best it heard so far
    expect(c.decided()).toBe(false)
    expect(c.host()).toBe('b')
    hear(c, a)
    expect(c.decided()).toBe(true)
    expect(c.host()).toBe('a')
    // a settled member is not undecided by a newcomer it has not heard yet
    a.discover('d')
    expect(a.host()).toBe('a')
    void d
  })

  it('decides at the latest decideWithin after joining, even if a discovered member is never heard', () => {
    const clock = { t: 0 }
    const a = member('a', 1_000, clock)
    a.discover('ghost')
    clock.t += DECIDE - 1
    expect(a.host()).toBe('ghost')
    clock.t += 1
    expect(a.host()).toBe('a')
  })

  it('admits a restarted member again like a newcomer: it keeps neither its rank nor the host role', () => {
    const clock = { t: 0 }
    const a = member('a', 1_000, clock)
    const b = member('b', 2_000, clock)
    const c = member('c', 3_000, clock)
    heartbeats([a, b, c])
    clock.t += 60_000
    heartbeats([a, b, c])
    expect([a, b, c].map((m) => m.host())).toEqual(['a', 'a', 'a'])
    // a reloads under the same peer ID: a new session, joining, with a join time that would win;
    // the others do not answer the announcement of a peer they know, so it finds them only with
    // their periodic announcements, up to 10 s later
    const a2 = member('a', 900, clock)
    expect(a2.host()).toBe('a')
    clock.t += 10_000
    a2.discover('b')
    a2.discover('c')
    for (const viewer of [b, c]) viewer.restart('a')
    heartbeats([a2, b, c])
    heartbeats([a2, b, c])
    expect([a2, b, c].map((m) => m.host())).toEqual(['b', 'b', 'b'])
  })
})

/**
 * Honest members join at random times (with clocks up to 30 s off), discover each other through
 * announcements at once, meet (greeting each other) in random order at random moments, and hear
 * each other's heartbeats in random order; once every member has heard every other's latest
 * heartbeat they all name the same host.
 */
describe('host rules: agreement among honest members', () => {
  it('agrees on one host whatever the join times, clock skews and order of meeting and hearing', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ joinAt: fc.integer({ min: 0, max: 20_000 }), skew: fc.integer({ min: -30_000, max: 30_000 }) }), { minLength: 2, maxLength: 6 }),
      fc.array(fc.record({ x: fc.nat(), y: fc.nat(), afterMs: fc.integer({ min: 0, max: 3_000 }) }), { minLength: 10, maxLength: 200 }),
      (specs, steps) => {
        const clock = { t: 0 }
        const members = specs.map((s, i) => ({ ...s, id: `p${i}` }))
        const joined: HostRules[] = []
        const byId = new Map<string, HostRules>()
        const met = new Set<string>()
        // meeting: both sides are ready and greet each other (room.ts `checkReady` → `greet`)
        const step = (x: HostRules, y: HostRules): void => {
          const key = [x.self, y.self].sort().join()
          if (!met.has(key)) {
            met.add(key)
            hear(x, y)
            hear(y, x)
          } else {
            hear(x, y)
          }
        }
        // heartbeats every 2 s between members that met (they reach each other directly)
        let beat = 0
        const joinedAt = new Map<string, number>()
        const tick = (): void => {
          while (beat + 2_000 <= clock.t) {
            beat += 2_000
            for (const x of joined) for (const y of joined) if (x !== y && met.has([x.self, y.self].sort().join())) hear(x, y)
            // members that can reach each other meet within 20 s, well before either decides
            // without the other (decideWithin, 30 s); those that cannot are host.ts's residual case
            for (const x of joined) {
              for (const y of joined) {
                const late = Math.max(joinedAt.get(x.self) ?? 0, joinedAt.get(y.self) ?? 0)
                if (x !== y && beat - late >= 20_000) step(x, y)
              }
            }
          }
        }
        const join = (e: typeof members[number]): void => {
          const m = member(e.id, 1_700_000_000_000 + e.joinAt + e.skew, clock)
          // the members present announce themselves to a newcomer, which announces itself to them
          for (const other of joined) { m.discover(other.self); other.discover(m.self) }
          joined.push(m)
          byId.set(e.id, m)
          joinedAt.set(e.id, clock.t)
        }
        let nextJoin = 0
        const order = [...members].sort((a, b) => a.joinAt - b.joinAt)
        for (const s of steps) {
          clock.t += s.afterMs
          tick()
          while (nextJoin < order.length && order[nextJoin].joinAt <= clock.t) join(order[nextJoin++])
          if (joined.length < 2) continue
          const x = joined[s.x % joined.length]
          const y = joined[s.y % joined.length]
          if (x !== y) step(x, y)
        }
        // the rest join; then every pair meets, and heartbeats go around as time goes on
        for (const e of order.slice(nextJoin)) {
          clock.t = Math.max(clock.t, e.joinAt)
          tick()
          join(e)
        }
        tick()
        for (const x of joined) for (const y of joined) if (x !== y) step(x, y)
        for (let round = 0; round < 20; round++) {
          clock.t += 2_000
          tick()
        }
        return new Set(joined.map((m) => m.host())).size === 1
      }
    ), { numRuns: 1000 })
  })
})

describe('host rules: a forging member', () => {
  it('changes no settled member\'s host, whatever rank, flag and admissions it claims, however often', () => {
    fc.assert(fc.property(
      fc.integer({ min: 2, max: 5 }),
      fc.array(fc.record({ rank: fc.double({ noNaN: true, noDefaultInfinity: true }), settled: fc.boolean(), victim: fc.nat(), victimRank: fc.double({ noNaN: true, noDefaultInfinity: true }) }), { minLength: 1, maxLength: 20 }),
      (n, forgeries) => {
        const clock = { t: 0 }
        const honest = Array.from({ length: n }, (_, i) => member(`h${i}`, 1_700_000_000_000 + i * 1000, clock))
        heartbeats(honest)
        clock.t += SETTLE
        heartbeats(honest)
        const before = honest.map((m) => m.host())
        for (const f of forgeries) {
          for (const viewer of honest) {
            viewer.discover('mallory')
            viewer.hear('mallory', f.rank, f.settled, [{ peerId: honest[f.victim % n].self, rank: f.victimRank }, { peerId: viewer.self, rank: f.victimRank }])
            viewer.join('mallory')
          }
          clock.t += 2_000
          heartbeats(honest)
        }
        return honest.every((m, i) => m.host() === before[i] && m.host() !== 'mallory')
      }
    ), { numRuns: 500 })
  })
})
