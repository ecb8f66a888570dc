/**
 * The demo's Files panel, used as a person would after `npm start`: pick a file (or drop it), the
 * other person accepts, both watch the progress, the file arrives verified with a download link;
 * a file shared with the room is fetched; a transfer whose connection drops says "Resuming" and
 * finishes.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DESKTOP, PHONE, checkScreen, closePages, openPage, roomUrl, startDemo, waitDirect } from './demo-helpers.js'
import { launchChromium } from './tabs.js'
import type { Demo } from './demo-helpers.js'
import type { Browser, Page } from 'playwright-core'

let browser: Browser
let demo: Demo
beforeAll(async () => {
  browser = await launchChromium()
  demo = await startDemo()
})
afterAll(async () => {
  await demo?.stop()
  await browser?.close()
})

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function pair (viewports: [typeof DESKTOP, typeof DESKTOP] = [DESKTOP, DESKTOP]): Promise<[Page, Page]> {
  const url = roomUrl(demo)
  const ada = await openPage(browser, url, viewports[0])
  const bo = await openPage(browser, url, viewports[1])
  await Promise.all([waitDirect(ada), waitDirect(bo)])
  return [ada, bo]
}

/** Drops the page's direct WebRTC connections, through the live node the page exposes for DevTools. */
async function dropDirect (page: Page): Promise<void> {
  await page.evaluate(() => {
    for (const c of (window as any).p2pRooms.node.libp2p.getConnections()) if (c.multiplexer === '/webrtc') c.abort(new Error('test: the network dropped'))
  })
}

/** Makes a random file of `size` bytes in `page`, picks it in `#file-input`, and returns its SHA-256 (hex). */
async function pickGeneratedFile (page: Page, name: string, type: string, size: number): Promise<string> {
  return page.evaluate(async ([n, t, length]) => {
    const bytes = new Uint8Array(length)
    // getRandomValues fills at most 64 KiB per call
    for (let i = 0; i < length; i += 65_536) crypto.getRandomValues(bytes.subarray(i, i + 65_536))
    const input = document.querySelector<HTMLInputElement>('#file-input')
    if (input === null) throw new Error('no #file-input')
    const picked = new DataTransfer()
    picked.items.add(new File([bytes], n, { type: t }))
    input.files = picked.files
    input.dispatchEvent(new Event('change', { bubbles: true }))
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
  }, [name, type, size] as const)
}

describe('demo: files', () => {
  it('sends a picked file: the other person accepts, watches it arrive, and downloads it verified', async () => {
    const [ada, bo] = await pair()
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17))
    await ada.locator('#file-input').setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })

    // Ada's row waits for Bo; Bo's row asks
    await ada.locator('.file-row[data-direction="out"]', { hasText: 'notes.bin' }).locator('.file-status', { hasText: /Waiting for .+ to accept/ }).waitFor({ timeout: 30_000 })
    const offer = bo.locator('.file-row[data-direction="in"]', { hasText: 'notes.bin' })
    await offer.locator('.file-status', { hasText: /wants to send you this file/ }).waitFor({ timeout: 30_000 })
    expect(await offer.locator('.file-size').textContent()).toBe('3.1 MB')
    await checkScreen(bo, 'files-offer-desktop')
    await offer.getByRole('button', { name: 'Accept' }).click()

    // verified on both sides, with the SHA-256 each computed
    await offer.locator('.verified').waitFor({ timeout: 60_000 })
    await ada.locator('.file-row[data-direction="out"] .verified').waitFor({ timeout: 60_000 })
    expect(await offer.locator('.verified').getAttribute('data-sha256')).toBe(sha256(bytes))
    expect(await ada.locator('.file-row[data-direction="out"] .verified').getAttribute('data-sha256')).toBe(sha256(bytes))
    expect(await ada.locator('.file-row[data-direction="out"] .file-status').textContent()).toMatch(/Delivered to /)
    await checkScreen(bo, 'files-done-desktop')

    const [download] = await Promise.all([bo.waitForEvent('download'), offer.getByRole('link', { name: 'Download' }).click()])
    expect(download.suggestedFilename()).toBe('notes.bin')
    expect(sha256(await readFile(await download.path()))).toBe(sha256(bytes))
    await closePages([ada, bo])
  })

  it('shares a file with the room: a phone gets it from the sharer', async () => {
    const [ada, phone] = await pair([DESKTOP, PHONE])
    const bytes = new Uint8Array(randomBytes(1024 * 1024))
    await ada.locator('#file-to').selectOption('share')
    await ada.locator('#file-input').setInputFiles({ name: 'slides.pdf', mimeType: 'application/pdf', buffer: Buffer.from(bytes) })
    await ada.locator('.file-row[data-direction="share"] .verified').waitFor({ timeout: 30_000 })

    // on a phone the side column opens with the People button
    await phone.getByRole('button', { name: 'People' }).click()
    const offer = phone.locator('.file-row[data-direction="share"]', { hasText: 'slides.pdf' })
    await offer.getByRole('button', { name: 'Get' }).click({ timeout: 30_000 })
    await offer.locator('.verified').waitFor({ timeout: 60_000 })
    expect(await offer.locator('.verified').getAttribute('data-sha256')).toBe(sha256(bytes))
    await checkScreen(phone, 'files-shared-phone')
    await closePages([ada, phone])
  })

  it('says "Resuming" while a dropped connection heals, then finishes', async () => {
    const [ada, bo] = await pair()
    // the 48 MiB file is made in the page and picked through the input's `change` event, as a file
    // dialog delivers it: handing it over through CDP (setInputFiles) took over 30 s here, and
    // then never reached the page's input at all
    const expected = await pickGeneratedFile(ada, 'video.mp4', 'video/mp4', 48 * 1024 * 1024)
    const offer = bo.locator('.file-row[data-direction="in"]', { hasText: 'video.mp4' })
    await offer.getByRole('button', { name: 'Accept' }).click({ timeout: 30_000 })
    // mid-transfer, with a rate and the time left
    await offer.locator('.file-status', { hasText: /\d+ % · .+\/s · .+ left/ }).waitFor({ timeout: 60_000 })
    await Promise.all([dropDirect(ada), dropDirect(bo)])
    await offer.locator('.file-status', { hasText: /Resuming/ }).waitFor({ timeout: 30_000 })
    expect(await offer.getAttribute('data-state')).toBe('resuming')
    await offer.locator('.verified').waitFor({ timeout: 120_000 })
    expect(await offer.locator('.verified').getAttribute('data-sha256')).toBe(expected)
    await closePages([ada, bo])
  })
})
