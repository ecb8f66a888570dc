/**
 * The README's first command, as a newcomer runs it: `npm start` (scripts/start.mjs) starts a
 * relay and the demo; Chromium tabs of the printed URL meet, go direct, agree on the room's host
 * and chat, and a one-way room's composer follows the host role as it is handed over.
 */
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './tabs.js'
import type { ChildProcess } from 'node:child_process'
import type { Browser, Page } from 'playwright-core'

const ROOT = new URL('../..', import.meta.url).pathname

let browser: Browser
let demo: ChildProcess | undefined
/** The app URL `npm start` printed. */
let appUrl: string
beforeAll(async () => {
  browser = await launchChromium()
  appUrl = await startDemo(`demo-${Date.now()}`)
})
afterAll(async () => {
  demo?.kill('SIGKILL')
  await browser?.close()
})

/** Starts the demo and resolves with the app URL it prints. */
async function startDemo (room: string): Promise<string> {
  const child = demo = spawn(process.execPath, ['scripts/start.mjs', '--port', '0', '--room', room], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`npm start printed no URL within 60 s:\n${out}`)) }, 60_000)
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const url = /open (http\S+) in two or more tabs/.exec(out)?.[1]
      if (url !== undefined) {
        clearTimeout(timer)
        resolve(url)
      }
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.once('exit', (code) => { reject(new Error(`npm start exited with ${code}:\n${out}`)) })
  })
}

/** A tab in a browser context of its own: its own storage, hence its own peer ID. */
async function openDemo (url: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  page.on('pageerror', (err) => { console.error(`[demo tab] page error: ${err.message}`) })
  await page.goto(url)
  return page
}

async function closeTabs (pages: Page[]): Promise<void> {
  await Promise.all(pages.map(async (p) => { await p.context().close() }))
}

/** The printed app URL with other query parameters. */
function demoUrl (params: Record<string, string>): string {
  const url = new URL(appUrl)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  return url.href
}

/** Our own peer ID as the page shows it (the first row of its peer list). */
async function ownId (page: Page): Promise<string> {
  const id = await page.locator('#peer-list li[data-self]').getAttribute('data-peer-id', { timeout: 60_000 })
  if (id === null) throw new Error('no peer ID on the own row')
  return id
}

/** Peer IDs of the rows wearing the host crown. */
async function crowned (page: Page): Promise<string[]> {
  return page.$$eval('#peer-list li[data-host]', (rows) => rows.map((r) => (r as HTMLElement).dataset.peerId ?? ''))
}

async function waitDirect (pages: Page[]): Promise<void> {
  for (const page of pages) {
    await page.locator('#peer-list li[data-path="direct"][data-state="ready"]').waitFor({ timeout: 60_000 })
  }
}

describe('npm start', () => {
  it('serves a demo whose tabs find the relay, go direct, crown the same host and chat', async () => {
    const tabs = await Promise.all([openDemo(appUrl), openDemo(appUrl)])
    const [one, two] = tabs
    // each tab lists the other as ready over a direct path
    await waitDirect(tabs)
    const ids = await Promise.all(tabs.map(ownId))
    expect(ids[0]).not.toBe(ids[1])

    // both crown one and the same member: the host is a function of the members present
    await expect.poll(async () => {
      const [a, b] = await Promise.all(tabs.map(crowned))
      return a.length === 1 && b.length === 1 && a[0] === b[0] && ids.includes(a[0])
    }, { timeout: 30_000, interval: 200 }).toBe(true)
    for (const page of tabs) expect(await page.locator('#peer-list li[data-host] .host-badge').isVisible()).toBe(true)

    await one.getByLabel('Message').fill('hello from the first tab')
    await one.getByLabel('Message').press('Enter')
    await two.getByText('hello from the first tab').waitFor({ timeout: 15_000 })
    await closeTabs(tabs)
  })

  it('in a one-way room, enables the composer only for the host, and follows a hand-off', async () => {
    const url = demoUrl({ room: `one-way-${Date.now()}`, type: 'one-way' })
    // the first to join ranks first: it is the host once both have met
    const host = await openDemo(url)
    await host.locator('#chat-input:enabled').waitFor({ timeout: 60_000 })
    const other = await openDemo(url)
    const tabs = [host, other]
    await waitDirect(tabs)
    const [hostId, otherId] = await Promise.all(tabs.map(ownId))

    // the non-host's composer is disabled, with the reason
    await other.locator('#composer-note', { hasText: 'only the host' }).waitFor({ timeout: 30_000 })
    expect(await other.locator('#chat-input').isDisabled()).toBe(true)
    expect(await crowned(other)).toEqual([hostId])
    expect(await host.locator('#chat-input').isEnabled()).toBe(true)

    // the host hands the role over with the button on the other's row
    await host.locator(`#peer-list li[data-peer-id="${otherId}"] .hand-off`).click()
    await other.locator('#chat-input:enabled').waitFor({ timeout: 30_000 })
    await host.locator('#chat-input:disabled').waitFor({ timeout: 30_000 })
    expect(await crowned(host)).toEqual([otherId])
    expect(await crowned(other)).toEqual([otherId])

    // and the new host's messages reach the old one
    await other.getByLabel('Message').fill('news from the new host')
    await other.getByLabel('Message').press('Enter')
    await host.getByText('news from the new host').waitFor({ timeout: 15_000 })
    await closeTabs(tabs)
  })

  it('stops on SIGTERM', async () => {
    demo?.removeAllListeners('exit')
    const exited = new Promise<number | null>((resolve) => demo?.once('exit', (code) => { resolve(code) }))
    demo?.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
