/**
 * The demo's call, used as a person would after `npm start`: press Camera and Mic, the other
 * person sees a tile with the video playing, the name, and a ring while the sound is loud; in a
 * one-way room only the host's buttons work (a watch party). Screenshots of both go to
 * test-results/demo-screens/ (checked for nothing cut off at the edges).
 *
 * The buttons call getUserMedia, and this machine (like CI) has no camera or microphone: Chromium's
 * fake devices stand in (a moving test pattern and a periodic beep), and its fake permission
 * prompt says yes. Nothing about WebRTC or timers changes with these flags.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DESKTOP, PHONE, checkScreen, closePages, openPage, roomUrl, startDemo, waitDirect } from './demo-helpers.js'
import { launchChromium } from './tabs.js'
import type { Demo } from './demo-helpers.js'
import type { Browser, Page } from 'playwright-core'

const FAKE_MEDIA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']

let browser: Browser
let demo: Demo
beforeAll(async () => {
  browser = await launchChromium(FAKE_MEDIA)
  demo = await startDemo()
})
afterAll(async () => {
  await demo?.stop()
  await browser?.close()
})

async function ownPeer (page: Page): Promise<string> {
  const id = await page.locator('#people li[data-self]').getAttribute('data-peer-id', { timeout: 60_000 })
  if (id === null) throw new Error('no own row')
  return id
}

/** Waits until `page` shows a tile of `peer` whose video plays (its time advances). */
async function waitPlayingTile (page: Page, peer: string): Promise<void> {
  const video = `.tile[data-peer="${peer}"] video`
  await page.locator(video).waitFor({ timeout: 60_000 })
  const t0 = await page.locator(video).evaluate((v: HTMLVideoElement) => v.currentTime)
  await page.waitForFunction(([sel, t]) => ((document.querySelector(sel) as HTMLVideoElement | null)?.currentTime ?? 0) > t + 0.5, [video, t0] as const, { timeout: 60_000, polling: 100 })
}

/** Two pages at `viewport` in a one-way room: the guest's buttons are off, the host's camera plays at the guest. */
async function watchParty (viewport: typeof DESKTOP, screen: string): Promise<void> {
  const url = roomUrl(demo, { type: 'one-way' })
  const first = await openPage(browser, url, viewport)
  const second = await openPage(browser, url, viewport)
  try {
    await Promise.all([waitDirect(first), waitDirect(second)])
    const [a, b] = await Promise.all([ownPeer(first), ownPeer(second)])
    // both name the same host once settled
    const hostOf = async (p: Page): Promise<string | undefined> => p.evaluate(() => (window as any).p2pRooms?.room?.host)
    await expect.poll(async () => [await hostOf(first), await hostOf(second)], { timeout: 30_000 }).toSatisfy((h: unknown[]) => h[0] !== undefined && h[0] === h[1])
    const hostId = await hostOf(first)
    const [host, guest] = hostId === a ? [first, second] : [second, first]
    expect([a, b]).toContain(hostId)

    await expect.poll(async () => guest.locator('#cam-btn').isDisabled(), { timeout: 30_000 }).toBe(true)
    await expect.poll(async () => guest.locator('#media-note').textContent()).toMatch(/Watch party: only the host/)
    // on a phone the call buttons are in the people drawer
    if (viewport === PHONE) await host.locator('#people-btn').click()
    await host.getByRole('button', { name: 'Camera' }).click()
    await waitPlayingTile(guest, hostId ?? '')
    await checkScreen(guest, screen)
  } finally {
    await closePages([first, second])
  }
}

describe('demo: call', () => {
  it('shows the other person\'s camera in a tile with their name, and rings it while they speak', async () => {
    const url = roomUrl(demo)
    const ada = await openPage(browser, url, DESKTOP)
    const bo = await openPage(browser, url, DESKTOP)
    try {
      await Promise.all([waitDirect(ada), waitDirect(bo)])
      const adaId = await ownPeer(ada)
      await ada.getByRole('button', { name: 'Camera' }).click()
      await ada.getByRole('button', { name: 'Mic' }).click()
      await expect.poll(async () => ada.getByRole('button', { name: 'Camera' }).getAttribute('aria-pressed')).toBe('true')
      await expect.poll(async () => ada.getByRole('button', { name: 'Mic' }).getAttribute('aria-pressed')).toBe('true')

      await waitPlayingTile(bo, adaId)
      // her own preview tile too
      await waitPlayingTile(ada, adaId)
      const caption = await bo.locator(`.tile[data-peer="${adaId}"] figcaption`).textContent()
      const name = await ada.locator('#own-name').textContent()
      expect(caption?.trim()).toBe(name?.trim())
      // the fake microphone beeps: the ring lights up at Bo's while it does
      await bo.locator(`.tile[data-peer="${adaId}"][data-speaking="true"]`).waitFor({ timeout: 30_000 })
      await checkScreen(bo, 'call-desktop')

      // Camera again: her stream ends, her tile goes once the mic is off too
      await ada.getByRole('button', { name: 'Camera' }).click()
      await ada.getByRole('button', { name: 'Mic' }).click()
      await bo.locator(`.tile[data-peer="${adaId}"]`).waitFor({ state: 'detached', timeout: 30_000 })
    } finally {
      await closePages([ada, bo])
    }
  })

  it('makes a one-way room a watch party: only the host streams', async () => {
    await watchParty(DESKTOP, 'call-watch-party')
  })

  it('shows the watch party on a phone, nothing cut off', async () => {
    await watchParty(PHONE, 'call-watch-party-phone')
  })
})
