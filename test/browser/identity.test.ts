/**
 * Peer identity in real Chromium tabs with a real relay: pages of one browser context share
 * sessionStorage copies, IndexedDB and Web Locks the way tabs of one browser profile do.
 */
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { IDENTITY_LOCK_WAIT_MS } from '../../src/constants.js'
import { identityLockName } from '../../src/identity.js'
import { launchChromium, openTab, openTabIn, startTab, waitJoined } from './tabs.js'
import type { RoomNodeIdentity } from '../../src/index.js'
import type { Tab } from './tabs.js'
import type { Browser, BrowserContext, Page } from 'playwright-core'

const relayAddr = inject('relayAddr')
const fixtureUrl = inject('fixtureUrl')

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => { await browser?.close() })

async function identityOf (tab: Tab): Promise<RoomNodeIdentity | undefined> {
  return tab.page.evaluate(() => window.identity.current())
}

/** Both tabs list each other as `'direct'`: a restored peer ID may come back as a `peer:update`. */
async function waitDirect (tabs: Tab[], timeout = 90_000): Promise<void> {
  await Promise.all(tabs.map(async (t) => {
    const others = tabs.filter((o) => o !== t).map((o) => o.peerId)
    await t.page.waitForFunction((ids) => ids.every((id) => window.harness.peers().some((p) => p.peerId === id && p.path === 'direct')), others, { timeout, polling: 100 })
  }))
}

/**
 * Reloads `page` and, before its node starts, measures how long after asking the new page gets the
 * old page's lock on `peerId` (0 when the old page had already let it go).
 */
async function reloadAndTimeLockRelease (page: Page, peerId: string): Promise<number> {
  await page.reload()
  await page.waitForFunction(() => window.harness !== undefined)
  return page.evaluate(async (name) => {
    const asked = performance.now()
    return navigator.locks.request(name, { signal: AbortSignal.timeout(10_000) }, () => performance.now() - asked)
  }, identityLockName(peerId))
}

async function withContext (fn: (context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext()
  try {
    await fn(context)
  } finally {
    await context.close()
  }
}

describe('peer identity in Chromium', () => {
  it('keeps a tab\'s peer ID across reloads, gives a second tab its own, and the restored tabs meet directly', async () => {
    await withContext(async (context) => {
      const room = `identity-tab-${Date.now()}`
      const a = await openTabIn(context, fixtureUrl, relayAddr, room)
      const b = await openTabIn(context, fixtureUrl, relayAddr, room)
      expect(await identityOf(a)).toEqual({ kind: 'tab', peerId: a.peerId, restored: false })
      expect(await identityOf(b)).toEqual({ kind: 'tab', peerId: b.peerId, restored: false })
      expect(b.peerId).not.toBe(a.peerId)
      await waitDirect([a, b])

      // one tab reloads while the other stays: the other heals to the same peer ID
      let t = Date.now()
      const releasedA = await reloadAndTimeLockRelease(a.page, a.peerId)
      const a2 = await startTab(a.page, relayAddr, room)
      expect(await identityOf(a2)).toEqual({ kind: 'tab', peerId: a.peerId, restored: true })
      await waitDirect([a2, b])
      const oneReloadMs = Date.now() - t

      // both reload at once: two restored identities meet through the relay and go direct
      t = Date.now()
      const released = await Promise.all([reloadAndTimeLockRelease(a.page, a.peerId), reloadAndTimeLockRelease(b.page, b.peerId)])
      const [a3, b3] = await Promise.all([startTab(a.page, relayAddr, room), startTab(b.page, relayAddr, room)])
      expect(await identityOf(a3)).toEqual({ kind: 'tab', peerId: a.peerId, restored: true })
      expect(await identityOf(b3)).toEqual({ kind: 'tab', peerId: b.peerId, restored: true })
      await waitJoined(a3, [b.peerId], 90_000)
      await waitJoined(b3, [a.peerId], 90_000)
      await waitDirect([a3, b3])
      const bothReloadMs = Date.now() - t
      const waits = [releasedA, ...released].map((ms) => Math.round(ms))
      console.log(`reload: the old page's lock was free ${waits.join(', ')} ms after the new page asked (wait bound ${IDENTITY_LOCK_WAIT_MS} ms); direct again ${oneReloadMs} ms after one tab's reload, ${bothReloadMs} ms after both`)
    })
  })

  it('gives a tab opened with window.open its own peer ID while its opener is alive, and frees the opener\'s on stop', async () => {
    await withContext(async (context) => {
      const room = `identity-open-${Date.now()}`
      const opener = await openTabIn(context, fixtureUrl, relayAddr, room)
      const [popup] = await Promise.all([
        context.waitForEvent('page'),
        opener.page.evaluate((url) => { window.open(url) }, fixtureUrl)
      ])
      await popup.waitForFunction(() => window.harness !== undefined)
      // the popup starts with a copy of its opener's sessionStorage, key included
      const openerKey = await opener.page.evaluate(() => window.identity.storedTabKey())
      expect(await popup.evaluate(() => window.identity.storedTabKey())).toBe(openerKey)

      const started = Date.now()
      const copy = await startTab(popup, relayAddr, room)
      expect(await identityOf(copy)).toEqual({ kind: 'tab', peerId: copy.peerId, restored: false })
      expect(copy.peerId).not.toBe(opener.peerId)
      console.log(`window.open copy: own peer ID, createRoomNode + joinRoom took ${Date.now() - started} ms`)
      expect(await popup.evaluate(() => window.identity.storedTabKey())).not.toBe(openerKey)
      await waitDirect([opener, copy])

      // the copy keeps its own key from now on
      await popup.reload()
      const copy2 = await startTab(popup, relayAddr, room)
      expect(await identityOf(copy2)).toEqual({ kind: 'tab', peerId: copy.peerId, restored: true })

      expect(await opener.page.evaluate(async (id) => window.identity.lockHeld(id), opener.peerId)).toBe(true)
      await opener.page.evaluate(async () => { await window.harness.stop() })
      expect(await opener.page.evaluate(async (id) => window.identity.lockHeld(id), opener.peerId)).toBe(false)
    })
  })

  it('keeps a persistent peer ID for the next page of the profile, and never gives it to two pages at once', async () => {
    await withContext(async (context) => {
      const room = `identity-persistent-${Date.now()}`
      const persistent = { nodeInit: { identity: 'persistent' as const } }
      const first = await openTabIn(context, fixtureUrl, relayAddr, room, persistent)
      expect(await identityOf(first)).toEqual({ kind: 'persistent', peerId: first.peerId, restored: false })
      await first.page.close()

      const second = await openTabIn(context, fixtureUrl, relayAddr, room, persistent)
      expect(await identityOf(second)).toEqual({ kind: 'persistent', peerId: first.peerId, restored: true })

      const third = await openTabIn(context, fixtureUrl, relayAddr, room, persistent)
      expect(await identityOf(third)).toEqual({ kind: 'tab', peerId: third.peerId, restored: false })
      expect(third.peerId).not.toBe(first.peerId)
      // the restored persistent identity and the fallback one meet and go direct
      await waitJoined(second, [third.peerId], 90_000)
      await waitJoined(third, [second.peerId], 90_000)
      await waitDirect([second, third])
    })
  })

  it('uses a supplied key', async () => {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const room = `identity-supplied-${Date.now()}`
    const other = await openTab(browser, fixtureUrl, relayAddr, room)
    const page = await (await browser.newContext()).newPage()
    try {
      await page.goto(fixtureUrl)
      await page.waitForFunction(() => window.harness !== undefined)
      const keyBase64 = Buffer.from(privateKeyToProtobuf(key)).toString('base64')
      const started = await page.evaluate(async ([r, n, k]) => window.identity.startWithKey(r, n, k, { nodeInit: { identity: 'persistent' } }), [relayAddr, room, keyBase64] as const)
      expect(started.peerId).toBe(peerId)
      expect(await page.evaluate(() => window.identity.current())).toEqual({ kind: 'supplied', peerId, restored: false })
      const tab: Tab = { page, ...started, rec: async () => page.evaluate(() => window.harness.rec) }
      await waitDirect([tab, other])
    } finally {
      await page.context().close()
      await other.page.context().close()
    }
  })
})
