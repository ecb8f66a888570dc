/**
 * Files that survive trouble, and large files without memory, in real Chromium tabs through a
 * real relay: the direct connection dropped mid-transfer, the receiving tab reloaded mid-transfer,
 * and 256 MiB received with the page's JS heap measured through the Chrome DevTools Protocol.
 * Each case is as small as proves its point; the 1 GiB case is in `npm run bench`.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { FILE_CHUNK_BYTES } from '../../src/constants.js'
import { launchChromium, openTab, startTab, waitJoined } from './tabs.js'
import type { DownloadRec, TransferRec } from './fixture/files.js'
import type { Tab } from './tabs.js'
import type { Browser } from 'playwright-core'

const relayAddr = inject('relayAddr')
const fixtureUrl = inject('fixtureUrl')
const MiB = 1024 * 1024

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => { await browser?.close() })

async function pair (label: string, receiver: Parameters<typeof openTab>[4] = {}): Promise<{ a: Tab, b: Tab, room: string }> {
  const room = `${label}-${Date.now()}`
  const [a, b] = await Promise.all([openTab(browser, fixtureUrl, relayAddr, room), openTab(browser, fixtureUrl, relayAddr, room, receiver)])
  await Promise.all([waitJoined(a, [b.peerId]), waitJoined(b, [a.peerId])])
  return { a, b, room }
}

async function close (...tabs: Tab[]): Promise<void> {
  await Promise.all(tabs.map(async (t) => { await t.page.context().close() }))
}

async function send (from: Tab, to: Tab, key: string): Promise<string> {
  const { id, error } = await from.page.evaluate(([p, k]) => window.files.send(p, k), [to.peerId, key] as const)
  if (id === undefined) throw new Error(`sendFile threw ${error}`)
  return id
}

async function incomingResult (tab: Tab, id: string, timeout = 180_000): Promise<DownloadRec> {
  await tab.page.waitForFunction((i) => window.files.rec.incoming[i]?.result !== undefined, id, { timeout, polling: 100 })
  return tab.page.evaluate((i) => window.files.rec.incoming[i], id)
}

async function outgoingResult (tab: Tab, id: string, timeout = 180_000): Promise<TransferRec> {
  await tab.page.waitForFunction((i) => window.files.rec.outgoing[i]?.result !== undefined, id, { timeout, polling: 100 })
  return tab.page.evaluate((i) => window.files.rec.outgoing[i], id)
}

describe('files that resume, and large files, in Chromium', () => {
  it('finishes after the direct connection drops at 40 %, sending at most one chunk beyond what was missing', async () => {
    const { a, b } = await pair('files-drop')
    const size = 16 * MiB
    const expected = await a.page.evaluate(async (n) => window.files.make('drop.bin', n), size)
    const id = await send(a, b, 'drop.bin')
    await a.page.evaluate((i) => { window.files.abortAt(i, 0.4) }, id)
    await b.page.waitForFunction((i) => window.files.rec.incoming[i] !== undefined, id, { timeout: 60_000, polling: 50 })
    await b.page.evaluate((i) => { window.files.accept(i) }, id)
    // the network drops at both ends: the sender's side at 40 % (in the page, at that instant),
    // the receiver's as soon as we see it (a WebRTC peer that closes alone leaves the other side's
    // connection looking open until ICE consent fails, tens of seconds later)
    await a.page.waitForFunction((i) => window.files.rec.outgoing[i].sentAtAbort !== undefined, id, { timeout: 60_000, polling: 10 })
    await b.page.evaluate((p) => window.files.abortDirect(p), a.peerId)

    const got = await incomingResult(b, id)
    const sent = await outgoingResult(a, id)
    expect(got.result).toMatchObject({ sha256: expected, size })
    expect(sent.result).toEqual({ sha256: expected })
    // the receiver waited for the heal, then asked for the rest: receiving, resuming, receiving, done
    const states = got.steps.map((s) => s.state)
    const resumed = got.steps.findIndex((s, i) => s.state === 'receiving' && got.steps[i - 1]?.state === 'resuming')
    expect(resumed, states.join(' → ')).toBeGreaterThan(0)
    const verifiedBeforeResume = got.steps[resumed].bytes
    const missing = size - verifiedBeforeResume
    const sentAfterDrop = sent.sentBytes - (sent.sentAtAbort as number)
    const healMs = got.steps[resumed].t - got.steps[resumed - 1].t
    console.log(`drop at ${sent.sentAtAbort} bytes sent (${verifiedBeforeResume} verified); healed and resumed after ${Math.round(healMs)} ms; sent after the drop ${sentAfterDrop} bytes for ${missing} missing`)
    expect(sent.sentAtAbort).toBeGreaterThanOrEqual(0.4 * size)
    expect(sentAfterDrop).toBeLessThanOrEqual(missing + FILE_CHUNK_BYTES)
    await close(a, b)
  })

  it('resumes from the chunks it kept after the receiving tab reloads at 40 %', async () => {
    const { a, b, room } = await pair('files-reload', { files: { autoAccept: true, reloadAt: { fraction: 0.4 } } })
    const size = 16 * MiB
    const expected = await a.page.evaluate(async (n) => window.files.make('reload.bin', n), size)
    const id = await send(a, b, 'reload.bin')

    // the tab reloads itself at 40 %; the new page rejoins with the same peer ID
    await b.page.waitForEvent('load', { timeout: 60_000 })
    const b2 = await startTab(b.page, relayAddr, room, { files: { autoAccept: true } })
    expect(b2.peerId).toBe(b.peerId)
    const reloadedAt = await b2.page.evaluate(() => window.files.reloadedAt())

    const got = await incomingResult(b2, id)
    const sent = await outgoingResult(a, id)
    expect(got.result).toMatchObject({ sha256: expected, size })
    expect(sent.result).toEqual({ sha256: expected })
    // every chunk verified before the reload was kept, and none of them was sent again
    const leftAt = [...sent.steps].reverse().find((s) => s.state === 'resuming')
    const sentAfterRejoin = sent.sentBytes - (leftAt?.sentBytes as number)
    console.log(`reloaded at ${reloadedAt} bytes; ${got.keptBytes} bytes kept across the reload; ${sentAfterRejoin} bytes sent after it for ${size - got.keptBytes} missing`)
    expect(reloadedAt).toBeGreaterThanOrEqual(0.4 * size)
    expect(got.keptBytes).toBeGreaterThanOrEqual(reloadedAt)
    expect(sentAfterRejoin).toBeLessThanOrEqual(size - got.keptBytes + FILE_CHUNK_BYTES)
    // delivered: the entry's resume map is gone, its data stays while this page reads it
    expect((await b2.page.evaluate(async () => window.files.keptEntries())).filter((e) => e.files.includes('map'))).toEqual([])
    await close(a, b2)
  })

  it('removes kept chunks past keptFileTtl, and a delivered file once its page is gone', async () => {
    const { a, b, room } = await pair('files-ttl', { files: { autoAccept: true, reloadAt: { fraction: 0.4, name: 'partial.bin' } } })
    await a.page.evaluate(async () => Promise.all([window.files.make('whole.bin', 1024 * 1024), window.files.make('partial.bin', 8 * 1024 * 1024)]))
    const whole = await send(a, b, 'whole.bin')
    expect((await incomingResult(b, whole)).result?.size).toBe(1024 * 1024)
    const partial = await send(a, b, 'partial.bin')
    // b reloads at 40 % of it and comes back not accepting anything, with a TTL of 1 ms
    await b.page.waitForEvent('load', { timeout: 60_000 })
    const b2 = await startTab(b.page, relayAddr, room, { nodeInit: { keptFileTtl: 1 } })
    const entries = await b2.page.evaluate(async () => window.files.keptEntries())
    // the delivered file (no resume map) and the unfinished one (with its map) are both there
    expect(entries.map((e) => e.files.join(','))).toEqual(expect.arrayContaining(['data', 'data,map']))
    await b2.page.waitForFunction((i) => window.files.rec.incoming[i] !== undefined, partial, { timeout: 60_000, polling: 100 })
    // the node's first sweep, a few seconds after it started, removes both: nobody holds them
    await b2.page.waitForFunction(async () => (await window.files.keptEntries()).length === 0, undefined, { timeout: 30_000, polling: 500 })
    await close(a, b2)
  })

  it('receives 256 MiB with the receiving page\'s JS heap under 64 MiB', async () => {
    const { a, b } = await pair('files-heap')
    const size = 256 * MiB
    const expected = await a.page.evaluate(async (n) => window.files.make('heap.bin', n), size)
    const cdp = await b.page.context().newCDPSession(b.page)
    const heap = async (): Promise<{ usedSize: number, backingStorageSize?: number }> => cdp.send('Runtime.getHeapUsage') as any
    const baseline = await heap()

    const id = await send(a, b, 'heap.bin')
    await b.page.waitForFunction((i) => window.files.rec.incoming[i] !== undefined, id, { timeout: 60_000, polling: 50 })
    await b.page.evaluate((i) => { window.files.accept(i) }, id)
    let maxUsed = 0
    let maxBacking = 0
    let samples = 0
    let done = false
    const result = incomingResult(b, id, 300_000).finally(() => { done = true })
    // sampled until every byte arrived; the page then hashes the delivered file, slice by slice
    while (!done && (await b.page.evaluate((i) => window.files.rec.incoming[i].bytes, id)) < size) {
      const h = await heap()
      maxUsed = Math.max(maxUsed, h.usedSize)
      maxBacking = Math.max(maxBacking, h.backingStorageSize ?? 0)
      samples++
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    const got = await result
    console.log(`256 MiB: receiver JS heap at most ${(maxUsed / MiB).toFixed(1)} MiB over ${samples} samples (baseline ${(baseline.usedSize / MiB).toFixed(1)} MiB; ArrayBuffer backing stores at most ${(maxBacking / MiB).toFixed(1)} MiB)`)
    expect(got.result).toMatchObject({ sha256: expected, size })
    expect(samples).toBeGreaterThan(4)
    expect(maxUsed).toBeLessThan(64 * MiB)
    await close(a, b)
  })
})
