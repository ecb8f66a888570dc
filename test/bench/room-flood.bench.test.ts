/**
 * `npm run bench` (or `npx vitest run --project bench test/bench/room-flood.bench.test.ts`): what a
 * receiver keeps, in memory and in `gap` events, while one member floods it with data it
 * rate-limits or refuses. Each figure is printed beside its anchor from the same run: the heap
 * before the flood. Writes bench-results/room-flood.json. It asserts only that it measured.
 *
 * - Node: `RoomMessages` driven as room.ts drives it (refuse, rate-limit, order, flush every
 *   second), BENCH_FLOOD messages (200,000 by default, the figure) at 1,000/s on a fake
 *   clock, 64-byte bodies; retained heap after a full GC; then the cost of the next honest message.
 * - Chromium: a real flooder tab sending BENCH_FLOOD_TABS messages (50,000) straight to the
 *   receiver's room stream past its own checks; the receiver tab's JS heap after a GC (CDP), and
 *   its counters.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { RoomMessages } from '../../src/room-messages.js'
import { KIND_DATA } from '../../src/wire.js'
import { launchChromium, openTab, waitJoined } from '../browser/tabs.js'
import type { Delivery, OpenOptions } from '../../src/room-messages.js'
import type { Tab } from '../browser/tabs.js'
import type { Browser } from 'playwright-core'

const relayAddr = inject('relayAddr')
const fixtureUrl = inject('fixtureUrl')
const FLOOD = Number(process.env.BENCH_FLOOD ?? 200_000)
const FLOOD_TABS = Number(process.env.BENCH_FLOOD_TABS ?? 50_000)

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapMiB = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed / 1048576
}
const results: Record<string, Record<string, number | string>> = {}
const round = (n: number): number => Math.round(n * 100) / 100

afterAll(() => {
  console.table(results)
  mkdirSync('bench-results', { recursive: true })
  writeFileSync('bench-results/room-flood.json', JSON.stringify({ date: new Date().toISOString(), flood: FLOOD, floodTabs: FLOOD_TABS, results }, null, 2))
})

describe('bench: a receiver under a flood (Node)', () => {
  const scenarios: Array<[string, OpenOptions]> = [
    ['one-way room, non-host flood', { rateKey: 'flooder', pair: false, refuseData: 'notHost' }],
    ['pairwise room, flood', { rateKey: 'flooder', pair: true }],
    ['broadcast room, flood', { rateKey: 'flooder', pair: false }]
  ]
  for (const [label, opts] of scenarios) {
    it(`measures ${label}`, async () => {
      const clock = { t: 0 }
      const receiver = new RoomMessages({ topic: 't', maxMessageBytes: 65536, messagesPerSecond: 50, burst: 100, historySize: 100, historyRequestsPerMinute: 10, now: () => clock.t })
      const sender = new RoomMessages({ topic: 't', maxMessageBytes: 65536, messagesPerSecond: 1e9, burst: 1e9, historySize: 0, historyRequestsPerMinute: 10, incarnation: 1, now: () => clock.t })
      let delivered = 0
      let gapEvents = 0
      const take = (r: { deliver: unknown[], gaps: unknown[] }): void => { delivered += r.deliver.length; gapEvents += r.gaps.length }
      const order = (o: Exclude<Awaited<ReturnType<RoomMessages['open']>>, string>, from: string, pair: boolean): void => {
        const d: Delivery = { from, seq: o.seq, data: o.body, history: false, raw: o.raw, incarnation: o.incarnation }
        take(receiver.order(d, pair))
      }
      const before = heapMiB()
      for (let i = 1; i <= FLOOD; i++) {
        clock.t += 1
        const raw = await sender.encode('flooder', { kind: KIND_DATA, seq: i, rank: 1, settled: true }, new Uint8Array(64))
        const opened = await receiver.open('flooder', raw, opts)
        if (typeof opened !== 'string') order(opened, 'flooder', opts.pair)
        if (i % 1000 === 0) take(receiver.flush())
      }
      const after = heapMiB()
      clock.t += 1
      const started = performance.now()
      const honest = await sender.encode('honest', { kind: KIND_DATA, seq: 1, rank: 1, settled: true }, new Uint8Array(64))
      const opened = await receiver.open('honest', honest, { rateKey: 'honest', pair: opts.pair })
      if (typeof opened !== 'string') order(opened, 'honest', opts.pair)
      const honestMs = performance.now() - started
      clock.t += 2_000
      take(receiver.flush())
      results[`Node: ${label}`] = { messages: FLOOD, heapBeforeMiB: round(before), retainedMiB: round(after - before), delivered, gapEvents, nextHonestMessageMs: round(honestMs), ...receiver.retained }
      expect(delivered).toBeGreaterThan(0)
    }, 300_000)
  }
})

describe('bench: a receiver under a flood (Chromium)', () => {
  let browser: Browser
  beforeAll(async () => { browser = await launchChromium() })
  afterAll(async () => { await browser?.close() })

  for (const type of ['one-way', 'pairwise', 'broadcast'] as const) {
    it(`measures a ${type} room flooded on its room stream`, async () => {
      const room = `bench-flood-${type}-${Date.now()}`
      const roomInit = { type }
      const receiver = await openTab(browser, fixtureUrl, relayAddr, room, { roomInit })
      const flooder = await openTab(browser, fixtureUrl, relayAddr, room, { roomInit })
      const tabs: Tab[] = [receiver, flooder]
      try {
        await Promise.all([waitJoined(receiver, [flooder.peerId]), waitJoined(flooder, [receiver.peerId])])
        // in a one-way room the flooder is not the host (the receiver hands it the role if need be)
        if (type === 'one-way' && await flooder.page.evaluate(() => window.harness.host()) === flooder.peerId) {
          await flooder.page.evaluate(async (p) => window.harness.handOffHost(p), receiver.peerId)
          await receiver.page.waitForFunction((p) => window.harness.host() === p, receiver.peerId)
        }
        const cdp = await receiver.page.context().newCDPSession(receiver.page)
        const heap = async (): Promise<number> => {
          await cdp.send('HeapProfiler.collectGarbage')
          return (await cdp.send('Runtime.getHeapUsage')).usedSize / 1048576
        }
        const before = await heap()
        const { published, ms } = await flooder.page.evaluate(async (n) => window.harness.flood(n, 'flood'), FLOOD_TABS)
        // the flood is over once the receiver has accounted for it (delivered or dropped), or its
        // count stops growing
        let last = -1
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, 2_000))
          const s = await receiver.page.evaluate(() => window.harness.stats())
          const counted = (s?.messages.received ?? 0) + Object.values(s?.messages.dropped ?? {}).reduce((a, b) => a + b, 0)
          if (counted >= published || counted === last) break
          last = counted
        }
        const after = await heap()
        const stats = await receiver.page.evaluate(() => window.harness.stats())
        const rec = await receiver.rec()
        results[`Chromium: ${type}`] = {
          messages: published,
          floodMs: Math.round(ms),
          heapBeforeMiB: round(before),
          retainedMiB: round(after - before),
          delivered: stats?.messages.received ?? 0,
          dropped: JSON.stringify(Object.fromEntries(Object.entries(stats?.messages.dropped ?? {}).filter(([, v]) => v > 0))),
          gapEvents: rec.gaps.length
        }
        expect(published).toBeGreaterThan(0)
      } finally {
        await Promise.all(tabs.map(async (t) => { await t.page.context().close() }))
      }
    }, 600_000)
  }
})
