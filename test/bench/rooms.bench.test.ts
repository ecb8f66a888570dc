/**
 * `npm run bench`: latency of the main path in real Chromium tabs through a real relay process.
 * Reports medians (and p90) and writes bench-results/rooms.json. It asserts only that it measured:
 * speed targets are read from its output, never enforced by timed tests.
 *
 * - reservation: `createRoomNode` until the first relay reservation is held, per tab
 * - first direct message: a tab's `joinRoom` resolving until the first message from the peer
 *   that was already in the room (that peer publishes the moment `peer:join` fires)
 * - round trip: a ping published into the room until a given peer's pong comes back
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchChromium, openTab, waitJoined, waitMessages } from '../browser/tabs.js'
import type { Tab } from '../browser/tabs.js'
import type { Browser } from 'playwright-core'

const relayAddr = inject('relayAddr')
const fixtureUrl = inject('fixtureUrl')
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8)
const PINGS = Number(process.env.BENCH_PINGS ?? 40)

const results: Record<string, { samples: number, median: number, p90: number, unit: 'ms' }> = {}
function record (name: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  results[name] = { samples: sorted.length, median: round(at(0.5)), p90: round(at(0.9)), unit: 'ms' }
}
const round = (n: number): number => Math.round(n * 10) / 10

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  await browser?.close()
  console.table(results)
  mkdirSync('bench-results', { recursive: true })
  writeFileSync('bench-results/rooms.json', JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, pings: PINGS, results }, null, 2))
})

async function closeAll (tabs: Tab[]): Promise<void> {
  await Promise.all(tabs.map(async (t) => { await t.page.context().close() }))
}

async function pingRounds (tabs: Tab[], label: string): Promise<number[]> {
  const [origin, ...others] = tabs
  const ids = others.map((t) => t.peerId)
  const samples: number[] = []
  for (let k = 0; k < PINGS; k++) {
    samples.push(...await origin.page.evaluate(async ([p, id]) => window.harness.rtt(p, id), [ids, `${label}-${k}`] as const))
  }
  return samples
}

describe('bench: rooms in Chromium', () => {
  it('measures reservation time and time from join to the first direct message between 2 tabs', async () => {
    const reservation: number[] = []
    const firstMessage: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const room = `bench-first-${Date.now()}-${r}`
      const host = await openTab(browser, fixtureUrl, relayAddr, room, { helloOnJoin: true })
      const guest = await openTab(browser, fixtureUrl, relayAddr, room)
      await waitMessages(guest, 'hello', 1)
      const first = (await guest.rec()).messages.find((m) => m.from === host.peerId)
      reservation.push(host.reservationMs, guest.reservationMs)
      firstMessage.push((first?.t ?? NaN) - guest.joinedAt)
      await closeAll([host, guest])
    }
    record('relay reservation', reservation)
    record('join → first direct message (2 tabs)', firstMessage)
    expect(firstMessage.every(Number.isFinite)).toBe(true)
  })

  it('measures message round trip between 2 tabs and among 6 tabs', async () => {
    for (const n of [2, 6]) {
      const room = `bench-rtt-${n}-${Date.now()}`
      const tabs = await Promise.all(Array.from({ length: n }, async () => openTab(browser, fixtureUrl, relayAddr, room)))
      await Promise.all(tabs.map(async (t) => { await waitJoined(t, tabs.filter((o) => o !== t).map((o) => o.peerId)) }))
      const samples = await pingRounds(tabs, `rtt${n}`)
      record(`round trip (${n} tabs)`, samples)
      expect(samples.length).toBe(PINGS * (n - 1))
      await closeAll(tabs)
    }
  })
})
