/**
 * Files between real Chromium tabs (Debian's chromium, playwright-core) that met through a real
 * relay process: sent over their direct WebRTC connection, verified, kept in OPFS. The cases that
 * drop connections, reload a tab or move 256 MiB are in files-resume.test.ts.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { FILE_CHUNK_BYTES } from '../../src/constants.js'
import { launchChromium, openTab, relayStatus, relayedBytes, waitJoined } from './tabs.js'
import type { DownloadRec, TransferRec } from './fixture/files.js'
import type { Tab } from './tabs.js'
import type { Browser } from 'playwright-core'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')
const fixtureUrl = inject('fixtureUrl')
const MiB = 1024 * 1024

let browser: Browser
/** a sends; b receives with the default limits; c accepts files of at most 1 MiB */
let a: Tab, b: Tab, c: Tab

beforeAll(async () => {
  browser = await launchChromium()
  const room = `files-${Date.now()}`
  ;[a, b, c] = await Promise.all([
    openTab(browser, fixtureUrl, relayAddr, room),
    openTab(browser, fixtureUrl, relayAddr, room),
    openTab(browser, fixtureUrl, relayAddr, room, { nodeInit: { maxFileBytes: MiB } })
  ])
  const all = [a, b, c]
  await Promise.all(all.map(async (t) => { await waitJoined(t, all.filter((o) => o !== t).map((o) => o.peerId)) }))
})
afterAll(async () => { await browser?.close() })

async function make (tab: Tab, key: string, size: number, seed?: string): Promise<string> {
  return tab.page.evaluate(async ([k, n, s]) => window.files.make(k, n, s), [key, size, seed] as const)
}

async function send (from: Tab, to: Tab, key: string): Promise<string> {
  const { id, error } = await from.page.evaluate(([p, k]) => window.files.send(p, k), [to.peerId, key] as const)
  if (id === undefined) throw new Error(`sendFile threw ${error}`)
  return id
}

async function waitIncoming (tab: Tab, id: string): Promise<void> {
  await tab.page.waitForFunction((i) => window.files.rec.incoming[i] !== undefined, id, { timeout: 60_000, polling: 50 })
}

async function incoming (tab: Tab, id: string): Promise<DownloadRec> {
  return tab.page.evaluate((i) => window.files.rec.incoming[i], id)
}

async function outgoing (tab: Tab, id: string): Promise<TransferRec> {
  return tab.page.evaluate((i) => window.files.rec.outgoing[i], id)
}

/** Waits until `tab`'s record of transfer or download `id` has a result. */
async function result (tab: Tab, kind: 'incoming' | 'outgoing' | 'offers', id: string, timeout = 120_000): Promise<NonNullable<DownloadRec['result'] | TransferRec['result']>> {
  const handle = await tab.page.waitForFunction(([k, i]) => window.files.rec[k][i]?.result, [kind, id] as const, { timeout, polling: 100 })
  return await handle.jsonValue() as NonNullable<DownloadRec['result'] | TransferRec['result']>
}

describe('files between Chromium tabs', () => {
  it('sends 32 MiB over the direct connection: same bytes and SHA-256, progress on both sides, no relay bytes', async () => {
    const size = 32 * MiB
    const expected = await make(a, 'big.bin', size)
    const before = relayedBytes(await relayStatus(relayHttp))
    const id = await send(a, b, 'big.bin')
    await waitIncoming(b, id)
    const offered = await incoming(b, id)
    expect(offered).toMatchObject({ from: a.peerId, name: 'big.bin', size, sha256: expected })
    await b.page.evaluate((i) => { window.files.accept(i) }, id)

    const got = await result(b, 'incoming', id)
    const sent = await result(a, 'outgoing', id)
    const after = relayedBytes(await relayStatus(relayHttp))
    const [inRec, outRec] = [await incoming(b, id), await outgoing(a, id)]
    console.log(`32 MiB: ${inRec.progressEvents} progress events at the receiver, ${outRec.progressEvents} at the sender; relay circuit bytes moved: ${after.circuit - before.circuit}`)

    expect(got).toEqual({ sha256: expected, size, name: 'big.bin', type: '' })
    expect(sent).toEqual({ sha256: expected })
    expect(inRec.progressEvents).toBeGreaterThanOrEqual(size / FILE_CHUNK_BYTES)
    expect(inRec.bytes).toBe(size)
    expect(outRec.progressEvents).toBeGreaterThanOrEqual(size / FILE_CHUNK_BYTES)
    expect(outRec.sentBytes).toBe(size)
    expect(inRec.steps.map((s) => s.state)).toEqual(['receiving', 'done'])
    // kept in OPFS, written in place by the store's worker, not in the page's memory
    expect(await b.page.evaluate(async () => window.files.storeKind())).toBe('opfs')
    // the relay carried none of it: its circuits moved no bytes at all
    expect(after.circuit - before.circuit).toBe(0)
  })

  it('detects a chunk corrupted at the sender, fetches it again, and delivers the verified file', async () => {
    const expected = await make(a, 'corrupt.bin', 16 * FILE_CHUNK_BYTES)
    const id = await send(a, b, 'corrupt.bin')
    await a.page.evaluate((i) => { window.files.corrupt(i, 5) }, id)
    await waitIncoming(b, id)
    await b.page.evaluate((i) => { window.files.accept(i) }, id)
    expect(await result(b, 'incoming', id)).toMatchObject({ sha256: expected })
    expect(await result(a, 'outgoing', id)).toEqual({ sha256: expected })
    expect((await incoming(b, id)).badChunks).toBe(1)
    // the bad chunk went out twice
    expect((await outgoing(a, id)).sentBytes).toBe(17 * FILE_CHUNK_BYTES)
  })

  it('cancels from the sender: the receiver stops with FileCancelledError', async () => {
    await make(a, 'cancel-a.bin', 16 * MiB)
    const id = await send(a, b, 'cancel-a.bin')
    await waitIncoming(b, id)
    await b.page.evaluate((i) => { window.files.accept(i) }, id)
    await b.page.waitForFunction((i) => window.files.rec.incoming[i].bytes > 0, id, { timeout: 60_000, polling: 50 })
    await a.page.evaluate((i) => { window.files.cancelSend(i) }, id)
    expect(await result(a, 'outgoing', id)).toMatchObject({ error: 'FileCancelledError', by: 'local' })
    expect(await result(b, 'incoming', id)).toMatchObject({ error: 'FileCancelledError', by: 'remote' })
    expect((await incoming(b, id)).bytes).toBeLessThan(16 * MiB)
    // nothing of it is kept: a cancelled file's entry is removed at once
    await expect.poll(async () => (await b.page.evaluate(async () => window.files.keptEntries())).filter((e) => e.files.includes('map')).length).toBe(0)
  })

  it('cancels from the receiver: the sender stops with FileCancelledError', async () => {
    await make(a, 'cancel-b.bin', 16 * MiB)
    const id = await send(a, b, 'cancel-b.bin')
    await waitIncoming(b, id)
    await b.page.evaluate((i) => { window.files.accept(i) }, id)
    await b.page.waitForFunction((i) => window.files.rec.incoming[i].bytes > 0, id, { timeout: 60_000, polling: 50 })
    await b.page.evaluate((i) => { window.files.cancelDownload(i) }, id)
    expect(await result(b, 'incoming', id)).toMatchObject({ error: 'FileCancelledError', by: 'local' })
    expect(await result(a, 'outgoing', id)).toMatchObject({ error: 'FileCancelledError', by: 'remote' })
  })

  it('rejects an offer: nothing is received and the sender gets FileRejectedError', async () => {
    await make(a, 'unwanted.bin', 4 * MiB)
    const id = await send(a, b, 'unwanted.bin')
    await waitIncoming(b, id)
    await b.page.evaluate((i) => { window.files.reject(i) }, id)
    expect(await result(a, 'outgoing', id)).toMatchObject({ error: 'FileRejectedError' })
    const out = await outgoing(a, id)
    expect(out.sentBytes).toBe(0)
    expect(out.steps.at(-1)?.state).toBe('rejected')
  })

  it('refuses a file over the receiver\'s maxFileBytes with FileTooLargeError, before any event there', async () => {
    await make(a, 'too-big.bin', 2 * MiB)
    const id = await send(a, c, 'too-big.bin')
    expect(await result(a, 'outgoing', id)).toEqual({ error: 'FileTooLargeError', limit: MiB })
    expect(await c.page.evaluate(() => Object.keys(window.files.rec.incoming).length)).toBe(0)
    expect((await outgoing(a, id)).sentBytes).toBe(0)
  })

  // last: it closes c
  it('fetches a shared file from two holders at once, and finishes from one when the other leaves', async () => {
    const size = 24 * MiB
    const [expected, atC] = await Promise.all([make(a, 'shared.bin', size, 'shared'), make(c, 'shared.bin', size, 'shared')])
    expect(atC).toBe(expected)
    const id = await a.page.evaluate(async () => window.files.share('shared.bin'))
    expect(await c.page.evaluate(async () => window.files.share('shared.bin'))).toBe(id)
    expect(id).toBe(expected)
    await b.page.waitForFunction(([i, holders]) => holders.every((h) => window.files.holders(i).includes(h)), [id, [a.peerId, c.peerId]] as const, { timeout: 30_000, polling: 50 })
    await b.page.evaluate((i) => { window.files.fetch(i) }, id)

    // both holders serve chunks; then c leaves midway
    await b.page.waitForFunction(([i, pa, pc, n]) => {
      const o = window.files.rec.offers[i]
      return (o.bySource[pa] ?? 0) > 0 && (o.bySource[pc] ?? 0) > 0 && o.bytes >= n
    }, [id, a.peerId, c.peerId, 0.3 * size] as const, { timeout: 60_000, polling: 20 })
    const atLeave = await b.page.evaluate((i) => window.files.rec.offers[i].bytes, id)
    await c.page.close()

    expect(await result(b, 'offers', id)).toMatchObject({ sha256: expected, size })
    const offer = await b.page.evaluate((i) => window.files.rec.offers[i], id)
    console.log(`shared 24 MiB: ${offer.bySource[a.peerId]} bytes from a, ${offer.bySource[c.peerId]} from c, which left at ${atLeave} bytes`)
    expect(atLeave).toBeLessThan(size)
    expect(offer.bySource[a.peerId] + offer.bySource[c.peerId]).toBe(size)
    expect(offer.bySource[c.peerId]).toBeLessThan(size)
    expect(await b.page.evaluate((i) => window.files.holders(i), id)).toEqual([a.peerId])
  })
})
