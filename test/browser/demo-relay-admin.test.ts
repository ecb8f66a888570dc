/**
 * The relay's admin page (`GET /` on its `--http` port), as an operator opens it in Chromium: it
 * shows the relay's numbers as `/status` has them, lists a federated relay, draws its charts, and
 * never shows a room's name. Real relay processes; a real browser node holds the reservation.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { DESKTOP, PHONE, checkScreen, openPage } from './demo-helpers.js'
import { launchChromium, openTab } from './tabs.js'
import type { Tab } from './tabs.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Browser } from 'playwright-core'

const fixtureUrl = inject('fixtureUrl')
const ROOM = `admin-page-must-not-show-${Date.now()}`

let browser: Browser
let relay: SpawnedRelay
let peer: SpawnedRelay
let keyDir: string | undefined
let tab: Tab
beforeAll(async () => {
  browser = await launchChromium()
  // a second relay federated with the first (one federation key: federation is mutual): the page lists it
  keyDir = await mkdtemp(join(tmpdir(), 'p2p-rooms-admin-'))
  const federationKey = join(keyDir, 'federation.key')
  relay = await spawnRelay({ args: ['--federation-key', federationKey] })
  peer = await spawnRelay({ args: ['--peer', relay.multiaddrs[0], '--federation-key', federationKey] })
  tab = await openTab(browser, fixtureUrl, relay.multiaddrs[0], ROOM)
})
afterAll(async () => {
  await tab?.page.context().close()
  await Promise.all([relay?.stop(), peer?.stop()])
  await browser?.close()
  if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true })
})

async function status (): Promise<any> {
  return (await fetch(`${relay.httpUrl}/status`)).json()
}

describe('relay admin page', () => {
  it('shows peers, reservations, rooms, circuits, refusals, federated relays and uptime as /status has them', async () => {
    const page = await openPage(browser, `${relay.httpUrl}/`, DESKTOP)
    // the page sets its title from its first /status fetch, after load: wait for it, then check its shape
    await page.waitForFunction(() => document.title !== 'p2p-rooms relay', undefined, { timeout: 30_000 })
    expect(await page.title()).toMatch(/reserved · p2p-rooms relay$/)
    await page.locator('#reservations', { hasText: /^1$/ }).waitFor({ timeout: 30_000 })
    await page.locator('#federated code', { hasText: peer.peerId }).waitFor({ timeout: 60_000 })
    // the page refreshes itself: wait for a refresh that shows the federated relay and the room, then compare
    await page.locator('#rooms', { hasText: /^1$/ }).waitFor({ timeout: 30_000 })
    const s = await status()
    expect(s.reservations).toBe(1)
    expect(s.roomsFollowed).toBe(1)
    expect(Number(await page.locator('#peers').textContent())).toBe(s.connectedPeers)
    expect(await page.locator('#max-reservations').textContent()).toBe(s.limits.maxReservations.toLocaleString('en'))
    expect(await page.locator('#circuits-opened').textContent()).toBe(String(s.counters.circuits.opened))
    expect(await page.locator('#refusals tr').count()).toBe(Object.keys(s.counters.refusals).length)
    expect(await page.locator('#refusals tr[data-key="max-reservations"] td.n').textContent()).toBe('0')
    expect(await page.locator('#circuit-ends tr').count()).toBe(4)
    expect(await page.locator('#uptime').textContent()).toMatch(/^\d+ (s|min)/)
    expect(await page.locator('#peer-id').textContent()).toBe(relay.peerId)
    // charts of the sampled history (the relay's first sample and now)
    await page.locator('#chart-peers path.line').waitFor({ state: 'attached' })
    await page.locator('#chart-reservations path.line').waitFor({ state: 'attached' })
    expect(await page.locator('#live').textContent()).toBe('live')

    // same privacy rules as /status: a count of rooms, never a name
    expect(await page.content()).not.toContain(ROOM)
    const json = await (await fetch(`${relay.httpUrl}/`, { headers: { accept: 'application/json' } })).text()
    expect(json).not.toContain(ROOM)
    const snapshot = JSON.parse(json)
    expect(snapshot.history.length).toBeGreaterThanOrEqual(2)
    expect(snapshot.federatedRelays).toContain(peer.peerId)

    await checkScreen(page, 'relay-admin-desktop')
    const phone = await openPage(browser, `${relay.httpUrl}/`, PHONE, { colorScheme: 'dark' })
    await phone.locator('#reservations', { hasText: /^1$/ }).waitFor({ timeout: 30_000 })
    await checkScreen(phone, 'relay-admin-phone-dark')
    await Promise.all([page.context().close(), phone.context().close()])
  })

  it('says when the relay stops answering, and keeps the last numbers', async () => {
    const page = await openPage(browser, `${peer.httpUrl}/`, DESKTOP)
    await page.locator('#live', { hasText: 'live' }).waitFor()
    await peer.stop()
    await page.locator('#live', { hasText: 'not answering' }).waitFor({ timeout: 15_000 })
    expect(await page.locator('#peers').textContent()).not.toBe('–')
    await page.context().close()
  })
})
