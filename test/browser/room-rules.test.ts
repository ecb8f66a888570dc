/**
 * The rules a room carries, enforced by every receiver, in real Chromium tabs through a real
 * relay: session types, the host and its handoff, presence, limits and ordering, private rooms,
 * and the backlog for late joiners.
 */
import { hkdfSync, pbkdf2Sync } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { PRIVATE_ROOM_KDF_ITERATIONS } from '../../src/constants.js'
import { launchChromium, openTab, relayStatus, waitJoined, waitMessages } from './tabs.js'
import type { StartOptions } from './fixture/harness.js'
import type { Tab } from './tabs.js'
import type { Browser } from 'playwright-core'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')
const fixtureUrl = inject('fixtureUrl')

let browser: Browser
let open: Tab[] = []
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => { await browser?.close() })
afterEach(async () => {
  await Promise.all(open.map(async (t) => { await t.page.context().close().catch(() => {}) }))
  open = []
})

async function tab (room: string, opts: StartOptions = {}): Promise<Tab> {
  const t = await openTab(browser, fixtureUrl, relayAddr, room, opts)
  open.push(t)
  return t
}

/** `n` tabs in one room, each joined to every other. */
async function meet (n: number, room: string, opts: StartOptions = {}): Promise<Tab[]> {
  const tabs = await Promise.all(Array.from({ length: n }, async () => tab(room, opts)))
  await Promise.all(tabs.map(async (t) => { await waitJoined(t, tabs.filter((o) => o !== t).map((o) => o.peerId)) }))
  return tabs
}

/** Polls `check` until it holds (every 50 ms), failing after `timeout` ms. */
async function until (what: string, check: () => Promise<boolean>, timeout = 60_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const hostOf = async (t: Tab): Promise<string | undefined> => t.page.evaluate(() => window.harness.host())
const statsOf = async (t: Tab) => t.page.evaluate(() => window.harness.stats())
const texts = async (t: Tab, prefix: string): Promise<string[]> => (await t.rec()).messages.filter((m) => m.text.startsWith(prefix)).map((m) => m.text)

/** Waits until every tab in `tabs` reports the same host, one of `among`, and returns it. */
async function agreedHost (tabs: Tab[], among: Tab[]): Promise<string> {
  let host: string | undefined
  await until('all members to report the same host', async () => {
    const hosts = await Promise.all(tabs.map(hostOf))
    host = hosts[0]
    return hosts.every((h) => h === host) && among.some((t) => t.peerId === host)
  })
  return host as string
}

describe('room session types in Chromium', () => {
  it('one-way: only the host publishes, and every receiver drops what anyone else sends', async () => {
    const tabs = await meet(3, `oneway-${Date.now()}`, { roomInit: { type: 'one-way' } })
    const host = await agreedHost(tabs, tabs)
    const hostTab = tabs.find((t) => t.peerId === host) as Tab
    const [rogue, listener] = tabs.filter((t) => t !== hostTab)

    // the API refuses a non-host
    expect(await rogue.page.evaluate(async () => window.harness.tryPublish('not allowed'))).toBe('NotHostError')
    // a modified client skips that check: every receiver drops its messages anyway
    await rogue.page.evaluate(async () => window.harness.flood(5, 'rogue'))
    await hostTab.page.evaluate(async () => window.harness.publish('cast:1'))
    await Promise.all([listener, rogue].map(async (t) => { await waitMessages(t, 'cast:', 1) }))
    await until('the forged messages to be dropped', async () => {
      const [a, b] = await Promise.all([statsOf(listener), statsOf(hostTab)])
      return (a?.messages.dropped.notHost ?? 0) >= 5 && (b?.messages.dropped.notHost ?? 0) >= 5
    })
    expect(await texts(listener, 'rogue')).toEqual([])
    expect(await texts(hostTab, 'rogue')).toEqual([])
    expect(await texts(listener, 'cast:')).toEqual(['cast:1'])

    // nor can it make itself host: a handoff from a non-host and a lowered rank are both ignored
    await rogue.page.evaluate(async () => window.harness.claimHost())
    await until('the forged handoff to be dropped', async () => ((await statsOf(listener))?.messages.dropped.notHost ?? 0) >= 6)
    await hostTab.page.evaluate(async () => window.harness.publish('cast:2'))
    await waitMessages(listener, 'cast:2', 1)
    for (const t of tabs) expect(await hostOf(t)).toBe(host)
  })

  it('pairwise: a message reaches only the peer it is addressed to, over a direct stream', async () => {
    const [a, b, c] = await meet(3, `pairs-${Date.now()}`, { roomInit: { type: 'pairwise' } })
    expect(await a.page.evaluate(async () => window.harness.tryPublish('to all'))).toBe('SessionTypeError')

    await a.page.evaluate(async (to) => window.harness.send(to, 'secret-for-b'), b.peerId)
    await waitMessages(b, 'secret-for-b', 1)
    // then one for c: c receiving it proves c was listening all along
    await a.page.evaluate(async (to) => window.harness.send(to, 'note-for-c'), c.peerId)
    await waitMessages(c, 'note-for-c', 1)

    expect(await texts(b, '')).toEqual(['secret-for-b'])
    expect(await texts(c, '')).toEqual(['note-for-c'])
    const stats = await statsOf(c)
    expect(stats?.messages.received).toBe(1)
    // gossipsub never carried it: nobody dropped a pairwise message as the wrong type
    expect(stats?.messages.dropped.wrongType).toBe(0)
  })

  it('keeps rooms of one name and different types apart', async () => {
    const name = `types-${Date.now()}`
    const [b1, b2] = await meet(2, name)
    const odd = await tab(name, { roomInit: { type: 'pairwise' } })
    await b1.page.evaluate(async () => window.harness.publish('broadcast:1'))
    await waitMessages(b2, 'broadcast:1', 1)
    const seen = await odd.rec()
    expect(seen.discovers).toEqual([])
    expect(seen.messages).toEqual([])
  })
})

describe('room host in Chromium', () => {
  it('agrees on one host, follows a handoff, and agrees on a new host when the host tab is closed', async () => {
    const tabs = await meet(3, `host-${Date.now()}`)
    const first = await agreedHost(tabs, tabs)
    const firstTab = tabs.find((t) => t.peerId === first) as Tab
    const target = tabs.find((t) => t !== firstTab) as Tab

    // only the host may hand off
    expect(await target.page.evaluate(async (p) => window.harness.handOffHost(p), target.peerId)).toBe('NotHostError')
    expect(await firstTab.page.evaluate(async (p) => window.harness.handOffHost(p), target.peerId)).toBeUndefined()
    expect(await agreedHost(tabs, [target])).toBe(target.peerId)

    // the host's tab goes away: the others agree on one of themselves
    const rest = tabs.filter((t) => t !== target)
    const closed = Date.now()
    await target.page.close()
    const next = await agreedHost(rest, rest)
    const agreedMs = Date.now() - closed
    console.log(`host tab closed: the ${rest.length} others agreed on a new host after ${agreedMs} ms`)
    expect(rest.map((t) => t.peerId)).toContain(next)
    // a closing tab leaves its rooms as it goes (pagehide): 'left', not a presence timeout
    await until('the closed tab to be reported as left', async () => {
      const recs = await Promise.all(rest.map(async (t) => t.rec()))
      return recs.every((r) => r.leaves.some((l) => l.peerId === target.peerId))
    })
    for (const t of rest) expect((await t.rec()).leaves.find((l) => l.peerId === target.peerId)?.reason).toBe('left')
  })
})

describe('room presence in Chromium', () => {
  it('drops a crashed tab from every view within the presence timeout', async () => {
    const tabs = await meet(3, `presence-${Date.now()}`)
    const [victim, ...rest] = tabs
    const cdp = await victim.page.context().newCDPSession(victim.page)
    const killed = Date.now()
    // the renderer dies at once: no leave, no unsubscribe, no goodbye of any kind
    void cdp.send('Page.crash').catch(() => {})
    await until('every member to drop the crashed tab', async () => {
      const recs = await Promise.all(rest.map(async (t) => t.rec()))
      return recs.every((r) => r.leaves.some((l) => l.peerId === victim.peerId))
    }, 30_000)
    const goneMs = Date.now() - killed
    const reasons = (await Promise.all(rest.map(async (t) => t.rec()))).map((r) => r.leaves.find((l) => l.peerId === victim.peerId)?.reason)
    console.log(`crashed tab left every view after ${goneMs} ms (reasons: ${reasons.join(', ')})`)
    // silence (timeout) or the relay saying its reservation is gone (unreachable), whichever first
    for (const reason of reasons) expect(['timeout', 'unreachable']).toContain(reason)
    // presenceTimeout (8 s) plus one presence check (2 s) and the CPU's slack
    expect(goneMs).toBeLessThan(15_000)
  })
})

describe('room limits and ordering in Chromium', () => {
  it('holds a flooding peer to the configured rate at every receiver, and numbers messages per sender', async () => {
    const limits = { messagesPerSecond: 20, burst: 10 }
    const [flooder, a, b] = await meet(3, `flood-${Date.now()}`, { roomInit: limits })

    // the API refuses what is over the sender's own bucket
    const refused = await a.page.evaluate(async () => {
      const names: Array<string | undefined> = []
      for (let i = 0; i < 15; i++) names.push(await window.harness.tryPublish(`burst:${i}`))
      return names
    })
    expect(refused.filter((n) => n === undefined).length).toBeLessThanOrEqual(limits.burst + 2)
    expect(refused).toContain('RateLimitedError')

    // a modified client that skips every sender-side check
    const { published, ms } = await flooder.page.evaluate(async () => window.harness.flood(1_000, 'flood'))
    // counted is not yet seen: a receiver's counters move as frames are opened, its app hears of
    // them (messages, gaps) once they are put in order. In one full run (2 December) the checks
    // below found a receiver's app had heard of none of the flood while its counters said it was
    // over; waiting for what the checks read keeps them about delivery, not about timing (a
    // receiver that never hears of the flood still fails, here)
    await until('the flood to be accounted for, and heard of by each receiver\'s app', async () => {
      const stats = await Promise.all([a, b].map(statsOf))
      const recs = await Promise.all([a, b].map(async (t) => t.rec()))
      return stats.every((s) => (s?.messages.dropped.rateLimited ?? 0) + (s?.messages.received ?? 0) >= published * 0.9) &&
        recs.every((r) => r.messages.some((m) => m.from === flooder.peerId) && r.gaps.some((g) => g.from === flooder.peerId))
    })
    for (const t of [a, b]) {
      const got = (await t.rec()).messages.filter((m) => m.from === flooder.peerId)
      // the receiver's bucket starts full with the first message and refills while the flood
      // lasts at the receiver, which is longer than the sender's loop
      const windowMs = got.length > 0 ? (got.at(-1)?.t ?? 0) - (got[0]?.t ?? 0) : 0
      const ceiling = limits.burst + limits.messagesPerSecond * (windowMs / 1000) + 1
      console.log(`flood: ${published} sent in ${ms.toFixed(0)} ms (${(published / ms * 1000).toFixed(0)}/s); ${got.length} delivered over ${windowMs.toFixed(0)} ms (${(got.length / Math.max(ms, windowMs) * 1000).toFixed(1)}/s) against a limit of ${limits.messagesPerSecond}/s + burst ${limits.burst}`)
      expect(got.length).toBeLessThanOrEqual(ceiling)
      // delivered once each, in the sender's order, and what was dropped shows up as gaps
      const seqs = got.map((m) => m.seq)
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
      expect(new Set(seqs).size).toBe(seqs.length)
      const rec = await t.rec()
      expect(rec.gaps.filter((g) => g.from === flooder.peerId).length).toBeGreaterThan(0)
    }
    const stats = await statsOf(a)
    expect(stats?.peers[flooder.peerId]?.path).toBe('direct')
  })

  it('refuses an oversized message at the sender', async () => {
    const [a] = await meet(1, `size-${Date.now()}`, { roomInit: { maxMessageBytes: 1024 } })
    expect(await a.page.evaluate(async () => window.harness.tryPublish('x'.repeat(1025)))).toBe('MessageTooLargeError')
    expect(await a.page.evaluate(async () => window.harness.tryPublish('x'.repeat(1000)))).toBeUndefined()
  })
})

describe('private rooms in Chromium', () => {
  it('hides the name from the relay, and shuts out a wrong secret and an impostor with the topic but not the key', async () => {
    const name = `private-${Date.now()}`
    const secret = 'correct horse battery staple'
    const [a, b] = await meet(2, name, { roomInit: { secret } })
    await a.page.evaluate(async () => window.harness.publish('sealed:1'))
    await waitMessages(b, 'sealed:1', 1)

    // a wrong secret is another room: it meets nobody
    const wrong = await tab(name, { roomInit: { secret: 'wrong secret' } })
    // an impostor that learnt the topic ID (the relay sees it) but has no key
    const impostor = await tab(`${name}-impostor`)
    await impostor.page.evaluate(async ([n, s]) => window.harness.impostor(n, 'broadcast', s, 'guess'), [name, secret] as const)
    await until('the members to drop the impostor\'s sealed heartbeats', async () => {
      const stats = await Promise.all([a, b].map(statsOf))
      return stats.every((s) => (s?.messages.dropped.unauthenticated ?? 0) > 0)
    })
    await impostor.page.evaluate(async () => window.harness.publish('forged:1'))
    await a.page.evaluate(async () => window.harness.publish('sealed:2'))
    await waitMessages(b, 'sealed:2', 1)

    for (const t of [a, b]) {
      const rec = await t.rec()
      expect(rec.joins.map((j) => j.peerId)).not.toContain(impostor.peerId)
      expect(rec.joins.map((j) => j.peerId)).not.toContain(wrong.peerId)
      expect(rec.messages.filter((m) => m.text.startsWith('forged'))).toEqual([])
    }
    const wrongRec = await wrong.rec()
    expect(wrongRec.discovers).toEqual([])
    expect(wrongRec.messages).toEqual([])
    expect((await impostor.rec()).messages.filter((m) => m.text.startsWith('sealed'))).toEqual([])
    expect(JSON.stringify(await relayStatus(relayHttp))).not.toContain(name)
  })

  it('derives the topic with PBKDF2-SHA-256 at 600,000 iterations, as Node computes it, and measures its cost here', async () => {
    const [a] = await meet(1, `kdf-${Date.now()}`)
    // the same derivation as node:crypto's PBKDF2 and HKDF: salted with type and name
    const stretched = pbkdf2Sync('correct horse battery staple', 'p2p-rooms/3/private-room\u0000broadcast\u0000board', PRIVATE_ROOM_KDF_ITERATIONS, 32, 'sha256')
    const expected = Buffer.from(hkdfSync('sha256', stretched, 'p2p-rooms/3', 'topic', 16)).toString('hex')
    expect(await a.page.evaluate(async () => window.harness.topicId('board', 'broadcast', 'correct horse battery staple'))).toBe(expected)
    const costs = await a.page.evaluate(async () => window.harness.kdfCost(5))
    const sorted = [...costs].sort((x, y) => x - y)
    console.log(`private room key derivation (PBKDF2-SHA-256, ${PRIVATE_ROOM_KDF_ITERATIONS.toLocaleString('en')} iterations) in Chromium: median ${sorted[2].toFixed(0)} ms, min ${sorted[0].toFixed(0)} ms, max ${sorted[4].toFixed(0)} ms (5 runs)`)
    // a secret from createRoomSecret(): 128 bits, base64url
    expect(await a.page.evaluate(() => window.harness.createRoomSecret())).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })
})

describe('room backlog in Chromium', () => {
  it('gives a late joiner the recent messages, once each and in order, before live ones', async () => {
    const name = `history-${Date.now()}`
    const [a, b] = await meet(2, name, { roomInit: { historySize: 20 } })
    for (let i = 1; i <= 25; i++) await a.page.evaluate(async (k) => window.harness.publish(`old:${k}`), i)
    await b.page.evaluate(async () => window.harness.publish('old:b'))
    await waitMessages(b, 'old:', 25)

    const late = await tab(name, { roomInit: { historySize: 20 } })
    await waitJoined(late, [a.peerId, b.peerId])
    // the backlog is in before a publishes: a live message published while the fetch is under way
    // may reach the serving member first and then travel, once, inside the backlog (1 run in ~10
    // under load); a live message held during the fetch is unit-tested in test/src/room/backlog.test.ts
    await waitMessages(late, 'old:', 20)
    await a.page.evaluate(async () => window.harness.publish('live:1'))
    await waitMessages(late, 'live:1', 1)

    const got = (await late.rec()).messages
    const backlog = got.filter((m) => m.history)
    // the mailbox keeps the last 20 of what its member saw: a's 6..25 and b's own one, less the oldest
    expect(backlog.length).toBe(20)
    expect(backlog.every((m) => m.text.startsWith('old:'))).toBe(true)
    const fromA = backlog.filter((m) => m.from === a.peerId).map((m) => Number(m.text.slice(4)))
    expect(fromA).toEqual([...fromA].sort((x, y) => x - y))
    expect(fromA.at(-1)).toBe(25)
    // all of the backlog came before the first live message, and nothing twice
    const firstLive = got.findIndex((m) => !m.history)
    expect(got.slice(firstLive).every((m) => !m.history)).toBe(true)
    expect(new Set(got.map((m) => `${m.from}:${m.seq}`)).size).toBe(got.length)
  })
})
