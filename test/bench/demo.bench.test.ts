/**
 * `npm run bench`: how fast the demo's first screen and first message come after `npm start`,
 * for the built page `npm start` serves and, as the anchor measured in the same run, the Vite dev
 * server it served before (`npm start -- --dev`). Two tabs are opened together, each in a fresh
 * browser context (an empty HTTP cache), as a person opening an invite on two devices would:
 *
 * - first paint: the tab's first-contentful-paint entry (ms after navigation start)
 * - DOMContentLoaded: the tab's navigation timing (ms after navigation start)
 * - first message: from asking both tabs to load until the second shows a message the first
 *   sent as soon as it saw the second connected directly (ms, wall clock)
 *
 * Round 1 is reported apart: it is what the first person after `npm start` gets (the dev
 * server pre-bundles its dependencies then). Writes bench-results/demo.json; asserts only that it measured.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeResults } from './results.js'
import { launchChromium } from '../browser/tabs.js'
import { DESKTOP, closePages, isolatedArgs, openPage, roomUrl, say, startDemo, waitDirect } from '../browser/demo-helpers.js'
import type { Browser, Page } from 'playwright-core'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const results: Record<string, { samples: number, median: number, p90: number, unit: 'ms' }> = {}
const round = (n: number): number => Math.round(n)
function record (name: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  results[name] = { samples: sorted.length, median: round(at(0.5)), p90: round(at(0.9)), unit: 'ms' }
}

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  await browser?.close()
  console.table(results)
  const ratio = (a: string, b: string): number | undefined => results[a] !== undefined && results[b] !== undefined ? Math.round(results[a].median / results[b].median * 100) / 100 : undefined
  const ratios = {
    'first paint, built / dev server': ratio('built: first paint', 'dev server: first paint'),
    'first paint round 1, built / dev server': ratio('built: first paint, round 1', 'dev server: first paint, round 1'),
    'first message round 1, built / dev server': ratio('built: first message, round 1', 'dev server: first message, round 1'),
    'first message, built / dev server': ratio('built: first message (2 tabs)', 'dev server: first message (2 tabs)')
  }
  console.table(ratios)
  writeResults('demo', { rounds: ROUNDS, results, ratios })
})

async function paintTimes (page: Page): Promise<{ fcp: number, dcl: number }> {
  await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0)
  return page.evaluate(() => ({
    fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime,
    dcl: (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd
  }))
}

async function measure (label: string, dev: boolean): Promise<void> {
  const demo = await startDemo(dev ? { args: ['--dev', ...isolatedArgs()] } : {})
  const paint: number[] = []
  const dcl: number[] = []
  const firstMessage: number[] = []
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const url = roomUrl(demo)
      const [a, b] = await Promise.all([openPage(browser, '', DESKTOP), openPage(browser, '', DESKTOP)])
      const started = performance.now()
      await Promise.all([a.goto(url), b.goto(url)])
      for (const t of await Promise.all([paintTimes(a), paintTimes(b)])) {
        paint.push(t.fcp)
        dcl.push(t.dcl)
      }
      await waitDirect(a)
      await say(a, `first ${r}`)
      await b.getByText(`first ${r}`).waitFor({ timeout: 60_000 })
      firstMessage.push(performance.now() - started)
      await closePages([a, b])
    }
  } finally {
    await demo.stop()
  }
  // the first round is what the first person after `npm start` gets (the dev server pre-bundles then)
  record(`${label}: first paint, round 1`, paint.slice(0, 2))
  record(`${label}: DOMContentLoaded, round 1`, dcl.slice(0, 2))
  record(`${label}: first message, round 1`, firstMessage.slice(0, 1))
  record(`${label}: first paint`, paint)
  record(`${label}: DOMContentLoaded`, dcl)
  record(`${label}: first message (2 tabs)`, firstMessage)
  expect(paint.length).toBe(ROUNDS * 2)
}

describe('bench: demo first load', () => {
  it('measures first paint and first message for the built page and the dev server', async () => {
    await measure('built', false)
    await measure('dev server', true)
  })
})
