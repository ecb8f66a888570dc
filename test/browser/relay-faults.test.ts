/**
 * Faults of the relay connection in real Chromium tabs: a relay down for 20 s (killed) and for
 * 2 minutes (stopped), then back on the same address with the same identity; a tab offline, then
 * online (CDP network emulation through Playwright's `setOffline`). Direct links carry the room
 * meanwhile, nothing is lost, every tab re-reserves within 10 s of the relay's return, and an
 * offline tab's room is whole again within 10 s of it coming back.
 *
 * The relay of the outage test is this file's own process on a fixed port, so it comes back at
 * the address the tabs know. The long outage lasts `P2P_ROOMS_LONG_OUTAGE_MS` (default 2 min,
 * the one long test of the suite); everything else waits on events.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchChromium, openTab, waitJoined, waitMessages } from './tabs.js'
import type { Tab } from './tabs.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { AddressInfo } from 'node:net'
import type { Browser } from 'playwright-core'

const fixtureUrl = inject('fixtureUrl')
const relayAddr = inject('relayAddr')

/** How long the relay stays down in the long outage, in ms. */
const LONG_OUTAGE_MS = Number(process.env.P2P_ROOMS_LONG_OUTAGE_MS ?? 120_000)
const SHORT_OUTAGE_MS = 20_000
/**
 * Re-reserved within 10 s of the relay's return, whole within 10 s of coming online. A tab with no
 * reservation redials every `RELAY_OUTAGE_REDIAL_MAX_MS` (2 s, +20 % jitter) at most, and the dial,
 * noise, identify and reservation that follow took 0.2–1.3 s on a quiet machine but 5.7 s once on
 * CI's two loaded cores; so the bound leaves room for load and still fails the transport's own
 * backoff, which grows to 60 s over a 2-minute outage (js-libp2p#3601). The redial cap itself is
 * unit-tested with fake timers; the figures printed here are the measurement.
 */
const RERESERVE_BOUND_MS = 10_000
const ONLINE_BOUND_MS = 10_000
/** How long a tab stays offline. */
const OFFLINE_MS = 15_000

let browser: Browser
const dir = mkdtempSync(join(tmpdir(), 'p2p-rooms-relay-faults-'))
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  await browser?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

/** Waits `ms`: the length of a fault, not a wait for something to happen. */
async function outage (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolves with the page time of the first `type` event about `peerId` after page time `since`. */
async function relayEventAfter (tab: Tab, type: 'relay:connect' | 'relay:disconnect', peerId: string, since: number, timeout = 60_000): Promise<number> {
  const handle = await tab.page.waitForFunction(([k, id, t]) => window.relays.log.find((e) => e.type === k && e.peerId === id && e.t > t)?.t,
    [type, peerId, since] as const, { timeout, polling: 50 })
  return await handle.jsonValue() as number
}

const now = async (tab: Tab): Promise<number> => tab.page.evaluate(() => performance.now())

/** Each tab publishes `count` messages labelled `label`; every other tab must get all of them. */
async function everyoneHearsEveryone (tabs: Tab[], label: string, count = 5): Promise<void> {
  for (const tab of tabs) {
    for (let i = 0; i < count; i++) await tab.page.evaluate(async (t) => window.harness.publish(t), `${label}:${tab.peerId}:${i}`)
  }
  for (const to of tabs) {
    for (const from of tabs) {
      if (from === to) continue
      await waitMessages(to, `${label}:${from.peerId}:`, count)
    }
  }
}

describe('relay outage', () => {
  it(`keeps the room going through a 20 s and a ${LONG_OUTAGE_MS / 1000} s outage, and every tab re-reserves within ${RERESERVE_BOUND_MS / 1000} s of the relay's return`, async () => {
    const port = await freePort()
    const identity = join(dir, 'outage.key')
    const start = async (): Promise<SpawnedRelay> => spawnRelay({ listen: [`/ip4/127.0.0.1/tcp/${port}/ws`], args: ['--identity', identity], timeout: 30_000 })
    let relay = await start()
    try {
      const room = `outage-${Date.now()}`
      const tabs = await Promise.all([0, 1, 2].map(async () => openTab(browser, fixtureUrl, relay.multiaddrs[0], room)))
      for (const tab of tabs) await tab.page.evaluate(() => { window.relays.watch() })
      await Promise.all(tabs.map(async (tab) => waitJoined(tab, tabs.filter((t) => t !== tab).map((t) => t.peerId))))
      const figures: string[] = []

      for (const [label, ms, signal] of [['20 s', SHORT_OUTAGE_MS, 'SIGKILL'], [`${LONG_OUTAGE_MS / 1000} s`, LONG_OUTAGE_MS, 'SIGTERM']] as const) {
        const downAt = await Promise.all(tabs.map(now))
        const exited = new Promise((resolve) => relay.process.once('exit', resolve))
        relay.process.kill(signal)
        await exited
        const wentDown = Date.now()
        // every tab notices the reservation is gone
        await Promise.all(tabs.map(async (tab, i) => relayEventAfter(tab, 'relay:disconnect', relay.peerId, downAt[i])))
        // the room carries on over its direct links: nothing published meanwhile is lost
        await everyoneHearsEveryone(tabs, `during-${label}`)
        await outage(Math.max(0, ms - (Date.now() - wentDown)))

        relay = await start()
        const backAt = await Promise.all(tabs.map(now))
        const reReserved = await Promise.all(tabs.map(async (tab, i) => (await relayEventAfter(tab, 'relay:connect', relay.peerId, backAt[i], 30_000)) - backAt[i]))
        figures.push(`${label} outage: re-reserved ${reReserved.map((t) => Math.round(t)).join(', ')} ms after the relay was back`)
        for (const t of reReserved) expect(t).toBeLessThan(RERESERVE_BOUND_MS)

        // the relay introduces again: a newcomer meets every tab through it, and goes direct
        const newcomer = await openTab(browser, fixtureUrl, relay.multiaddrs[0], room)
        await waitJoined(newcomer, tabs.map((t) => t.peerId))
        await Promise.all(tabs.map(async (tab) => waitJoined(tab, [newcomer.peerId])))
        await everyoneHearsEveryone([...tabs, newcomer], `after-${label}`, 1)
        await newcomer.page.evaluate(async () => window.harness.stop())
        await newcomer.page.context().close()
      }
      // no tab left the room for another at any point
      for (const tab of tabs) {
        const leaves = (await tab.rec()).leaves.filter((l) => tabs.some((t) => t.peerId === l.peerId))
        expect(leaves).toEqual([])
      }
      console.log(figures.join('; '))
      await Promise.all(tabs.map(async (tab) => tab.page.context().close()))
    } finally {
      await relay.stop()
    }
  }, SHORT_OUTAGE_MS + LONG_OUTAGE_MS + 240_000)
})

describe('browser offline', () => {
  it(`makes the room whole again within ${ONLINE_BOUND_MS / 1000} s of a tab coming back online`, async () => {
    const room = `offline-${Date.now()}`
    const tabs = await Promise.all([0, 1, 2].map(async () => openTab(browser, fixtureUrl, relayAddr, room)))
    const relayPeer = relayAddr.split('/p2p/')[1]
    for (const tab of tabs) await tab.page.evaluate(() => { window.relays.watch() })
    await Promise.all(tabs.map(async (tab) => waitJoined(tab, tabs.filter((t) => t !== tab).map((t) => t.peerId))))
    const [a, b, c] = tabs

    const offlineAt = await now(c)
    await c.page.context().setOffline(true)
    await outage(OFFLINE_MS)
    // Chromium's emulation fails new requests and holds existing WebSockets: the tab may or may
    // not have seen its relay go; either way it must be whole once online
    const lost = await c.page.evaluate(([id, t]) => window.relays.log.find((e) => e.type === 'relay:disconnect' && e.peerId === id && e.t > t)?.t, [relayPeer, offlineAt] as const)
    const onlineAt = await now(c)
    await c.page.context().setOffline(false)

    // whole: c holds its reservation, a newcomer meets c through the relay, and every tab hears every other
    await c.page.waitForFunction((id) => window.relays.list().some((r) => r.peerId === id && r.reserved), relayPeer, { timeout: ONLINE_BOUND_MS, polling: 50 })
    const reservedMs = (await now(c)) - onlineAt
    const newcomer = await openTab(browser, fixtureUrl, relayAddr, room)
    await Promise.all([waitJoined(newcomer, [a.peerId, b.peerId, c.peerId], ONLINE_BOUND_MS), waitJoined(c, [newcomer.peerId], ONLINE_BOUND_MS)])
    await everyoneHearsEveryone([a, b, c, newcomer], 'after-offline', 1)
    const wholeMs = (await now(c)) - onlineAt
    expect(wholeMs).toBeLessThan(ONLINE_BOUND_MS)
    for (const tab of [a, b]) expect((await tab.rec()).leaves.filter((l) => l.peerId === c.peerId)).toEqual([])
    console.log(`tab offline for ${OFFLINE_MS / 1000} s (${lost === undefined ? 'its relay connection was held' : `lost its relay ${Math.round(lost - offlineAt)} ms after going offline`}): reserved ${Math.round(reservedMs)} ms after coming online, room whole (a newcomer met it, every tab heard every other) ${Math.round(wholeMs)} ms after`)
    await Promise.all([...tabs, newcomer].map(async (tab) => tab.page.context().close()))
  })
  it(`makes the room whole within ${ONLINE_BOUND_MS / 1000} s of a tab coming online whose relay restarted while it was offline`, async () => {
    const port = await freePort()
    const identity = join(dir, 'offline.key')
    const start = async (): Promise<SpawnedRelay> => spawnRelay({ listen: [`/ip4/127.0.0.1/tcp/${port}/ws`], args: ['--identity', identity], timeout: 30_000 })
    let relay = await start()
    try {
      const room = `offline-restart-${Date.now()}`
      const tabs = await Promise.all([0, 1, 2].map(async () => openTab(browser, fixtureUrl, relay.multiaddrs[0], room)))
      for (const tab of tabs) await tab.page.evaluate(() => { window.relays.watch() })
      await Promise.all(tabs.map(async (tab) => waitJoined(tab, tabs.filter((t) => t !== tab).map((t) => t.peerId))))
      const [a, b, c] = tabs

      await c.page.context().setOffline(true)
      // the relay restarts while c cannot see it: its old connection is dead, whatever c thinks
      relay.process.kill('SIGTERM')
      await new Promise((resolve) => relay.process.once('exit', resolve))
      relay = await start()
      const others = await Promise.all([a, b].map(now))
      await Promise.all([a, b].map(async (tab, i) => relayEventAfter(tab, 'relay:connect', relay.peerId, others[i])))
      await outage(OFFLINE_MS)
      const onlineAt = await now(c)
      await c.page.context().setOffline(false)

      const reservedMs = (await relayEventAfter(c, 'relay:connect', relay.peerId, onlineAt, ONLINE_BOUND_MS)) - onlineAt
      const newcomer = await openTab(browser, fixtureUrl, relay.multiaddrs[0], room)
      await Promise.all([waitJoined(newcomer, [a.peerId, b.peerId, c.peerId], ONLINE_BOUND_MS), waitJoined(c, [newcomer.peerId], ONLINE_BOUND_MS)])
      await everyoneHearsEveryone([a, b, c, newcomer], 'after-restart-offline', 1)
      const wholeMs = (await now(c)) - onlineAt
      expect(wholeMs).toBeLessThan(ONLINE_BOUND_MS)
      for (const tab of [a, b]) expect((await tab.rec()).leaves.filter((l) => l.peerId === c.peerId)).toEqual([])
      console.log(`tab offline for ${OFFLINE_MS / 1000} s while its relay restarted: re-reserved ${Math.round(reservedMs)} ms after coming online, room whole ${Math.round(wholeMs)} ms after`)
      await Promise.all([...tabs, newcomer].map(async (tab) => tab.page.context().close()))
    } finally {
      await relay.stop()
    }
  })
})
