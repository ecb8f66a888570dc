/**
 * The README's first command, as a newcomer runs it: `npm start` (scripts/start.mjs) starts a
 * relay and the demo; people use the page in Chromium at a laptop's and a phone's size: they name
 * themselves, join, invite, go direct, chat, hand the host role over, and read what is on screen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DESKTOP, PHONE, checkChatFirst, checkScreen, closePages, openPage, ownId, roomUrl, say, startDemo, waitDirect
} from './demo-helpers.js'
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

/** The invite link the page shows, read from its Invite dialog. */
async function inviteLink (page: Page): Promise<string> {
  await page.getByRole('button', { name: 'Invite', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: /invite to/i })
  await dialog.waitFor()
  // a QR code of the same link, for another device
  await page.locator('#invite-qr svg').waitFor()
  expect(await page.locator('#invite-qr').getAttribute('data-link')).toBe(await page.locator('#invite-link').inputValue())
  const link = await page.locator('#invite-link').inputValue()
  return link
}

async function closeDialog (page: Page): Promise<void> {
  await page.keyboard.press('Escape')
}

describe('demo: npm start', () => {
  it('lets a person name themselves, join, invite a phone, go direct and chat', async () => {
    const room = `standup-${Date.now()}`
    // no room in the address: the page asks, it does not pick one silently
    const ada = await openPage(browser, demo.base, DESKTOP)
    const dialog = ada.getByRole('dialog', { name: 'Join a room' })
    await dialog.waitFor()
    await ada.getByLabel('Your name').fill('Ada')
    await ada.getByRole('textbox', { name: 'Room', exact: true }).fill(room)
    await ada.getByRole('button', { name: 'Join', exact: true }).click()

    // alone: the steps of meeting, as they happen
    await ada.locator('#status', { hasText: 'Waiting for others to join' }).waitFor({ timeout: 60_000 })
    await ada.locator('#meeting .step[data-step="reserved"][data-state="done"]').waitFor()
    await ada.locator('#meeting .step[data-step="looking"][data-state="active"]').waitFor()
    expect(await ada.locator('#room-name').textContent()).toBe(room)
    await checkChatFirst(ada)
    await checkScreen(ada, 'joining-desktop')

    const link = await inviteLink(ada)
    const invite = new URL(link)
    expect(invite.searchParams.get('room')).toBe(room)
    expect(invite.searchParams.has('identity')).toBe(false)
    expect(invite.searchParams.has('relay')).toBe(false)
    await checkScreen(ada, 'invite-desktop')
    await closeDialog(ada)

    // the phone opens the invite and lands in the room, no questions asked
    const phone = await openPage(browser, link, PHONE, { colorScheme: 'dark' })
    await Promise.all([waitDirect(ada), waitDirect(phone)])
    await ada.locator('#status', { hasText: 'Direct to 1 person' }).waitFor({ timeout: 30_000 })
    const phoneId = await ownId(phone)
    const phoneRow = ada.locator(`#people li[data-peer-id="${phoneId}"]`)
    await phoneRow.locator('.quality', { hasText: 'Direct' }).waitFor({ timeout: 30_000 })
    const phoneName = (await phoneRow.locator('.name').textContent()) ?? ''
    expect(phoneName).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/)
    // the person's name, not a peer ID, with the peer ID on hover
    await phone.locator('.quiet', { hasText: 'Ada' }).first().waitFor({ timeout: 30_000 })
    expect(await phone.locator('.quiet .name', { hasText: 'Ada' }).first().getAttribute('title')).toMatch(/^Peer ID 12D3KooW/)

    await say(phone, 'hello from the phone')
    await ada.getByText('hello from the phone').waitFor({ timeout: 15_000 })
    const received = ada.locator('#messages li.msg', { hasText: 'hello from the phone' })
    expect(await received.locator('.name').textContent()).toBe(phoneName)
    await say(ada, 'hi phone, Ada here')
    const onPhone = phone.locator('#messages li.msg', { hasText: 'hi phone, Ada here' })
    await onPhone.waitFor({ timeout: 15_000 })
    expect(await onPhone.locator('.name').textContent()).toBe('Ada')

    await checkChatFirst(ada)
    await checkChatFirst(phone)
    await checkScreen(ada, 'chat-desktop')
    await checkScreen(phone, 'chat-phone-dark')

    // the network details wait in a drawer
    expect(await ada.locator('#network').isVisible()).toBe(false)
    await ada.getByRole('button', { name: 'Network' }).click()
    await ada.locator('#net-peer-list li', { hasText: phoneName }).waitFor()
    await ada.locator('#relay-list li[data-reserved="true"]').waitFor()
    await checkScreen(ada, 'network-desktop')
    await phone.getByRole('button', { name: 'Network' }).click()
    await phone.locator('#net-peer-list li', { hasText: 'Ada' }).waitFor()
    await checkScreen(phone, 'network-phone-dark')
    await closePages([ada, phone])
  })

  it('shows a newcomer the earlier messages with their send times, and one host line', async () => {
    const url = roomUrl(demo)
    const first = await openPage(browser, url, DESKTOP)
    await first.locator('#status', { hasText: 'Waiting for others' }).waitFor({ timeout: 60_000 })
    await say(first, 'written before you came')
    const sent = first.locator('#messages li.msg', { hasText: 'written before you came' })
    await sent.waitFor()
    const sentAt = await sent.locator('time').getAttribute('datetime')

    const late = await openPage(browser, url, PHONE)
    const earlier = late.locator('#messages li.msg.history', { hasText: 'written before you came' })
    await earlier.waitFor({ timeout: 60_000 })
    expect(await earlier.locator('.earlier').textContent()).toBe('earlier')
    // the time it was written, from the payload, not the time it arrived
    expect(await earlier.locator('time').getAttribute('datetime')).toBe(sentAt)

    await waitDirect(late)
    // the newcomer saw the host change (itself, then the first tab), and says who hosts once
    const firstId = await ownId(first)
    await late.waitForFunction((id) => (window as any).p2pRooms.room?.host === id, firstId, { timeout: 30_000 })
    const hostLine = late.locator('.quiet[data-kind="host"]')
    await hostLine.waitFor({ timeout: 15_000 })
    expect(await hostLine.count()).toBe(1)
    expect(await hostLine.textContent()).toMatch(/hosts this room/)
    expect(await hostLine.locator('.name').getAttribute('data-name-of')).toBe(firstId)
    await closePages([first, late])
  })

  it('folds long messages, and refuses one over the limit before sending', async () => {
    const page = await openPage(browser, roomUrl(demo), DESKTOP)
    await page.locator('#chat-input:enabled').waitFor({ timeout: 60_000 })
    const long = Array.from({ length: 400 }, (_, i) => `line ${i} of a long paste`).join('\n')
    await say(page, long)
    const msg = page.locator('#messages li.msg', { hasText: 'line 0 of a long paste' })
    await msg.waitFor()
    expect(await msg.getAttribute('class')).toContain('collapsed')
    expect((await msg.boundingBox())?.height).toBeLessThan(300)
    await msg.getByRole('button', { name: 'Show all (9,889 characters)' }).click()
    expect((await msg.boundingBox())?.height).toBeGreaterThan(1000)
    await msg.getByRole('button', { name: 'Show less' }).click()
    expect((await msg.boundingBox())?.height).toBeLessThan(300)

    await page.getByRole('textbox', { name: 'Message' }).fill('x'.repeat(70_000))
    await page.locator('#composer-note', { hasText: 'Too long to send' }).waitFor()
    expect(await page.locator('#composer-note').textContent()).toMatch(/at most 65,536/)
    expect(await page.locator('#send').isDisabled()).toBe(true)
    await checkScreen(page, 'too-long-desktop')
    await closePages([page])
  })

  it('counts unread messages in the tab title while the tab is not looked at', async () => {
    const url = roomUrl(demo, { room: `unread-${Date.now()}` })
    const writer = await openPage(browser, url, DESKTOP)
    const reader = await openPage(browser, url, DESKTOP)
    await Promise.all([waitDirect(writer), waitDirect(reader)])
    // Playwright tells every page it has the focus; without that, focus moves between the
    // tabs of a window as in a person's browser, and another tab of the reader's comes to the front
    const cdp = await reader.context().newCDPSession(reader)
    await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false })
    const other = await reader.context().newPage()
    await other.bringToFront()
    await reader.waitForFunction(() => !document.hasFocus())
    await say(writer, 'one')
    await say(writer, 'two')
    await reader.waitForFunction(() => document.title.startsWith('(2) unread-'), undefined, { timeout: 15_000 })
    await reader.bringToFront()
    await reader.waitForFunction(() => !document.title.startsWith('('), undefined, { timeout: 15_000 })
    await closePages([writer, reader])
  })

  it('in a one-way room, enables the composer only for the host, and follows a hand-off', async () => {
    const url = roomUrl(demo, { type: 'one-way' })
    // the first to join ranks first: it is the host once both have met
    const host = await openPage(browser, url, DESKTOP)
    await host.locator('#chat-input:enabled').waitFor({ timeout: 60_000 })
    const other = await openPage(browser, url, PHONE)
    await Promise.all([waitDirect(host), waitDirect(other)])
    const otherId = await ownId(other)

    await other.locator('#composer-note', { hasText: 'only the host' }).waitFor({ timeout: 30_000 })
    expect(await other.locator('#chat-input').isDisabled()).toBe(true)
    expect(await host.locator('#tag-type').textContent()).toBe('One-way')
    await checkScreen(other, 'one-way-reader-phone')

    await host.locator(`#people li[data-peer-id="${otherId}"]`).getByRole('button', { name: 'Make host' }).click()
    await other.locator('#chat-input:enabled').waitFor({ timeout: 30_000 })
    await host.locator('#chat-input:disabled').waitFor({ timeout: 30_000 })
    await host.locator('.quiet[data-kind="host"]', { hasText: 'You made' }).waitFor({ timeout: 15_000 })
    await other.locator('.quiet[data-kind="host"]', { hasText: 'You are now the host' }).waitFor({ timeout: 15_000 })

    await say(other, 'news from the new host')
    await host.getByText('news from the new host').waitFor({ timeout: 15_000 })
    await closePages([host, other])
  })

  it('in a pairwise room, sends to the person picked in "To" and offers no Make host', async () => {
    const url = roomUrl(demo, { type: 'pairwise' })
    const a = await openPage(browser, url, DESKTOP)
    const b = await openPage(browser, url, DESKTOP)
    await Promise.all([waitDirect(a), waitDirect(b)])
    const bName = (await a.locator('#people li[data-state="ready"] .name').textContent()) ?? ''
    expect(await a.locator('#send-to').isVisible()).toBe(true)
    expect(await a.locator('#send-to option').first().textContent()).toBe(bName)
    expect(await a.locator('.hand-off:visible').count()).toBe(0)
    expect(await b.locator('.hand-off:visible').count()).toBe(0)
    await say(a, 'just for you')
    const got = b.locator('#messages li.msg', { hasText: 'just for you' })
    await got.waitFor({ timeout: 15_000 })
    expect(await got.locator('.note').textContent()).toBe('to you only')
    await closePages([a, b])
  })

  it('makes a private room with a strong secret and an invite that carries it', async () => {
    const maker = await openPage(browser, roomUrl(demo), DESKTOP)
    await maker.locator('#status', { hasText: 'Waiting for others' }).waitFor({ timeout: 60_000 })
    await maker.getByRole('button', { name: 'Rooms' }).click()
    await maker.getByRole('button', { name: 'New private room' }).click()
    await maker.locator('#tag-private', { hasText: 'Private' }).waitFor()
    await maker.locator('.quiet', { hasText: 'It is private' }).waitFor({ timeout: 30_000 })
    const link = new URL(await inviteLink(maker))
    const secret = new URLSearchParams(link.hash.slice(1)).get('secret') ?? ''
    expect(secret).toMatch(/^[A-Za-z0-9_-]{22,}$/)
    expect(link.search).not.toContain(secret)
    expect(await maker.locator('#invite-warning').isVisible()).toBe(true)
    await checkScreen(maker, 'invite-private-desktop')
    await closeDialog(maker)

    const guest = await openPage(browser, link.href, PHONE)
    await Promise.all([waitDirect(maker), waitDirect(guest)])
    expect(await guest.locator('#tag-private').isVisible()).toBe(true)
    await say(guest, 'in the private room')
    await maker.getByText('in the private room').waitFor({ timeout: 15_000 })
    await closePages([maker, guest])
  })

  it('stops on SIGTERM', async () => {
    expect(await demo.stop()).toBe(0)
  })
})
