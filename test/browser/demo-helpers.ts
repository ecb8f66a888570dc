/**
 * Shared by the demo's browser tests: start `npm start` (scripts/start.mjs) on free ports with a
 * key of its own, open the page at a phone's or a laptop's size, and check a screen as a person
 * sees it (nothing wider than the viewport, the conversation on the first screen), keeping a
 * screenshot of it in test-results/demo-screens/.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { expect } from 'vitest'
import type { ChildProcess } from 'node:child_process'
import type { Browser, Page } from 'playwright-core'

export const ROOT = new URL('../..', import.meta.url).pathname
export const SCREENS = join(ROOT, 'test-results/demo-screens')

export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export interface Demo {
  /** The app URL `npm start` printed (`?room=` the room given). */
  appUrl: string
  /** The page's origin and path, without a room. */
  base: string
  /** The relay's admin page. */
  adminUrl: string
  relayMultiaddr: string
  process: ChildProcess
  /** Everything it printed so far. */
  output(): string
  /** SIGTERM, resolving with the exit code. */
  stop(): Promise<number | null>
}

export interface StartInit {
  room?: string
  /** Extra flags; by default every port is 0 and the key lives in a fresh temporary folder. */
  args?: string[]
  /** Resolve on this printed line instead of the app URL (e.g. an error). */
  until?: RegExp
}

/** A relay key file path in a fresh temporary folder: a test's relay never shares `npm start`'s key. */
export function tempKeyFile (): string {
  return join(mkdtempSync(join(tmpdir(), 'p2p-rooms-demo-')), 'relay.key')
}

/** `npm start` flags with every port 0 and a key of its own. */
export function isolatedArgs (): string[] {
  return ['--port', '0', '--relay-port', '0', '--admin-port', '0', '--relay-key', tempKeyFile()]
}

/** Starts the demo and resolves once it printed its URLs (or `until`). */
export async function startDemo (init: StartInit = {}): Promise<Demo> {
  const args = init.args ?? isolatedArgs()
  const child = spawn(process.execPath, ['scripts/start.mjs', ...args, '--room', init.room ?? `demo-${Date.now()}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const until = init.until ?? /open (http\S+) in two or more tabs/
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`npm start printed nothing expected within 90 s:\n${out}`)) }, 90_000)
    const check = (): void => {
      if (until.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; check() })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d; check() })
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (until.test(out)) resolve()
      else reject(new Error(`npm start exited with ${code}:\n${out}`))
    })
  })
  // a key folder made here goes when the demo does: tests leave no relay keys behind
  if (init.args === undefined) {
    const keyDir = dirname(args[args.indexOf('--relay-key') + 1])
    child.once('exit', () => { rmSync(keyDir, { recursive: true, force: true }) })
  }
  const appUrl = /open (http\S+) in two or more tabs/.exec(out)?.[1] ?? ''
  return {
    appUrl,
    base: appUrl === '' ? '' : new URL('/', appUrl).href,
    adminUrl: /relay admin\s+(http\S+)/.exec(out)?.[1] ?? '',
    relayMultiaddr: /relay multiaddr\s+(\S+)/.exec(out)?.[1] ?? '',
    process: child,
    output: () => out,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
      child.kill('SIGTERM')
      return exited
    }
  }
}

/** A tab in a browser context of its own (its own storage, hence its own peer ID), at `viewport`. */
export async function openPage (browser: Browser, url: string, viewport = DESKTOP, opts: { colorScheme?: 'light' | 'dark' } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport, colorScheme: opts.colorScheme ?? 'light' })
  const page = await context.newPage()
  page.on('pageerror', (err) => { console.error(`[demo tab] page error: ${err.message}`) })
  if (url !== '') await page.goto(url)
  return page
}

export async function closePages (pages: Page[]): Promise<void> {
  await Promise.all(pages.map(async (p) => { await p.context().close() }))
}

/** A room of one's own for each test: tabs of other tests never wander in. */
export function roomUrl (demo: Demo, params: Record<string, string> = {}, hash = ''): string {
  const url = new URL(demo.base)
  url.searchParams.set('room', params.room ?? `room-${Date.now()}-${Math.floor(Math.random() * 1e6)}`)
  for (const [k, v] of Object.entries(params)) if (k !== 'room') url.searchParams.set(k, v)
  url.hash = hash
  return url.href
}

/** Waits until the page lists someone else as directly connected. */
export async function waitDirect (page: Page, count = 1, timeout = 60_000): Promise<void> {
  await page.waitForFunction((n) => document.querySelectorAll('#people li[data-state="ready"][data-path="direct"]').length >= n, count, { timeout, polling: 100 })
}

/** Our own peer ID, from our row in the people list. */
export async function ownId (page: Page): Promise<string> {
  const id = await page.locator('#people li[data-self]').getAttribute('data-peer-id', { timeout: 60_000 })
  if (id === null) throw new Error('no own row')
  return id
}

/** Types `text` into the composer and presses Enter, as a person does. */
export async function say (page: Page, text: string): Promise<void> {
  const input = page.getByRole('textbox', { name: 'Message' })
  await input.fill(text)
  await input.press('Enter')
}

/**
 * A screen as a person sees it: nothing wider than the viewport (the page cannot be scrolled
 * sideways), and a screenshot kept under `name`.
 */
export async function checkScreen (page: Page, name: string): Promise<void> {
  const { scrollWidth, innerWidth, bodyWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    bodyWidth: document.body.scrollWidth
  }))
  expect(scrollWidth, `${name}: the page is wider than the viewport`).toBe(innerWidth)
  expect(bodyWidth, `${name}: the body is wider than the viewport`).toBeLessThanOrEqual(innerWidth)
  // no visible element sticks out past the right edge (one inside a scrolling box would not widen the page, but is cut off)
  const outside = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('body *')]
    .filter((el) => {
      const r = el.getBoundingClientRect()
      if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') return false
      if (el.closest('.scroller, .log-list, .network, .side, dialog:not([open])') !== null) return false
      return r.right > window.innerWidth + 1
    })
    .concat([...document.querySelectorAll<HTMLElement>('dialog[open] *')].filter((el) => {
      // inside an open dialog, nothing may be cut off by the dialog's own edge
      const box = el.closest('dialog')!.getBoundingClientRect()
      const r = el.getBoundingClientRect()
      return r.width > 0 && r.right > box.right + 1
    }))
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`)
    .slice(0, 5))
  expect(outside, `${name}: elements past the right edge`).toEqual([])
  mkdirSync(SCREENS, { recursive: true })
  await page.screenshot({ path: join(SCREENS, `${name}.png`) })
}

/** The conversation takes the first screen: the composer is on it, and the messages get most of its height. */
export async function checkChatFirst (page: Page): Promise<void> {
  const box = await page.evaluate(() => {
    const conv = document.querySelector('.conversation')!.getBoundingClientRect()
    const composer = document.querySelector('#composer')!.getBoundingClientRect()
    return { convTop: conv.top, convHeight: conv.height, convWidth: conv.width, composerBottom: composer.bottom, vh: window.innerHeight, vw: window.innerWidth }
  })
  expect(box.composerBottom).toBeLessThanOrEqual(box.vh + 1)
  expect(box.convTop).toBeLessThan(box.vh * 0.12)
  expect(box.convHeight).toBeGreaterThan(box.vh * 0.8)
  expect(box.convWidth).toBeGreaterThan(box.vw * (box.vw > 800 ? 0.6 : 0.95))
}
