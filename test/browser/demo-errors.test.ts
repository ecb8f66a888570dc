/**
 * The demo's bad inputs, each as a person meets it: a relay that is not running, a relay address
 * that is not one, room names that are too long, empty or only spaces, a private room's link
 * without its secret. Each gives a visible error in plain words, with a way out, at a laptop's
 * and a phone's size, and never "[object Event]".
 */
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DESKTOP, PHONE, checkScreen, closePages, openPage, roomUrl, say, startDemo } from './demo-helpers.js'
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

/** A port nothing listens on: bound by the OS for us, then released. */
async function closedPort (): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

async function bodyText (page: Page): Promise<string> {
  return page.evaluate(() => document.body.innerText)
}

describe('demo: bad input', () => {
  it('says a relay that is not running cannot be reached, and offers to retry or use the default relay', async () => {
    const port = await closedPort()
    const relayPeerId = demo.relayMultiaddr.split('/p2p/').pop() ?? ''
    const url = roomUrl(demo, { relay: `/ip4/127.0.0.1/tcp/${port}/ws/p2p/${relayPeerId}` })
    for (const [viewport, name] of [[DESKTOP, 'error-unreachable-desktop'], [PHONE, 'error-unreachable-phone']] as const) {
      const page = await openPage(browser, url, viewport)
      const problem = page.getByRole('alert').filter({ hasText: 'Can\'t reach the relay' })
      await problem.waitFor({ timeout: 60_000 })
      expect(await problem.textContent()).toContain(`Nothing answered at 127.0.0.1:${port}`)
      expect(await bodyText(page)).not.toContain('[object Event]')
      expect(await page.locator('#status').textContent()).toContain('Can\'t reach the relay')
      await page.getByRole('button', { name: 'Try again' }).waitFor()
      await checkScreen(page, name)

      // a link shared from here does not hand the broken relay on
      await page.getByRole('button', { name: 'Invite', exact: true }).click()
      const link = new URL(await page.locator('#invite-link').inputValue())
      expect(link.searchParams.has('relay')).toBe(false)
      await page.keyboard.press('Escape')

      if (viewport === PHONE) {
        // the way out: the relay the page's own server names
        await page.getByRole('button', { name: 'Use the default relay' }).click()
        await page.locator('#status', { hasText: 'Waiting for others' }).waitFor({ timeout: 60_000 })
        expect(new URL(page.url()).searchParams.has('relay')).toBe(false)
      }
      await closePages([page])
    }
  })

  it('says a relay address with a malformed peer ID is not a valid address', async () => {
    const page = await openPage(browser, roomUrl(demo, { relay: '/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWbad' }), DESKTOP)
    await page.getByRole('alert').filter({ hasText: 'That relay address is not valid' }).waitFor({ timeout: 60_000 })
    expect(await bodyText(page)).not.toMatch(/Incorrect length|\[object Event\]/)
    await page.getByRole('button', { name: 'Use the default relay' }).waitFor()
    await checkScreen(page, 'error-bad-address-desktop')
    await closePages([page])
  })

  it('refuses a 5,000-character room name from a link, without widening the page', async () => {
    const page = await openPage(browser, roomUrl(demo, { room: 'x'.repeat(5000) }), PHONE)
    const dialog = page.getByRole('dialog', { name: 'Join a room' })
    await dialog.waitFor()
    await page.locator('#room-error', { hasText: 'Room names have at most 256 characters; this one has 5,000.' }).waitFor()
    expect(await page.locator('#status').textContent()).toContain('cannot be used')
    expect(await page.locator('#chat-input').isDisabled()).toBe(true)
    await checkScreen(page, 'error-long-room-phone')
    // the person shortens it and gets in
    await page.getByRole('textbox', { name: 'Room', exact: true }).fill(`short-${Date.now()}`)
    await page.getByRole('button', { name: 'Join', exact: true }).click()
    await page.locator('#status', { hasText: 'Waiting for others' }).waitFor({ timeout: 60_000 })
    await closePages([page])
  })

  it('says an empty ?room= names no room, and a name of spaces is not one', async () => {
    const page = await openPage(browser, `${demo.base}?room=`, DESKTOP)
    await page.getByRole('dialog', { name: 'Join a room' }).waitFor()
    await page.getByText('This link names no room.').first().waitFor()
    const room = page.getByRole('textbox', { name: 'Room', exact: true })
    await room.fill('    ')
    await page.getByRole('button', { name: 'Join', exact: true }).click()
    await page.locator('#room-error', { hasText: 'A room name needs more than spaces.' }).waitFor()
    expect(await room.getAttribute('aria-invalid')).toBe('true')
    await checkScreen(page, 'error-spaces-desktop')
    await room.fill(`typed-${Date.now()}`)
    await room.press('Enter')
    await page.locator('#status', { hasText: 'Waiting for others' }).waitFor({ timeout: 60_000 })
    await closePages([page])
  })

  it('asks for the secret when a private room\'s link leaves it out, instead of joining a public room', async () => {
    const page = await openPage(browser, `${roomUrl(demo)}&private`, PHONE)
    await page.getByRole('dialog', { name: 'Enter the room\'s secret' }).waitFor()
    expect(await page.locator('#secret-input').evaluate((el) => el === document.activeElement)).toBe(true)
    await page.locator('#secret-input').fill('correct horse battery staple')
    await page.getByRole('button', { name: 'Join', exact: true }).click()
    await page.locator('#tag-private').waitFor()
    await page.locator('#status', { hasText: 'Waiting for others' }).waitFor({ timeout: 60_000 })
    await closePages([page])
  })

  it('keeps a 60 KB message from flooding the conversation', async () => {
    const page = await openPage(browser, roomUrl(demo), PHONE)
    await page.locator('#chat-input:enabled').waitFor({ timeout: 60_000 })
    await say(page, 'word '.repeat(12_000))
    const msg = page.locator('#messages li.msg.collapsed')
    await msg.waitFor()
    expect((await msg.boundingBox())?.height).toBeLessThan(300)
    await checkScreen(page, 'long-message-phone')
    await closePages([page])
  })
})
