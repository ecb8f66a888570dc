/**
 * Tabs for the meeting bench, driven over the Chrome DevTools Protocol directly (a pipe,
 * `--remote-debugging-pipe`) instead of through Playwright.
 *
 * Playwright instruments every page it drives: it enables the Network, Runtime and Page domains
 * (an event to the test runner for every request and WebSocket frame, every console message and
 * context) and runs its own driver process alongside. Users' browsers have none of that. Measured
 * on 3 December, 8 alternating pairs of 2-tab meetings: both systems met about 20 % faster driven
 * this way (ours 1,538 against 1,901 ms, PeerJS 399 against 490), with the same ratio (3.85
 * against 3.88). Here a tab is a browser context of its own with one page, attached with
 * `Target.attachToTarget`, and only `Page.navigate`, `Runtime.evaluate` and the Target domain are
 * used: no domain is enabled, so Chromium sends no events at all.
 *
 * Chromium runs headless with the same flags as everywhere else (tabs.ts `CHROMIUM_ARGS`), and
 * none of Playwright's defaults.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../browser/tabs.js'
import type { ChildProcess } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'

/** One page in a browser context of its own. */
export interface CdpTab {
  /** Navigates and resolves once the new document is the one `evaluate` reaches. */
  goto(url: string): Promise<void>
  /**
   * The value of a JavaScript expression in the page, awaited if it is a promise, copied through
   * JSON. Throws `Error` with the page's exception text if it throws or rejects.
   */
  evaluate<T>(expression: string): Promise<T>
  /** Closes the page and its context. */
  close(): Promise<void>
}

export interface CdpBrowser {
  newTab(): Promise<CdpTab>
  close(): Promise<void>
  /** The browser process, for its CPU counters (cpu-threads.ts). */
  readonly process: ChildProcess
}

interface Reply { id?: number, result?: any, error?: { message: string } }

/** How long a navigation may take to reach its document, in ms. */
const NAVIGATION_TIMEOUT_MS = 30_000

/** Launches headless Chromium with a DevTools pipe; rejects if it exits before answering. */
export async function launchCdpBrowser (): Promise<CdpBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'p2p-rooms-bench-chromium-'))
  const child = spawn(CHROMIUM_PATH, ['--headless', ...CHROMIUM_ARGS, '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe']
  })
  const toBrowser = child.stdio[3] as Writable
  const fromBrowser = child.stdio[4] as Readable
  const waiting = new Map<number, { resolve: (r: any) => void, reject: (e: Error) => void }>()
  let nextId = 0
  let pending = ''
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  void exited.then(() => {
    for (const w of waiting.values()) w.reject(new Error('Chromium exited'))
    waiting.clear()
  })
  fromBrowser.setEncoding('utf8')
  fromBrowser.on('data', (chunk: string) => {
    pending += chunk
    let end: number
    // messages are JSON, each ended by a NUL byte
    while ((end = pending.indexOf('\0')) >= 0) {
      const reply = JSON.parse(pending.slice(0, end)) as Reply
      pending = pending.slice(end + 1)
      if (reply.id === undefined) continue
      const w = waiting.get(reply.id)
      waiting.delete(reply.id)
      if (reply.error !== undefined) w?.reject(new Error(reply.error.message))
      else w?.resolve(reply.result)
    }
  })

  const send = async (method: string, params: object = {}, sessionId?: string): Promise<any> => {
    const id = ++nextId
    const reply = new Promise((resolve, reject) => { waiting.set(id, { resolve, reject }) })
    toBrowser.write(`${JSON.stringify({ id, method, params, sessionId })}\0`)
    return reply
  }

  await send('Browser.getVersion')
  return {
    process: child,
    async newTab () {
      const { browserContextId } = await send('Target.createBrowserContext')
      const { targetId } = await send('Target.createTarget', { url: 'about:blank', browserContextId })
      const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true })
      const evaluate = async <T>(expression: string): Promise<T> => {
        // serialised in the page by JSON.stringify: the protocol's own by-value copy leaves out
        // what a Proxy holds (the bench record's `joined` and `first` are Proxies)
        const { result, exceptionDetails } = await send('Runtime.evaluate', {
          expression: `Promise.resolve((${expression})).then((value) => JSON.stringify(value))`,
          awaitPromise: true,
          returnByValue: true
        }, sessionId)
        if (exceptionDetails !== undefined) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text)
        return (typeof result.value === 'string' ? JSON.parse(result.value) : undefined) as T
      }
      return {
        evaluate,
        async goto (url) {
          const { errorText } = await send('Page.navigate', { url }, sessionId)
          if (errorText !== undefined) throw new Error(`navigating to ${url}: ${String(errorText)}`)
          // Page.navigate answers once the navigation commits; make sure evaluate reaches the new document
          const href = new URL(url).href
          const deadline = Date.now() + NAVIGATION_TIMEOUT_MS
          while (await evaluate<string>('location.href').catch(() => '') !== href) {
            if (Date.now() > deadline) throw new Error(`navigating to ${url}: not there within ${NAVIGATION_TIMEOUT_MS} ms`)
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        },
        async close () {
          await send('Target.disposeBrowserContext', { browserContextId })
        }
      }
    },
    async close () {
      child.kill()
      await exited
      // the browser's helper processes can still be writing to the profile when it exits
      await rm(profile, { recursive: true, force: true, maxRetries: 10 })
    }
  }
}
