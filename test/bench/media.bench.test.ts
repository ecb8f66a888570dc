/**
 * `npm run bench`: how fast a stream shows at a receiver, ours beside PeerJS `call()` in the same
 * run, the same Chromium, tabs opened the same way (each in its own browser context). Streams are
 * painted canvases (`captureStream`), no device; "first decoded frame" is the receiving `<video>`'s
 * first `requestVideoFrameCallback`. The ratio is the result; it asserts only that it measured.
 *
 * - addStream → first frame: 2 tabs that already reached each other (ours: `peer:join`; PeerJS:
 *   both registered with the PeerServer); one adds a stream (`addStream` / `call`), the other's
 *   first decoded frame. Ours opens the media RTCPeerConnection then, signalled over the open
 *   direct connection; PeerJS opens its call's connection through the PeerServer.
 * - second stream → first frame: the same pair adds another stream (ours renegotiates the media
 *   connection; PeerJS's `call` opens a new one).
 * - 2 tabs opened together → first frame: each adds its stream at once (ours right after
 *   `joinRoom`; PeerJS tab 0 calls tab 1 on registering, tab 1 answers with its own); per tab,
 *   navigation to the other's first decoded frame.
 *
 * For ours, two context rows split the last one: navigation → `peer:join` (meeting, as in
 * meet.bench.test.ts) and `peer:join` → first decoded frame (what media adds to it).
 *
 * Results: printed, and written to bench-results/media.json and .md. Knobs: BENCH_MEDIA_RUNS (7).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { writeResults } from './results.js'
import { launchChromium } from '../browser/tabs.js'
import type { MediaBenchRecord } from './fixture/media-common.js'
import type { Browser, Page } from 'playwright-core'

const relayAddr = inject('relayAddr')
const benchUrl = inject('benchUrl')
const peerServer = inject('peerServer')
const RUNS = Number(process.env.BENCH_MEDIA_RUNS ?? 7)
const TIMEOUT = 120_000

type SystemName = 'ours' | 'peerjs'
const SYSTEMS: SystemName[] = ['ours', 'peerjs']

function urls (system: SystemName, batch: string, auto: boolean): string[] {
  const a = auto ? '&auto=1' : ''
  if (system === 'ours') return [0, 1].map(() => `${benchUrl}media-rooms.html?relay=${encodeURIComponent(relayAddr)}&room=${batch}${a}`)
  return [`${benchUrl}media-peerjs.html?server=${peerServer}&id=${batch}-0${auto ? `&dial=${batch}-1` : ''}${a}`, `${benchUrl}media-peerjs.html?server=${peerServer}&id=${batch}-1${a}`]
}

async function openTogether (browser: Browser, list: string[]): Promise<Page[]> {
  const pages = await Promise.all(list.map(async () => (await browser.newContext()).newPage()))
  for (const page of pages) page.on('pageerror', (err) => { console.error(`[media bench tab] ${err.message}`) })
  await Promise.all(pages.map(async (page, i) => { await page.goto(list[i]) }))
  return pages
}

const rec = async (page: Page): Promise<MediaBenchRecord> => page.evaluate(() => window.mbench.rec)

async function waitFor (page: Page, what: 'ready' | 'joined' | 'frames', count = 1): Promise<void> {
  await page.waitForFunction(([w, n]) => {
    const r = window.mbench?.rec
    if (r?.error !== undefined) throw new Error(r.error)
    if (r === undefined) return false
    if (w === 'ready') return r.ready !== undefined
    return Object.keys(w === 'joined' ? r.joined : r.firstFrameEpoch).length >= n
  }, [what, count] as const, { timeout: TIMEOUT, polling: 20 })
}

/** Waits for `page` to show a first frame from `peer` after `since` (epoch ms); resolves with it. */
async function frameAfter (page: Page, peer: string, since: number): Promise<number> {
  const h = await page.waitForFunction(([p, s]) => {
    const t = window.mbench.rec.firstFrameEpoch[p]
    return t !== undefined && t >= s ? t : undefined
  }, [peer, since] as const, { timeout: TIMEOUT, polling: 20 })
  return await h.jsonValue() as number
}

interface Stat { n: number, p50: number, p90: number }
const results: Record<string, Partial<Record<SystemName, Stat>>> = {}
const samples: Record<string, Partial<Record<SystemName, number[]>>> = {}
const round = (n: number): number => Math.round(n * 10) / 10

function record (measure: string, system: SystemName, values: number[]): void {
  expect(values.length).toBeGreaterThan(0)
  expect(values.every((v) => Number.isFinite(v) && v >= 0)).toBe(true)
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  ;(samples[measure] ??= {})[system] = values
  ;(results[measure] ??= {})[system] = { n: sorted.length, p50: round(at(0.5)), p90: round(at(0.9)) }
}

function table (): string {
  const lines = ['| measure | ours p50 (p90) | PeerJS p50 (p90) | ratio (ours / PeerJS, p50) |', '| --- | --: | --: | --: |']
  for (const [measure, by] of Object.entries(results)) {
    const fmt = (s?: Stat): string => s === undefined ? '—' : `${s.p50} ms (${s.p90})`
    const ratio = by.ours !== undefined && by.peerjs !== undefined && by.peerjs.p50 > 0 ? (by.ours.p50 / by.peerjs.p50).toFixed(2) : '—'
    lines.push(`| ${measure} (n ${Object.values(by).map((s) => s?.n).join('/')}) | ${fmt(by.ours)} | ${fmt(by.peerjs)} | ${ratio} |`)
  }
  return lines.join('\n')
}

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  await browser?.close()
  const md = table()
  console.log(`\n${md}\n`)
  writeResults('media', { results, samples }, md)
})

describe('bench: media, beside PeerJS call()', () => {
  it('addStream to a peer already reached → its first decoded frame, then a second stream', async () => {
    for (const system of SYSTEMS) {
      const first: number[] = []
      const second: number[] = []
      for (let r = 0; r < RUNS; r++) {
        const batch = `madd${system}${Date.now()}`
        const pages = await openTogether(browser, urls(system, batch, false))
        if (system === 'ours') await Promise.all(pages.map(async (p) => { await waitFor(p, 'joined') }))
        else await Promise.all(pages.map(async (p) => { await waitFor(p, 'ready') }))
        const [sender, receiver] = await Promise.all(pages.map(rec))
        const from = sender.peerId ?? ''
        const to = receiver.peerId ?? ''
        const t0 = await pages[0].evaluate(async (id) => window.mbench.send(id), to)
        first.push((await frameAfter(pages[1], from, t0)) - t0)
        // a second stream: the receiver's record keeps one first frame per peer, so start afresh
        await pages[1].evaluate(() => { window.mbench.rec.firstFrameEpoch = {} })
        const t1 = await pages[0].evaluate(async (id) => window.mbench.send(id), to)
        second.push((await frameAfter(pages[1], from, t1)) - t1)
        await Promise.all(pages.map(async (p) => { await p.context().close() }))
      }
      record('addStream to a reached peer → first decoded frame', system, first)
      record('a second stream to it → first decoded frame', system, second)
    }
  })

  it('2 tabs opened together, each streaming at once → navigation to the first decoded frame', async () => {
    for (const system of SYSTEMS) {
      const times: number[] = []
      const joined: number[] = []
      const joinToFrame: number[] = []
      for (let r = 0; r < RUNS; r++) {
        const pages = await openTogether(browser, urls(system, `mtogether${system}${Date.now()}`, true))
        await Promise.all(pages.map(async (p) => { await waitFor(p, 'frames') }))
        for (const p of pages) {
          const x = await rec(p)
          times.push(...Object.values(x.firstFrame))
          joined.push(...Object.values(x.joined))
          for (const [peer, t] of Object.entries(x.firstFrame)) if (x.joined[peer] !== undefined) joinToFrame.push(t - x.joined[peer])
        }
        await Promise.all(pages.map(async (p) => { await p.context().close() }))
      }
      record('2 tabs opened together → first decoded frame', system, times)
      // context: when ours met (PeerJS has no such moment before its call)
      if (system === 'ours') {
        record('2 tabs opened together → peer:join (context)', system, joined)
        record('2 tabs opened together: peer:join → first decoded frame (context)', system, joinToFrame)
      }
    }
  })
})
