/**
 * `npm run bench`: how fast rooms meet and deliver, in real Chromium tabs through a real relay
 * process, side by side with PeerJS (a local PeerServer, the same Chromium, the same way of opening
 * tabs) measured in the same run. Machines here are noisy: the ratio is the result, an absolute
 * time is context. It asserts only that it measured; targets are read from its table.
 *
 * Both apps (test/bench/fixture) are built minified and opened the way users open tabs: every page
 * of a batch gets its own browser context, then all navigate at once. Times start at each page's
 * navigation (its `performance.timeOrigin`), so page load is part of every meeting time. The tabs
 * are driven over the DevTools Protocol directly, not through Playwright, whose instrumentation of
 * every request, WebSocket frame and console message slowed both systems by about a fifth
 * (cdp-tabs.ts); each page tells when it got somewhere, nothing polls it from outside.
 *
 * - meet 2: 2 tabs opened together; each tab's time to the first message of the other (each side
 *   sends a hello the moment the other is reachable: `peer:join`, or PeerJS's connection `open`)
 * - mesh 6 / mesh 10: tabs opened together; from the first navigation to the moment every tab
 *   reaches every other
 * - join 7th: a tab opened into a settled mesh of 6; from its navigation to reaching all 6
 * - one-way latency: 6 tabs, one sending 100 stamped messages at 50/s; at each of the other 5
 * - all send: 6 tabs each sending 10 messages/s for 10 s; latency, and every message once
 * - round trip: 2 tabs, sequential pings
 * - CPU per 2-tab meeting: what the two tabs' renderer processes, and all of Chromium with the
 *   system's own server (relay, or PeerServer), spent from the tabs' navigation until both
 *   heard from each other (cpu-threads.ts, Linux's per-thread counters). On a machine whose cores
 *   the meeting keeps busy, its time follows this work: the meeting ratio is mostly this ratio
 *
 * Both report the median of each meeting phase for 2 and 6 tabs, in ms from navigation: ours every
 * phase of `room.stats().peers[id].timeline`, PeerJS its app's (script start, OPEN, open, first).
 * Results: printed, and written to bench-results/meet.json and .md.
 * Knobs: BENCH_MEET_RUNS (9), BENCH_MESH_RUNS (5), BENCH_MESH10_RUNS (3) (0 skips the case), BENCH_PINGS (200),
 * BENCH_MEET_STALL_MS (30000: a 2-tab meeting not met by then is counted as stalled, and the run goes on),
 * BENCH_SYSTEMS (`ours,peerjs`), BENCH_SERVER_RTT_MS (0): each system's server as far from the tabs as
 * that round trip, through a proxy that delays every chunk half of it each way (delay-proxy.ts), as
 * a relay or PeerServer on another machine would be; the tabs' own WebRTC traffic is not delayed.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { cpuSnapshot, cpuSpent } from './cpu-threads.js'
import type { CpuSnapshot } from './cpu-threads.js'
import { writeResults } from './results.js'
import { launchCdpBrowser } from './cdp-tabs.js'
import { startDelayProxy } from './delay-proxy.js'
import type { DelayProxy } from './delay-proxy.js'
import type { CdpBrowser, CdpTab } from './cdp-tabs.js'
import type { BenchRecord } from './fixture/record.js'

const benchUrl = inject('benchUrl')
const SERVER_RTT_MS = Number(process.env.BENCH_SERVER_RTT_MS ?? 0)
/** The servers as the tabs reach them: directly, or through the delay proxies of `SERVER_RTT_MS`. */
let relayAddr = inject('relayAddr')
let peerServer = inject('peerServer')
const proxies: DelayProxy[] = []
/** Each system's own server process, whose CPU counts in its meetings. */
const serverPid: Record<SystemName, number> = { ours: inject('relayPid'), peerjs: inject('peerServerPid') }
const MEET_RUNS = Number(process.env.BENCH_MEET_RUNS ?? 9)
const MESH_RUNS = Number(process.env.BENCH_MESH_RUNS ?? 5)
const MESH10_RUNS = Number(process.env.BENCH_MESH10_RUNS ?? 3)
const PINGS = Number(process.env.BENCH_PINGS ?? 200)
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? 'ours,peerjs').split(',') as SystemName[]
const TIMEOUT = 180_000
/**
 * A 2-tab meeting not met within this is counted as stalled, left out of the figures, and the
 * bench goes on: PeerJS's data connection now and then opens on one side only (peers/peerjs#240,
 * #914), seen with its server at a distance (`BENCH_SERVER_RTT_MS`), and stopped whole runs.
 */
const STALL_MS = Number(process.env.BENCH_MEET_STALL_MS ?? 30_000)
/** 2-tab meetings that stalled, per system. */
const stalled: Record<SystemName, number> = { ours: 0, peerjs: 0 }

type SystemName = 'ours' | 'peerjs'

/** URLs of a batch: `n` tabs of one room (ours) or one full mesh (PeerJS, tab i dials tabs after it). */
function batchUrls (system: SystemName, batch: string, n: number, hello: boolean): string[] {
  return Array.from({ length: n }, (_, i) => tabUrl(system, batch, i, Array.from({ length: n - i - 1 }, (_, k) => i + k + 1), hello))
}

/** Tab `i` of `batch`; a PeerJS tab dials the tabs of index `dial` (ours finds them through the room). */
function tabUrl (system: SystemName, batch: string, i: number, dial: number[], hello: boolean): string {
  const h = hello ? '&hello=1' : ''
  if (system === 'ours') return `${benchUrl}rooms.html?relay=${encodeURIComponent(relayAddr)}&room=${batch}${h}`
  return `${benchUrl}peerjs.html?server=${peerServer}&id=${batch}-${i}&dial=${dial.map((k) => `${batch}-${k}`).join(',')}${h}`
}

/**
 * Opens every URL in its own browser context, then navigates all at once: tabs opened together.
 * `beforeNavigate` runs once the tabs exist, just before they navigate.
 */
async function openTogether (browser: CdpBrowser, urls: string[], beforeNavigate?: () => void): Promise<CdpTab[]> {
  const tabs = await Promise.all(urls.map(async () => browser.newTab()))
  beforeNavigate?.()
  await Promise.all(tabs.map(async (tab, i) => { await tab.goto(urls[i]) }))
  return tabs
}

async function closeAll (tabs: CdpTab[]): Promise<void> {
  await Promise.all(tabs.map(async (t) => { await t.close() }))
}

const rec = async (tab: CdpTab): Promise<BenchRecord> => tab.evaluate('window.bench.rec')

/**
 * Resolves once `condition` (a JavaScript expression over the page's record `r`) holds in the page;
 * throws with the page's error, or after TIMEOUT naming `what`. The page checks it itself, on its
 * record's own change notices (fixture/record.ts) and, with `pollMs`, on a timer: nothing polls
 * it over the DevTools Protocol, whose traffic would land on the cores the meeting needs.
 */
async function until (tab: CdpTab, condition: string, what: string, pollMs?: number, timeoutMs = TIMEOUT): Promise<void> {
  const outcome = await tab.evaluate<string>(`new Promise((resolve) => {
    let poll, timeout
    const end = (outcome) => { clearInterval(poll); clearTimeout(timeout); resolve(outcome) }
    const check = () => {
      const r = window.bench?.rec
      if (r?.error !== undefined) end('error: ' + r.error)
      else if (r !== undefined && (${condition})) end('ok')
    }
    const notified = window.benchProgress
    window.benchProgress = (p) => { notified?.(p); check() }
    if (${pollMs ?? 0} > 0) poll = setInterval(check, ${pollMs ?? 0})
    timeout = setTimeout(() => { end('timeout') }, ${timeoutMs})
    check()
  })`)
  if (outcome === 'timeout') throw new Error(`${what}: not within ${timeoutMs} ms`)
  if (outcome !== 'ok') throw new Error(outcome)
}

/** Waits until `tab` reached `count` peers (and, with `messages`, heard from them), for at most `timeoutMs`. */
async function waitReached (tab: CdpTab, count: number, messages = false, timeoutMs = TIMEOUT): Promise<void> {
  try {
    await until(tab, `Object.keys(r.${messages ? 'first' : 'joined'}).length >= ${count}`, `reaching ${count} peers`, undefined, timeoutMs)
  } catch (err: any) {
    // say where a stalled meeting stands: whom this tab reached, and its view of every other peer
    const where = await tab.evaluate<string>(`(() => {
      const r = window.bench?.rec
      const peers = Object.entries(window.bench?.stats?.()?.peers ?? {}).map(([id, p]) =>
        id.slice(-6) + ' ' + p.path + ' dials ' + p.dialAttempts + '/' + p.dialFailures + ' failed' + (p.lastError !== undefined ? ' (' + String(p.lastError).slice(0, 120) + ')' : '') + ' phases ' + Object.keys(p.timeline ?? {}).join(','))
      return 'peer ' + r?.peerId?.slice(-6) + ' reached ' + Object.keys(r?.joined ?? {}).length + '; ' + peers.join('; ')
    })()`).catch(() => 'page gone')
    throw new Error(`${err?.message ?? err}\n${where}`)
  }
}

/** Waits until `tab` received `count` stamped messages (from `from`, or anyone). */
async function waitData (tab: CdpTab, count: number, from?: string): Promise<void> {
  const sender = from === undefined ? 'undefined' : JSON.stringify(from)
  // stamped messages do not notify the driver: the page checks every 100 ms
  await until(tab, `r.data.filter((d) => ${sender} === undefined || d.from === ${sender}).length >= ${count}`, `receiving ${count} messages`, 100)
}

// --- results ------------------------------------------------------------------------------

interface Stat { n: number, p50: number, p90: number, p99: number }
const results: Record<string, Partial<Record<SystemName, Stat>>> = {}
const phases: Record<string, Partial<Record<SystemName, Record<string, Stat>>>> = {}
const samples: Record<string, Partial<Record<SystemName, number[]>>> = {}
/** The phase both apps have when they reach their server: ours a relay, PeerJS its PeerServer. */
const SERVER_CONNECTED = 'server connected (ours: createRoomNode, PeerJS: open)'

function stat (values: number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  return { n: sorted.length, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)) }
}
const round = (n: number): number => Math.round(n * 10) / 10

function record (measure: string, system: SystemName, values: number[]): void {
  expect(values.length).toBeGreaterThan(0)
  expect(values.every(Number.isFinite)).toBe(true)
  ;(samples[measure] ??= {})[system] = values
  ;(results[measure] ??= {})[system] = stat(values)
}

/**
 * Per meeting phase, when each peer reached it, in ms from this tab's navigation. PeerJS has only
 * the app's own phases: script start, the PeerServer's OPEN (`ready`), the data connection's
 * `open` (`joined`) and the first message.
 */
async function phaseTimes (tab: CdpTab): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {}
  const { r, stats } = await tab.evaluate<{ r: BenchRecord, stats: any }>('({ r: window.bench.rec, stats: window.bench.stats?.() })')
  const push = (k: string, v: number | undefined): void => { if (v !== undefined) (out[k] ??= []).push(v) }
  push('script start', r.scriptStart)
  push(SERVER_CONNECTED, r.ready)
  push('joinRoom', r.roomJoined)
  push('reserved', r.reserved)
  for (const peer of Object.values(stats?.peers ?? {}) as any[]) {
    for (const [phase, t] of Object.entries(peer.timeline ?? {})) push(phase, (r.roomJoined ?? 0) + (t as number))
  }
  if (stats === undefined) for (const t of Object.values(r.joined)) push('joined', t)
  for (const t of Object.values(r.first)) push('first message', t)
  return out
}

function recordPhases (label: string, system: SystemName, all: Array<Record<string, number[]>>): void {
  const merged: Record<string, number[]> = {}
  for (const one of all) for (const [k, v] of Object.entries(one)) (merged[k] ??= []).push(...v)
  ;(phases[label] ??= {})[system] = Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, stat(v)]))
}

function table (): string {
  const lines = ['| measure | ours | PeerJS | ratio (ours / PeerJS) |', '| --- | --: | --: | --: |']
  for (const [measure, by] of Object.entries(results)) {
    const latency = measure.includes('latency') || measure.includes('round trip')
    const fmt = (s?: Stat): string => s === undefined ? '—' : latency ? `p50 ${s.p50} · p99 ${s.p99} ms` : `${s.p50} ms`
    const ratio = by.ours !== undefined && by.peerjs !== undefined && by.peerjs.p50 > 0 ? (by.ours.p50 / by.peerjs.p50).toFixed(2) : '—'
    const n = Object.values(by).map((s) => s?.n).join('/')
    lines.push(`| ${measure} (n ${n}) | ${fmt(by.ours)} | ${fmt(by.peerjs)} | ${ratio} |`)
  }
  for (const [label, bySystem] of Object.entries(phases)) {
    lines.push('', `Meeting phases, ${label} (ms from navigation, over every tab and peer; PeerJS has only its app's phases):`, '',
      '| phase | ours p50 | ours p90 | PeerJS p50 | PeerJS p90 |', '| --- | --: | --: | --: | --: |')
    const order = ['script start', SERVER_CONNECTED, 'joinRoom', 'reserved', 'discovered', 'dialStarted', 'relayed', 'signaled', 'connected', 'streamReady', 'heard', 'joined', 'first message']
    const cell = (s?: Stat): string => s === undefined ? '— | —' : `${s.p50} | ${s.p90}`
    for (const k of order) {
      if (bySystem.ours?.[k] !== undefined || bySystem.peerjs?.[k] !== undefined) lines.push(`| ${k} | ${cell(bySystem.ours?.[k])} | ${cell(bySystem.peerjs?.[k])} |`)
    }
  }
  return lines.join('\n')
}

let browser: CdpBrowser
beforeAll(async () => {
  if (SERVER_RTT_MS > 0) {
    const relayPort = Number(/\/tcp\/(\d+)\//.exec(relayAddr)?.[1])
    const relay = await startDelayProxy({ host: '127.0.0.1', port: relayPort }, SERVER_RTT_MS / 2)
    const [host, port] = peerServer.split(':')
    const peerjs = await startDelayProxy({ host, port: Number(port) }, SERVER_RTT_MS / 2)
    proxies.push(relay, peerjs)
    relayAddr = relayAddr.replace(`/tcp/${relayPort}/`, `/tcp/${relay.port}/`)
    peerServer = `127.0.0.1:${peerjs.port}`
  }
  browser = await launchCdpBrowser()
})
afterAll(async () => {
  await browser?.close()
  await Promise.all(proxies.map(async (p) => { await p.close() }))
  const rtt = SERVER_RTT_MS > 0 ? `Each server ${SERVER_RTT_MS} ms round trip from the tabs (BENCH_SERVER_RTT_MS; tabs reached the relay over ${proxies[0].connections} connections, the PeerServer over ${proxies[1].connections}).\n\n` : ''
  const stalls = MEET_RUNS > 0 ? `\n\n2-tab meetings that stalled (not met within ${STALL_MS} ms, BENCH_MEET_STALL_MS; left out of the figures above): ${SYSTEMS.map((sys) => `${sys === 'ours' ? 'ours' : 'PeerJS'} ${stalled[sys]} of ${MEET_RUNS}`).join(', ')}.` : ''
  const md = rtt + table() + stalls
  console.log(`\n${md}\n`)
  writeResults('meet', { results, phases, samples, stalled }, md)
})

/**
 * Whether both `pages` heard from each other within STALL_MS; if not, counts the meeting as stalled
 * (with `count`), says where it stood, and closes the pages.
 */
async function metWithin (system: SystemName, pages: CdpTab[], count = true): Promise<boolean> {
  try {
    await Promise.all(pages.map(async (p) => { await waitReached(p, 1, true, STALL_MS) }))
    return true
  } catch (err: any) {
    if (count) stalled[system]++
    console.log(`${system}: a 2-tab meeting stalled${count ? '' : ' (an extra one, for the round trip)'}: ${err?.message ?? err}`)
    await closeAll(pages)
    return false
  }
}

describe('bench: meeting and delivery, beside PeerJS', () => {
  it.skipIf(MEET_RUNS === 0)('2 tabs opened together: navigation to the first message, and the round trip', async () => {
    for (const system of SYSTEMS) {
      const times: number[] = []
      const tabsCpu: number[] = []
      const allCpu: number[] = []
      const phaseRuns: Array<Record<string, number[]>> = []
      let last: CdpTab[] = []
      for (let r = 0; r < MEET_RUNS; r++) {
        const server = { server: serverPid[system] }
        let before: CpuSnapshot = new Map()
        const pages = await openTogether(browser, batchUrls(system, `meet${system}${Date.now()}`, 2, true), () => { before = cpuSnapshot(server) })
        if (!await metWithin(system, pages)) continue
        const cpu = cpuSpent(before, cpuSnapshot(server))
        if (cpu.renderer !== undefined) {
          tabsCpu.push(cpu.renderer)
          allCpu.push(Object.values(cpu).reduce((sum, ms) => sum + ms, 0))
        }
        for (const p of pages) times.push(...Object.values((await rec(p)).first))
        for (const p of pages) phaseRuns.push(await phaseTimes(p))
        if (r < MEET_RUNS - 1) await closeAll(pages)
        else last = pages
      }
      // the round trip needs a pair that met: one more meeting if the last one stalled
      for (let attempt = 0; last.length === 0 && attempt < 3; attempt++) {
        const pages = await openTogether(browser, batchUrls(system, `meet${system}${Date.now()}`, 2, true))
        if (await metWithin(system, pages, false)) last = pages
      }
      record('2 tabs opened together → first message', system, times)
      if (tabsCpu.length > 0) {
        record('2 tabs: CPU per meeting, both tabs\' renderers', system, tabsCpu)
        record('2 tabs: CPU per meeting, all of Chromium and the server', system, allCpu)
      }
      recordPhases('2 tabs', system, phaseRuns)
      const other = (await rec(last[1])).peerId ?? ''
      record('2 tabs: message round trip', system, await last[0].evaluate<number[]>(`window.bench.rtt(${JSON.stringify(other)}, ${PINGS})`))
      await closeAll(last)
    }
  })

  it.skipIf(MESH_RUNS === 0)('6 tabs opened together, latency among them, and a 7th tab joining', async () => {
    for (const system of SYSTEMS) {
      const meet: number[] = []
      const join7: number[] = []
      const oneWay: number[] = []
      const allSend: number[] = []
      const phaseRuns: Array<Record<string, number[]>> = []
      const phaseRuns7: Array<Record<string, number[]>> = []
      for (let r = 0; r < MESH_RUNS; r++) {
        const batch = `mesh${system}${Date.now()}`
        const pages = await openTogether(browser, batchUrls(system, batch, 6, false))
        await Promise.all(pages.map(async (p) => { await waitReached(p, 5) }))
        const recs = await Promise.all(pages.map(rec))
        meet.push(Math.max(...recs.map((x) => x.origin + Math.max(...Object.values(x.joined)))) - Math.min(...recs.map((x) => x.origin)))
        for (const p of pages) phaseRuns.push(await phaseTimes(p))

        if (r < 2) {
          // one sender at 50 msg/s
          const sender = recs[0].peerId ?? ''
          await pages[0].evaluate('window.bench.stream(50, 100)')
          await Promise.all(pages.slice(1).map(async (p) => { await waitData(p, 100, sender) }))
          for (const p of pages.slice(1)) oneWay.push(...(await rec(p)).data.filter((d) => d.from === sender).map((d) => d.latency))
          // every tab sending 10 msg/s for 10 s: every message arrives once
          await Promise.all(pages.map(async (p) => { await p.evaluate('window.bench.rec.data = [], 0') }))
          await Promise.all(pages.map(async (p) => p.evaluate('window.bench.stream(10, 100)')))
          await Promise.all(pages.map(async (p) => { await waitData(p, 500) }))
          for (const p of pages) {
            const got = (await rec(p)).data
            const keys = new Set(got.map((d) => `${d.from}|${d.seq}`))
            expect(keys.size).toBe(got.length)
            allSend.push(...got.map((d) => d.latency))
          }
        }

        // a 7th tab into the settled mesh; PeerJS's newcomer dials all six
        const [seventh] = await openTogether(browser, [tabUrl(system, batch, 6, [0, 1, 2, 3, 4, 5], false)])
        await waitReached(seventh, 6)
        join7.push(Math.max(...Object.values((await rec(seventh)).joined)))
        phaseRuns7.push(await phaseTimes(seventh))
        await closeAll([...pages, seventh])
      }
      record('6 tabs opened together → every pair reachable', system, meet)
      record('7th tab into a settled 6 → reaches all 6', system, join7)
      record('6 tabs, one sender at 50 msg/s: one-way latency', system, oneWay)
      record('6 tabs, each sending 10 msg/s for 10 s: latency', system, allSend)
      recordPhases('6 tabs', system, phaseRuns)
      recordPhases('the 7th tab', system, phaseRuns7)
    }
  })

  it.skipIf(MESH10_RUNS === 0)('10 tabs opened together', async () => {
    for (const system of SYSTEMS) {
      const meet: number[] = []
      for (let r = 0; r < MESH10_RUNS; r++) {
        const pages = await openTogether(browser, batchUrls(system, `mesh10${system}${Date.now()}`, 10, false))
        await Promise.all(pages.map(async (p) => { await waitReached(p, 9) }))
        const recs = await Promise.all(pages.map(rec))
        meet.push(Math.max(...recs.map((x) => x.origin + Math.max(...Object.values(x.joined)))) - Math.min(...recs.map((x) => x.origin)))
        await closeAll(pages)
      }
      record('10 tabs opened together → every pair reachable', system, meet)
    }
  })
})
