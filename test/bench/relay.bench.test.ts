/**
 * `npm run bench:relay` (also part of `npm run bench`): what each idle peer holding a reservation
 * costs a real relay process, in steps up to 5,000 peers. Prints a markdown table and writes
 * bench-results/relay.json. It asserts only that it measured what it says (every counted peer
 * holds a reservation the relay reports); cost targets are read from its output.
 *
 * Per step, once the new peers reserved, the relay idled for BENCH_RELAY_SETTLE_MS and went
 * through a full GC (through the V8 inspector it is started with):
 * - RSS (/proc/<pid>/status VmRSS) and V8 heap used (`nodejs_heap_size_used_bytes` on /metrics),
 *   in total and per peer beyond the 0-peer baseline
 * - relay CPU (user + system, /proc/<pid>/stat) while the step's peers attached, and its share of
 *   one core while idle (the relay pings every peer every 10 s; peers ping it only when asked to)
 * - time per reservation: client-side ms from the dial until the reservation is held
 * A step that ends with the relay holding fewer reservations than peers (it dropped peers it could
 * no longer ping in time, or stopped answering) is the last one: the test then fails.
 *
 * Environment:
 * - BENCH_RELAY_STEPS: peer counts (default 0,500,1000,2000,3500,5000)
 * - BENCH_RELAY_PROFILE: `bare` (default) peers hold a connection and a reservation, the relay's
 *   floor per peer; `room` peers are configured as a room node minus WebRTC (relay-peers.mjs)
 * - BENCH_RELAY_WORKERS (peer processes), BENCH_RELAY_CONCURRENCY (reservations in flight per
 *   process, default 2), BENCH_RELAY_SETTLE_MS (idle time before each reading, default 10000;
 *   keep it ≥ 10 s: the relay pings all its peers at once every 10 s)
 * - BENCH_RELAY_CLIENT_PING_MS, BENCH_RELAY_CLIENT_HEARTBEAT_MS: see below
 * - BENCH_RELAY_HEAP_SNAPSHOT=<step>: also break the relay's heap down per peer by constructor at
 *   that step, from heap snapshots (keep it ≤ 2000: the snapshot is parsed in one string)
 * - BENCH_RELAY_CPU_PROFILE=<step>: also break the relay's idle CPU down by package at that step,
 *   from a CPU profile over another settle period, kept as bench-results/relay-idle.cpuprofile
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { startFleet } from './relay-fleet.js'
import { readHeap, readProc, readStatus, spawnInspectableRelay } from './relay-probe.js'
import type { Fleet, PeerProfile } from './relay-fleet.js'
import type { HeapKind, InspectableRelay, StatusSample } from './relay-probe.js'

const STEPS = (process.env.BENCH_RELAY_STEPS ?? '0,500,1000,2000,3500,5000').split(',').map(Number)
const PROFILE = (process.env.BENCH_RELAY_PROFILE ?? 'bare') as PeerProfile
const MAX_PEERS = Math.max(...STEPS)
// ~700 nodes per process keeps each one's event loop responsive on a loaded machine
const WORKERS = Number(process.env.BENCH_RELAY_WORKERS ?? Math.min(8, Math.max(2, Math.ceil(MAX_PEERS / 700))))
const CONCURRENCY = Number(process.env.BENCH_RELAY_CONCURRENCY ?? 2)
const SETTLE_MS = Number(process.env.BENCH_RELAY_SETTLE_MS ?? 10_000)
// Browsers ping the relay every 10 s and run a 1 s gossipsub heartbeat (libp2p's defaults). The
// peers' side of that costs about as much CPU as the relay's, so 5,000 such peers need more cores
// than a small machine has, and peers starved of CPU answer the relay's pings too late and get
// dropped. By default the simulated peers do not ping (the relay still pings them every 10 s) and
// `room` peers beat every 10 s; BENCH_RELAY_CLIENT_PING_MS=10000 BENCH_RELAY_CLIENT_HEARTBEAT_MS=1000
// makes them browser-like.
const CLIENT_PING_MS = Number(process.env.BENCH_RELAY_CLIENT_PING_MS ?? 0)
const CLIENT_HEARTBEAT_MS = Number(process.env.BENCH_RELAY_CLIENT_HEARTBEAT_MS ?? 10_000)
const SNAPSHOT_AT = process.env.BENCH_RELAY_HEAP_SNAPSHOT === undefined ? undefined : Number(process.env.BENCH_RELAY_HEAP_SNAPSHOT)
const CPU_PROFILE_AT = process.env.BENCH_RELAY_CPU_PROFILE === undefined ? undefined : Number(process.env.BENCH_RELAY_CPU_PROFILE)

// every simulated peer dials from 127.0.0.1: the per-IP limits must admit all of them, and the
// headroom covers connections still closing
const RELAY_ARGS = [
  '--max-reservations', String(MAX_PEERS + 64),
  '--max-reservations-per-ip', String(MAX_PEERS + 64),
  '--max-connections', String(MAX_PEERS + 256),
  '--inbound-connection-threshold', String(MAX_PEERS + 64)
]

interface Step {
  peers: number
  reservations: number
  connectedPeers: number
  /** Peers that did not get a reservation in this step (not counted in `peers`). */
  failures: number
  rssBytes: number
  heapUsedBytes: number
  heapTotalBytes: number
  externalBytes: number
  /** Heap used after the idle period, before the forced GC. */
  heapUsedIdleBytes: number
  attachSeconds: number
  attachCpuSeconds: number
  idleCpuPercent: number
  reservationMs: { median: number, p90: number, samples: number } | null
  /** Resident memory of all peer processes together. */
  clientRssBytes: number
  /** Connections the relay closed or lost during this step (none while it keeps up). */
  connectionsClosed: number
  /** … of which it closed for lacking a gossipsub stream each way (src/pubsub-streams.ts). */
  pubsubStreamLosses: number
}

interface KindPerPeer { kind: string, bytesPerPeer: number, countPerPeer: number }
interface CpuShare { code: string, percentOfCore: number }

const steps: Step[] = []
let heapPerPeer: KindPerPeer[] | undefined
let idleCpu: CpuShare[] | undefined
const began = performance.now()

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Polls /status until the relay reports `peers` connected peers holding a reservation; after
 * `timeoutMs`, returns what it reports (the caller records and stops on a shortfall).
 */
async function waitReserved (httpUrl: string, peers: number, timeoutMs = 120_000): Promise<StatusSample> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await readStatus(httpUrl)
    if ((status.reservations === peers && status.connectedPeers >= peers) || Date.now() > deadline) return status
    await sleep(500)
  }
}

/**
 * Aborts `controller` once the relay closes a connection (a peer it failed to ping in time) or
 * stops answering /status: a relay past what the machine can carry, where more peers measure
 * nothing but timeouts.
 */
function watchDrops (httpUrl: string, closedBefore: number, controller: AbortController): () => void {
  const timer = setInterval(() => {
    readStatus(httpUrl, 30_000).then(
      (status) => { if (status.connectionsClosed > closedBefore) controller.abort() },
      () => { controller.abort() }
    )
  }, 5_000)
  return () => { clearInterval(timer) }
}

function percentiles (samples: number[]): Step['reservationMs'] {
  if (samples.length === 0) return null
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))])
  return { median: at(0.5), p90: at(0.9), samples: sorted.length }
}

async function measureStep ({ relay, inspector }: InspectableRelay, fleet: Fleet, peers: number): Promise<Step> {
  const pid = relay.process.pid as number
  const { connectionsClosed: closedBefore, pubsubStreamLosses: lossesBefore } = await readStatus(relay.httpUrl)
  const before = readProc(pid)
  const started = performance.now()
  const dropping = new AbortController()
  const unwatch = watchDrops(relay.httpUrl, closedBefore, dropping)
  const attached = await fleet.attach(peers - fleet.size, dropping.signal).finally(unwatch)
  const attachSeconds = (performance.now() - started) / 1000
  const afterAttach = readProc(pid)
  if (dropping.signal.aborted) console.warn(`the relay dropped peers or stopped answering while ${peers} attached: attaching stopped`)
  if (attached.failures.length > 0) console.warn(`${attached.failures.length} peers got no reservation at step ${peers}, e.g. ${attached.failures[0]}`)
  // the reservations exist on the relay, not just in the clients' view
  await waitReserved(relay.httpUrl, fleet.size)
  const idleFrom = readProc(pid)
  await sleep(SETTLE_MS)
  const idleCpuPercent = 100 * (readProc(pid).cpuSeconds - idleFrom.cpuSeconds) / (SETTLE_MS / 1000)
  const heapUsedIdleBytes = (await readHeap(relay.httpUrl)).heapUsedBytes
  await inspector.collectGarbage()
  const heap = await readHeap(relay.httpUrl)
  const status = await readStatus(relay.httpUrl)
  return {
    peers: fleet.size,
    reservations: status.reservations,
    connectedPeers: status.connectedPeers,
    failures: attached.failures.length,
    rssBytes: readProc(pid).rssBytes,
    ...heap,
    heapUsedIdleBytes,
    attachSeconds,
    attachCpuSeconds: afterAttach.cpuSeconds - before.cpuSeconds,
    idleCpuPercent,
    reservationMs: percentiles(attached.samples),
    clientRssBytes: attached.clientRssBytes,
    connectionsClosed: status.connectionsClosed - closedBefore,
    pubsubStreamLosses: status.pubsubStreamLosses - lossesBefore
  }
}

const MIB = 1024 * 1024
const fixed = (n: number, digits = 0): string => n.toFixed(digits)

function table (): string {
  const base = steps[0]
  const perPeer = (s: Step, key: 'rssBytes' | 'heapUsedBytes'): string => s.peers === base.peers ? '–' : fixed((s[key] - base[key]) / (s.peers - base.peers) / 1024)
  const rows = steps.map((s) => [
    s.peers, s.reservations,
    fixed(s.rssBytes / MIB), perPeer(s, 'rssBytes'),
    fixed(s.heapUsedBytes / MIB), perPeer(s, 'heapUsedBytes'),
    fixed(s.externalBytes / MIB, 1),
    fixed(s.attachCpuSeconds, 1), fixed(s.attachSeconds, 1),
    s.attachSeconds > 0.5 ? fixed(100 * s.attachCpuSeconds / s.attachSeconds) : '–',
    fixed(s.idleCpuPercent, 1),
    s.reservationMs?.median ?? '–', s.reservationMs?.p90 ?? '–',
    `${s.connectionsClosed} (${s.pubsubStreamLosses})`
  ].join(' | '))
  return [
    `relay cost per idle peer with a reservation: profile \`${PROFILE}\` (peers ping the relay ${CLIENT_PING_MS === 0 ? 'never' : `every ${CLIENT_PING_MS / 1000} s`}${PROFILE === 'room' ? `, gossipsub heartbeat ${CLIENT_HEARTBEAT_MS / 1000} s` : ''}), ${WORKERS} peer processes × ${CONCURRENCY} reservations in flight, ${SETTLE_MS / 1000} s idle then a full GC before each reading; per peer = beyond the ${base.peers}-peer baseline`,
    '',
    '| peers | reservations | RSS MiB | RSS KiB/peer | heap MiB | heap KiB/peer | external MiB | attach CPU s | attach wall s | attach CPU % | idle CPU % | reserve ms p50 | reserve ms p90 | closed (gossipsub stream lost) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r} |`)
  ].join('\n')
}

/** The heap kinds that grew most per peer between two snapshots. */
function perPeerKinds (before: Map<string, HeapKind>, after: Map<string, HeapKind>, peers: number): KindPerPeer[] {
  return [...after].map(([kind, a]) => {
    const b = before.get(kind) ?? { bytes: 0, count: 0 }
    return { kind, bytesPerPeer: Math.round((a.bytes - b.bytes) / peers), countPerPeer: Math.round(100 * (a.count - b.count) / peers) / 100 }
  }).sort((x, y) => y.bytesPerPeer - x.bytesPerPeer).slice(0, 25)
}

afterAll(() => {
  if (steps.length === 0) return
  const durationSeconds = Math.round((performance.now() - began) / 1000)
  console.log(`${table()}\n\nbench run time: ${durationSeconds} s`)
  if (heapPerPeer !== undefined) console.table(heapPerPeer)
  if (idleCpu !== undefined) console.table(idleCpu)
  mkdirSync('bench-results', { recursive: true })
  writeFileSync('bench-results/relay.json', JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    profile: PROFILE,
    workers: WORKERS,
    concurrencyPerWorker: CONCURRENCY,
    settleMs: SETTLE_MS,
    clientPingMs: CLIENT_PING_MS,
    clientHeartbeatMs: CLIENT_HEARTBEAT_MS,
    relayArgs: RELAY_ARGS,
    durationSeconds,
    steps,
    heapPerPeer,
    idleCpu: idleCpu === undefined ? undefined : { peers: CPU_PROFILE_AT, byCode: idleCpu }
  }, null, 2))
})

describe('bench: relay cost per peer', () => {
  it(`measures relay memory, CPU and reservation time with up to ${MAX_PEERS} peers holding reservations`, async () => {
    const target = await spawnInspectableRelay(RELAY_ARGS)
    let fleet: Fleet | undefined
    try {
      fleet = await startFleet({
        relayAddr: target.relay.multiaddrs[0],
        profile: PROFILE,
        workers: WORKERS,
        concurrency: CONCURRENCY,
        pingInterval: CLIENT_PING_MS,
        heartbeatInterval: CLIENT_HEARTBEAT_MS
      })
      let baseline: Map<string, HeapKind> | undefined
      for (const peers of STEPS) {
        const step = await measureStep(target, fleet, peers)
        steps.push(step)
        if (peers === CPU_PROFILE_AT) {
          const { byCode, profile } = await target.inspector.cpuSummary(SETTLE_MS)
          mkdirSync('bench-results', { recursive: true })
          writeFileSync('bench-results/relay-idle.cpuprofile', JSON.stringify(profile))
          idleCpu = [...byCode].map(([code, ms]) => ({ code, percentOfCore: Math.round(1000 * ms / SETTLE_MS) / 10 }))
            .filter((c) => c.code !== '(idle)').sort((a, b) => b.percentOfCore - a.percentOfCore).slice(0, 20)
        }
        // a relay that lost peers is past what this machine can carry: more peers measure nothing
        if (step.reservations < step.peers) break
        if (SNAPSHOT_AT === undefined) continue
        if (steps.length === 1) baseline = await target.inspector.heapSummary()
        else if (peers === SNAPSHOT_AT && baseline !== undefined) {
          heapPerPeer = perPeerKinds(baseline, await target.inspector.heapSummary(), fleet.size - steps[0].peers)
        }
      }
    } finally {
      await fleet?.stop()
      target.inspector.close()
      await target.relay.stop()
    }

    for (const step of steps) {
      // what the clients hold is what the relay reports holding
      expect(step.reservations, `reservations the relay holds at step ${step.peers}`).toBe(step.peers)
      // a few reservations may time out on a saturated machine; more means the numbers are off
      expect(step.failures, `peers that got no reservation at step ${step.peers}`).toBeLessThanOrEqual(Math.ceil(step.peers / 100))
    }
    expect(steps.length).toBe(STEPS.length)
  }, 3_600_000)
})
