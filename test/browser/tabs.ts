/**
 * Node side of the browser tests: launches Debian's Chromium through playwright-core and opens
 * fixture tabs that join a room through the relay.
 */
import { statfsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import type { Recorded, StartOptions } from './fixture/harness.js'
import type { Browser, BrowserContext, BrowserServer, Page } from 'playwright-core'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** The only flags this machine needs; nothing else: WebRTC (mDNS host candidates) and timers behave as in users' browsers. */
export const CHROMIUM_ARGS = [
  // root in a container: no user namespaces for the sandbox
  '--no-sandbox',
  '--disable-gpu',
  // no network beyond this machine: keep Chromium from dialing Google's services
  '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** Free space /dev/shm needs before Chromium keeps its shared memory there, as browsers do: 1 GiB. */
const MIN_DEV_SHM_BYTES = 1024 ** 3

/**
 * Switches Playwright adds to every launch by default that users' browsers do not have: timers
 * never throttled and renderers never backgrounded, whatever the page's visibility, and shared
 * memory in /tmp instead of /dev/shm (Playwright's guard for containers whose /dev/shm is 64 MB;
 * kept where /dev/shm is that small). Headless pages here are all visible and focused, so
 * dropping them changes no test's timing (measured 3 December: 10 ms timers on time, the 2-tab
 * meeting within noise either way); it keeps the launch what the issue asks: only the flags
 * this machine needs.
 */
const PLAYWRIGHT_DEFAULTS_DROPPED = [
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
  ...(devShmFree() >= MIN_DEV_SHM_BYTES ? ['--disable-dev-shm-usage'] : [])
]

/** Bytes free in /dev/shm; 0 where it is missing. */
function devShmFree (): number {
  try {
    const { bavail, bsize } = statfsSync('/dev/shm')
    return bavail * bsize
  } catch {
    return 0
  }
}

/** `extraArgs`: only Chromium's fake media devices, for pages that call getUserMedia (the demo's call buttons). */
export async function launchChromium (extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...extraArgs], ignoreDefaultArgs: PLAYWRIGHT_DEFAULTS_DROPPED })
}

/**
 * A Chromium of its own, as a separate process the test can kill (`server.process().kill('SIGKILL')`),
 * with a `Browser` connected to it.
 */
export async function launchChromiumProcess (): Promise<{ server: BrowserServer, browser: Browser }> {
  const server = await chromium.launchServer({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, ignoreDefaultArgs: PLAYWRIGHT_DEFAULTS_DROPPED })
  const browser = await chromium.connect(server.wsEndpoint())
  return { server, browser }
}

export interface Tab {
  page: Page
  peerId: string
  reservationMs?: number
  /** `performance.now()` in the page right after joinRoom resolved. */
  joinedAt: number
  rec(): Promise<Recorded>
}

export async function openTab (browser: Browser, fixtureUrl: string, relay: string, room: string, opts: StartOptions = {}): Promise<Tab> {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.on('pageerror', (err) => { console.error(`[tab] page error: ${err.message}`) })
  await page.goto(fixtureUrl)
  await page.waitForFunction(() => window.harness !== undefined)
  const started = await page.evaluate(async ([r, n, o]) => window.harness.start(r, n, o), [relay, room, opts] as const)
  return { page, ...started, rec: async () => page.evaluate(() => window.harness.rec) }
}

/** Waits until `tab` has seen `peer:join` with `path: 'direct'` for every peer in `peers`. */
export async function waitJoined (tab: Tab, peers: string[], timeout = 60_000): Promise<void> {
  await tab.page.waitForFunction((ids) => ids.every((id) => window.harness.rec.joins.some((j) => j.peerId === id && j.path === 'direct')), peers, { timeout, polling: 100 })
}

/** Waits until `tab` received at least `count` messages whose text starts with `prefix`. */
export async function waitMessages (tab: Tab, prefix: string, count: number, timeout = 60_000): Promise<void> {
  await tab.page.waitForFunction(([p, n]) => window.harness.rec.messages.filter((m) => m.text.startsWith(p)).length >= n, [prefix, count] as const, { timeout, polling: 100 })
}

export async function waitLeft (tab: Tab, peerId: string, timeout = 60_000): Promise<void> {
  await tab.page.waitForFunction((id) => window.harness.rec.leaves.some((l) => l.peerId === id), peerId, { timeout, polling: 100 })
}

export async function relayStatus (relayHttp: string): Promise<{ transfer: { circuit: { sent: number, received: number }, pubsub: { sent: number, received: number } }, reservations: number }> {
  return (await fetch(`${relayHttp}/status`)).json()
}

export function relayedBytes (s: Awaited<ReturnType<typeof relayStatus>>): { circuit: number, pubsub: number } {
  return { circuit: s.transfer.circuit.sent + s.transfer.circuit.received, pubsub: s.transfer.pubsub.sent + s.transfer.pubsub.received }
}

/**
 * Starts a node in `page` once its fixture has loaded (after `goto`, `reload`, or `window.open`).
 * Pages of one browser context share storage and Web Locks, like tabs of one browser profile.
 */
export async function startTab (page: Page, relay: string, room: string, opts: StartOptions = {}): Promise<Tab> {
  await page.waitForFunction(() => window.harness !== undefined)
  const started = await page.evaluate(async ([r, n, o]) => window.harness.start(r, n, o), [relay, room, opts] as const)
  return { page, ...started, rec: async () => page.evaluate(() => window.harness.rec) }
}

/** Like `openTab`, in an existing context, so the new tab shares the others' storage and locks. */
export async function openTabIn (context: BrowserContext, fixtureUrl: string, relay: string, room: string, opts: StartOptions = {}): Promise<Tab> {
  const page = await context.newPage()
  page.on('pageerror', (err) => { console.error(`[tab] page error: ${err.message}`) })
  await page.goto(fixtureUrl)
  return startTab(page, relay, room, opts)
}

/** Waits until `tab`'s node knows relay `peerId`, configured or learned from the federation. */
export async function waitRelayKnown (tab: Tab, peerId: string, timeout = 60_000): Promise<void> {
  await tab.page.waitForFunction((id) => window.relays.list().some((r) => r.peerId === id), peerId, { timeout, polling: 100 })
}

/**
 * Waits until `tab` recorded a `type` event about relay `peerId` (recording starts with
 * `window.relays.watch()`), and resolves with its time in the page (`performance.now()`).
 */
export async function waitRelayEvent (tab: Tab, type: 'relay:discover' | 'relay:connect' | 'relay:disconnect', peerId: string, timeout = 60_000): Promise<number> {
  const handle = await tab.page.waitForFunction(([k, id]) => window.relays.log.find((e) => e.type === k && e.peerId === id)?.t, [type, peerId] as const, { timeout, polling: 100 })
  return await handle.jsonValue() as number
}
