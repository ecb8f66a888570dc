/**
 * `npm run bench`: files between 2 Chromium tabs through a real relay, beside a bare
 * RTCPeerConnection's data channel moving the same bytes between 2 tabs of the same browser in the
 * same run. The ratio is the result; this machine (2 shared cores) sets the absolute pace.
 *
 * - throughput: `BENCH_FILE_MIB` (256) MiB, `BENCH_FILE_RUNS` (3) runs each, alternating, the ratio
 *   taken run by run (each pair under the same load) and its median reported. Ours from
 *   the receiver's `file` event (it accepts at once) to the verified file; the anchor from its
 *   first send to its last byte received. Also ours end to end, from `sendFile` (which first
 *   hashes the file) to delivery, and the receiver's JS heap (CDP `Runtime.getHeapUsage`).
 * - time to first byte: `sendFile` of 1 MiB and of the big file, to the receiver's first
 *   verified chunk (epoch clocks of one machine).
 * - resume: `BENCH_FILE_RESUME_MIB` (64) MiB; the network drops at both ends at 50 %, or the
 *   receiving tab reloads at 50 %: how long until bytes flow again, what the interruption cost
 *   beside an uninterrupted transfer of the same size, and bytes sent more than once.
 * - 1 GiB (`BENCH_FILE_BIG_MIB`, 1024): the receiving page's JS heap throughout (goal < 100 MiB).
 *
 * Results: printed, and written to bench-results/files.json and .md.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { writeFileSync, mkdirSync } from 'node:fs'
import { cpuDiff, threadTimes } from './cpu-threads.js'
import { writeResults } from './results.js'
import { launchChromium } from '../browser/tabs.js'
import type { Browser, CDPSession, Page } from 'playwright-core'

const relayAddr = inject('relayAddr')
const benchUrl = inject('benchUrl')
const MiB = 1024 * 1024
const SIZE = Number(process.env.BENCH_FILE_MIB ?? 256) * MiB
const RUNS = Number(process.env.BENCH_FILE_RUNS ?? 3)
const RESUME_SIZE = Number(process.env.BENCH_FILE_RESUME_MIB ?? 64) * MiB
const BIG = Number(process.env.BENCH_FILE_BIG_MIB ?? 1024) * MiB
const TIMEOUT = 600_000
/** `BENCH_FILE_RUN_TIMEOUT_S` (600): a throughput run that has not finished by then counts as stalled and the next one starts. */
const RUN_TIMEOUT = Number(process.env.BENCH_FILE_RUN_TIMEOUT_S ?? 600) * 1000
/** `BENCH_FILE_PROFILE=1`: CPU seconds per Chromium thread for each run, and V8 CPU profiles of both tabs in bench-results/. */
const PROFILE = process.env.BENCH_FILE_PROFILE === '1'

interface Received { id: string, size: number, offeredAt: number, acceptedAt: number, firstByteAt?: number, doneAt?: number, keptBytes: number, error?: string, resumedAt?: number, maxGapMs: number }
interface Sent { id: string, calledAt: number, doneAt?: number, sentBytes: number, sentAtDrop?: number, dropAt?: number, error?: string }

const results: Record<string, unknown> = {}
const rows: string[][] = []
const mibps = (bytes: number, ms: number): number => Math.round(bytes / MiB / (ms / 1000) * 100) / 100
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)]
const round = (n: number): number => Math.round(n)

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  await browser?.close()
  const md = ['| measure | ours | raw RTCDataChannel | ratio (ours / raw) |', '| --- | --: | --: | --: |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
  console.log(`\n${md}\n`)
  writeResults('files', { sizeBytes: SIZE, runs: RUNS, results }, md)
})

async function open (url: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  page.on('pageerror', (err) => { console.error(`[bench tab] ${err.message}`) })
  await page.goto(url)
  return page
}

async function closeAll (pages: Page[]): Promise<void> {
  await Promise.all(pages.map(async (p) => { await p.context().close() }))
}

/** Two tabs of the files app in one room, each directly connected to the other. */
async function roomPair (label: string, receiverParams = ''): Promise<{ a: Page, b: Page, idA: string, idB: string }> {
  const url = `${benchUrl}files.html?relay=${encodeURIComponent(relayAddr)}&room=${label}-${Date.now()}`
  const [a, b] = await Promise.all([open(url), open(url + receiverParams)])
  const ready = async (p: Page): Promise<string> => {
    const h = await p.waitForFunction(() => { const r = (window as any).fbench?.rec; if (r?.error !== undefined) throw new Error(r.error); return r?.ready === true ? r.peerId : undefined }, undefined, { timeout: 60_000, polling: 50 })
    return await h.jsonValue() as string
  }
  const [idA, idB] = await Promise.all([ready(a), ready(b)])
  await Promise.all([[a, idB], [b, idA]].map(async ([p, id]) => { await (p as Page).waitForFunction((i) => (window as any).fbench.rec.joined.includes(i), id, { timeout: 60_000, polling: 50 }) }))
  return { a, b, idA, idB }
}

async function received (p: Page, id: string, timeout = TIMEOUT): Promise<Received> {
  const h = await p.waitForFunction((i) => { const r = (window as any).fbench.rec.received[i]; if (r?.error !== undefined) throw new Error(r.error); return r?.doneAt !== undefined ? r : undefined }, id, { timeout, polling: 100 })
  return await h.jsonValue() as Received
}

async function sent (p: Page, id: string): Promise<Sent> {
  const h = await p.waitForFunction((i) => { const s = (window as any).fbench.rec.sent[i]; return s?.doneAt !== undefined ? s : undefined }, id, { timeout: 60_000, polling: 100 })
  return await h.jsonValue() as Sent
}

/** Samples the page's JS heap every `everyMs` until `until` settles; the largest `usedSize`, in bytes. */
async function heapWhile (page: Page, until: Promise<unknown>, everyMs: number): Promise<{ max: number, samples: number }> {
  const cdp: CDPSession = await page.context().newCDPSession(page)
  let done = false
  void until.finally(() => { done = true }).catch(() => {})
  let max = 0
  let samples = 0
  while (!done) {
    const { usedSize } = await cdp.send('Runtime.getHeapUsage')
    max = Math.max(max, usedSize)
    samples++
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  await cdp.detach()
  return { max, samples }
}

/** Ours: `size` bytes from a to b; times, and b's heap. */
async function oursOnce (size: number, label: string, heapEveryMs = 500): Promise<{ r: Received, s: Sent, heap: { max: number, samples: number } }> {
  const { a, b, idB } = await roomPair(label)
  await a.evaluate(async ([n, seed]) => { await (window as any).fbench.make('f', n, seed) }, [size, label] as const)
  const profilers = PROFILE ? await Promise.all([a, b].map(async (p) => startProfile(p))) : []
  const before = PROFILE ? threadTimes() : undefined
  const id = await a.evaluate((p) => (window as any).fbench.send(p, 'f') as string, idB)
  const done = received(b, id, RUN_TIMEOUT)
  const heap = await heapWhile(b, done, heapEveryMs)
  const r = await done.catch(async (err) => {
    // what each side had when it stalled
    const [ss, rr] = await Promise.all([a.evaluate((i) => (window as any).fbench.rec.sent[i], id), b.evaluate((i) => (window as any).fbench.rec.received[i], id)])
    console.log(`${label} stalled: sender`, ss, 'receiver', rr)
    await closeAll([a, b])
    throw err
  })
  const s = await sent(a, id)
  if (before !== undefined) console.log(`${label} ours, CPU s by thread:`, cpuDiff(before, threadTimes()))
  const waits = await a.evaluate(() => (window as any).fbench.rec.memberWaits as number)
  if (waits > 0) console.log(`${label}: the receiver had timed out of the room; waited ${waits * 0.5} s for it to rejoin before sending`)
  await Promise.all(profilers.map(async (stop, i) => { await stop(`${label}-${i === 0 ? 'sender' : 'receiver'}`) }))
  await closeAll([a, b])
  return { r, s, heap }
}

/** Starts V8's sampling profiler in `page`; the function returned writes bench-results/<name>.cpuprofile. */
async function startProfile (page: Page): Promise<(name: string) => Promise<void>> {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 1000 })
  await cdp.send('Profiler.start')
  return async (name) => {
    const { profile } = await cdp.send('Profiler.stop')
    mkdirSync('bench-results', { recursive: true })
    writeFileSync(`bench-results/${name}.cpuprofile`, JSON.stringify(profile))
    await cdp.detach()
  }
}

/** The anchor: a bare data channel moving `size` bytes from one tab to another. */
async function rawOnce (size: number, seed: string): Promise<{ ms: number, firstByteMs: number }> {
  const [a, b] = await Promise.all([open(`${benchUrl}raw.html`), open(`${benchUrl}raw.html`)])
  await Promise.all([a, b].map(async (p) => { await p.waitForFunction(() => (window as any).raw !== undefined) }))
  const offer = await a.evaluate(async () => (window as any).raw.offer() as Promise<string>)
  const answer = await b.evaluate(async (o) => (window as any).raw.answer(o) as Promise<string>, offer)
  await a.evaluate(async (s) => { await (window as any).raw.accept(s) }, answer)
  await Promise.all([a, b].map(async (p) => { await p.waitForFunction(() => (window as any).raw.rec.open === true, undefined, { timeout: 30_000 }) }))
  await a.evaluate(async ([n, s]) => { await (window as any).raw.make(n, s) }, [size, seed] as const)
  const before = PROFILE ? threadTimes() : undefined
  await a.evaluate(async () => { await (window as any).raw.send() })
  await b.waitForFunction((n) => (window as any).raw.rec.received >= n, size, { timeout: TIMEOUT, polling: 100 })
  if (before !== undefined) console.log(`${seed} raw, CPU s by thread:`, cpuDiff(before, threadTimes()))
  const [sa, rb] = await Promise.all([a.evaluate(() => (window as any).raw.rec), b.evaluate(() => (window as any).raw.rec)])
  expect(rb.received).toBe(size)
  await closeAll([a, b])
  return { ms: rb.lastByteAt - sa.startedAt, firstByteMs: rb.firstByteAt - sa.startedAt }
}

describe('bench: files beside a raw RTCDataChannel', () => {
  it(`moves ${SIZE / MiB} MiB between 2 tabs`, async () => {
    const ours: Array<{ mibps: number, endToEnd: number, ttfb: number, heap: number }> = []
    const raw: Array<{ mibps: number }> = []
    let stalled = 0
    for (let run = 0; run < RUNS + stalled && stalled < RUNS; run++) {
      const o = await oursOnce(SIZE, `files-tp-${run}`, 500).catch((err) => { console.log(`run ${run} stalled or failed: ${String(err).slice(0, 200)}`); return undefined })
      if (o === undefined) {
        stalled++
        continue
      }
      ours.push({ mibps: mibps(SIZE, (o.r.doneAt as number) - o.r.offeredAt), endToEnd: mibps(SIZE, (o.r.doneAt as number) - o.s.calledAt), ttfb: (o.r.firstByteAt as number) - o.s.calledAt, heap: o.heap.max })
      expect(o.s.sentBytes).toBe(SIZE)
      const w = await rawOnce(SIZE, `files-tp-${run}`)
      raw.push({ mibps: mibps(SIZE, w.ms) })
      const last = ours.length - 1
      console.log(`run ${run}: ours ${ours[last].mibps} MiB/s (end to end ${ours[last].endToEnd}), raw ${raw[last].mibps} MiB/s, ratio ${(ours[last].mibps / raw[last].mibps).toFixed(2)}, receiver heap ≤ ${(o.heap.max / MiB).toFixed(1)} MiB`)
    }
    const o = median(ours.map((x) => x.mibps))
    const w = median(raw.map((x) => x.mibps))
    const ratios = ours.map((x, i) => x.mibps / raw[i].mibps)
    const ratio = median(ratios)
    results.throughput = { ours, raw, oursMedianMiBps: o, rawMedianMiBps: w, ratios, ratio, stalled }
    rows.push([`${SIZE / MiB} MiB, 2 tabs: throughput (median of ${ours.length}${stalled > 0 ? `, ${stalled} more stalled` : ''}; ratio: median of the run-by-run ratios ${ratios.map((r) => r.toFixed(2)).join(', ')})`, `${o} MiB/s`, `${w} MiB/s`, ratio.toFixed(2)])
    rows.push([`${SIZE / MiB} MiB: end to end, sendFile (hashing first) → verified file`, `${median(ours.map((x) => x.endToEnd))} MiB/s`, '—', '—'])
    rows.push([`${SIZE / MiB} MiB: time to first byte (sendFile → first verified chunk; hashes the file first)`, `${round(median(ours.map((x) => x.ttfb)))} ms`, '—', '—'])
    rows.push([`${SIZE / MiB} MiB: receiver's JS heap, max`, `${(Math.max(...ours.map((x) => x.heap)) / MiB).toFixed(1)} MiB`, '—', '—'])
  // room for every run, a stalled one's timeout and its replacement (the project's 600 s was not)
  }, 2 * RUNS * (RUN_TIMEOUT + 300_000))

  it('time to the first byte of a 1 MiB file', async () => {
    const { a, b, idB } = await roomPair('files-ttfb')
    await a.evaluate(async () => { await (window as any).fbench.make('small', 1024 * 1024, 'small') })
    const ttfb: number[] = []
    for (let i = 0; i < 5; i++) {
      // a new blob each time: a blob's manifest is computed once and kept
      await a.evaluate(async ([k, s]) => { await (window as any).fbench.make(k, 1024 * 1024, s) }, [`small${i}`, `small${i}`] as const)
      const id = await a.evaluate(([p, k]) => (window as any).fbench.send(p, k) as string, [idB, `small${i}`] as const)
      const r = await received(b, id)
      const s = await sent(a, id)
      ttfb.push((r.firstByteAt as number) - s.calledAt)
    }
    await closeAll([a, b])
    const { firstByteMs } = await rawOnce(1024 * 1024, 'small')
    results.ttfb1MiB = { ours: ttfb, raw: firstByteMs }
    rows.push(['1 MiB: time to first byte (median of 5)', `${round(median(ttfb))} ms`, `${round(firstByteMs)} ms`, '—'])
  })

  it(`resumes ${RESUME_SIZE / MiB} MiB after a drop and after a reload`, async () => {
    const base = await oursOnce(RESUME_SIZE, 'files-base')
    const baseMs = (base.r.doneAt as number) - base.r.offeredAt

    // the network drops at both ends at 50 %
    {
      const { a, b, idA, idB } = await roomPair('files-drop')
      await a.evaluate(async ([n]) => { await (window as any).fbench.make('f', n, 'drop') }, [RESUME_SIZE] as const)
      const id = await a.evaluate((p) => (window as any).fbench.send(p, 'f') as string, idB)
      await a.evaluate((i) => { (window as any).fbench.dropAt(i, 0.5) }, id)
      await a.waitForFunction((i) => (window as any).fbench.rec.sent[i].dropAt !== undefined, id, { timeout: 120_000, polling: 10 })
      await b.evaluate((p) => { (window as any).fbench.drop(p) }, idA)
      const r = await received(b, id)
      const s = await sent(a, id)
      const ms = (r.doneAt as number) - r.offeredAt
      const resent = s.sentBytes - RESUME_SIZE
      results.resumeDrop = { ms, baseMs, resentBytes: resent, sentAtDrop: s.sentAtDrop, stallMs: r.maxGapMs }
      rows.push([`${RESUME_SIZE / MiB} MiB, network drop at 50 %: longest stall (drop → healed → bytes again)`, `${round(r.maxGapMs)} ms`, '—', '—'])
      rows.push([`${RESUME_SIZE / MiB} MiB, network drop at 50 %: time lost beside an uninterrupted transfer (${round(baseMs)} ms)`, `${round(ms - baseMs)} ms`, '—', '—'])
      rows.push([`${RESUME_SIZE / MiB} MiB, network drop at 50 %: bytes sent again (in flight when it dropped, so never arrived)`, `${(resent / MiB).toFixed(2)} MiB`, '—', '—'])
      await closeAll([a, b])
    }

    // the receiving tab reloads at 50 %: it rejoins with the same peer ID and resumes from OPFS
    {
      const { a, b, idB } = await roomPair('files-reload', '&reloadAt=0.5')
      await a.evaluate(async ([n]) => { await (window as any).fbench.make('f', n, 'reload') }, [RESUME_SIZE] as const)
      const id = await a.evaluate((p) => (window as any).fbench.send(p, 'f') as string, idB)
      await b.waitForEvent('load', { timeout: 120_000 })
      await b.waitForFunction(() => (window as any).fbench?.reloaded() !== null, undefined, { timeout: 60_000 })
      const reloaded = await b.evaluate(() => (window as any).fbench.reloaded() as { at: number, bytes: number })
      const r = await received(b, id)
      const s = await sent(a, id)
      const resent = s.sentBytes - RESUME_SIZE
      const ms = (r.doneAt as number) - s.calledAt - ((base.r.offeredAt - base.s.calledAt))
      results.resumeReload = { reloadedAtBytes: reloaded.bytes, keptBytes: r.keptBytes, reloadToFirstByteMs: (r.resumedAt as number) - reloaded.at, resentBytes: resent, ms, baseMs }
      rows.push([`${RESUME_SIZE / MiB} MiB, receiver reloads at 50 %: reload → rejoined → first new byte`, `${round((r.resumedAt as number) - reloaded.at)} ms`, '—', '—'])
      rows.push([`${RESUME_SIZE / MiB} MiB, receiver reloads at 50 %: kept across the reload / bytes sent again`, `${(r.keptBytes / MiB).toFixed(2)} / ${(resent / MiB).toFixed(2)} MiB`, '—', '—'])
      await closeAll([a, b])
    }
  })

  it(`receives ${BIG / MiB} MiB with the receiver's JS heap watched`, async () => {
    const o = await oursOnce(BIG, 'files-big', 1_000)
    const rate = mibps(BIG, (o.r.doneAt as number) - o.r.offeredAt)
    results.big = { bytes: BIG, heapMaxBytes: o.heap.max, samples: o.heap.samples, mibps: rate }
    rows.push([`${BIG / MiB} MiB: receiver's JS heap, max over ${o.heap.samples} samples (goal < 100 MiB)`, `${(o.heap.max / MiB).toFixed(1)} MiB`, '—', '—'])
    rows.push([`${BIG / MiB} MiB: throughput`, `${rate} MiB/s`, '—', '—'])
    expect(o.s.sentBytes).toBe(BIG)
  })
})
