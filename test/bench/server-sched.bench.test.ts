/**
 * What each system's server spends on a 2-tab meeting, from the kernel's own counters:
 * `BENCH_SERVER_SCHED=<pairs> npx vitest run --project bench test/bench/server-sched.bench.test.ts`
 * opens that many pairs of meetings, ours then PeerJS's, and reads the scheduler statistics of
 * every thread of the server process (`/proc/<pid>/task/<tid>/schedstat`, Linux: time on a CPU,
 * time waiting on a run queue, timeslices) before the tabs navigate and once both heard from each
 * other. Ours is the relay process; PeerJS's is the PeerServer's own process
 * (test/setup/peer-server.mjs; until 3 December it ran inside the test runner, so its figures
 * then were upper bounds). Skipped unless set: it measures nothing `npm run bench` compares.
 *
 * This is how the relay's share was found (3 December 2026, test/bench/HISTORY.md): 156–185 ms of
 * CPU per meeting and 1.3–1.8 s of run-queue waits over its threads, against the PeerServer's
 * 19–47 ms and 10–345 ms (then inside the test runner); in its own process, 5–20 ms of CPU in 8–52
 * timeslices against the relay's 161–246 ms in 458–695. A CPU profile cannot show the waits: a process off the CPU charges its
 * whole wait to whatever it was running.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, inject, it } from 'vitest'
import { launchChromium } from '../browser/tabs.js'
import { followProgress } from './progress.js'

const relayAddr = inject('relayAddr')
const relayPid = inject('relayPid')
const benchUrl = inject('benchUrl')
const peerServer = inject('peerServer')
const peerServerPid = inject('peerServerPid')
const PAIRS = Number(process.env.BENCH_SERVER_SCHED ?? 0)

/** CPU time, run-queue wait (both ns) and timeslices of one thread. */
interface Sched { cpu: number, wait: number, slices: number }

/** Each thread's counters, by thread ID. */
function sched (pid: number): Map<string, Sched> {
  const threads = new Map<string, Sched>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [cpu, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number)
      threads.set(tid, { cpu, wait, slices })
    } catch {
      // the thread ended meanwhile
    }
  }
  return threads
}

/**
 * What the process's threads spent between two readings: a thread born since counts from zero, a
 * thread that ended since is left out (so a figure can only be low, never negative).
 */
function spent (before: Map<string, Sched>, after: Map<string, Sched>): Sched {
  const total: Sched = { cpu: 0, wait: 0, slices: 0 }
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpu: 0, wait: 0, slices: 0 }
    total.cpu += a.cpu - b.cpu
    total.wait += a.wait - b.wait
    total.slices += a.slices - b.slices
  }
  return total
}

describe.skipIf(PAIRS < 1)('server scheduling during a meeting', () => {
  it(`reads both servers' scheduler counters over ${PAIRS} pairs of 2-tab meetings`, async () => {
    const browser = await launchChromium()
    const rows: string[] = []
    try {
      for (let pair = 0; pair < PAIRS; pair++) {
        for (const system of ['ours', 'PeerJS'] as const) {
          const batch = `sched-${pair}-${Date.now()}`
          const urls = system === 'ours'
            ? [0, 1].map(() => `${benchUrl}rooms.html?relay=${encodeURIComponent(relayAddr)}&room=${batch}&hello=1`)
            : [`${benchUrl}peerjs.html?server=${peerServer}&id=${batch}-0&dial=${batch}-1&hello=1`, `${benchUrl}peerjs.html?server=${peerServer}&id=${batch}-1&dial=&hello=1`]
          const pid = system === 'ours' ? relayPid : peerServerPid
          const pages = await Promise.all(urls.map(async () => (await browser.newContext()).newPage()))
          const followed = await Promise.all(pages.map(async (p) => followProgress(p)))
          const before = sched(pid)
          const started = performance.now()
          await Promise.all(pages.map(async (p, i) => p.goto(urls[i])))
          await Promise.all(followed.map(async (f) => f.until((p) => p.first >= 1, 120_000, 'the other tab\'s first message')))
          const ms = performance.now() - started
          const used = spent(before, sched(pid))
          await Promise.all(pages.map(async (p) => { await p.context().close() }))
          rows.push(`| ${system} | ${ms.toFixed(0)} | ${(used.cpu / 1e6).toFixed(0)} | ${(used.wait / 1e6).toFixed(0)} | ${used.slices} |`)
        }
      }
    } finally {
      await browser.close()
    }
    expect(rows).toHaveLength(PAIRS * 2)
    console.log([
      'Server scheduler counters per 2-tab meeting (navigation → both heard the other; ours: the relay process, PeerJS: the PeerServer process):',
      '| system | meeting ms | server CPU ms | run-queue wait ms (all threads) | timeslices |',
      '| --- | --: | --: | --: | --: |',
      ...rows
    ].join('\n'))
  }, 600_000)
})
