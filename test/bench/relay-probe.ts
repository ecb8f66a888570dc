/**
 * What the relay benchmark reads from the relay process: RSS and CPU time from /proc, heap and
 * external memory from its Prometheus `/metrics`, reservations from `/status`, and, through the
 * V8 inspector it is started with, a full GC before reading the heap and optional heap snapshots.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'

/** CPU time of a process (user + system) and its resident memory. */
export interface ProcSample {
  cpuSeconds: number
  rssBytes: number
}

// /proc/<pid>/stat counts CPU time in clock ticks (USER_HZ, 100 on Linux unless changed)
const CLOCK_TICKS = ((): number => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

export function readProc (pid: number): ProcSample {
  // the command name (field 2) may hold spaces: fields are counted after its closing parenthesis
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  const rssKib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return { cpuSeconds, rssBytes: Number(rssKib) * 1024 }
}

/** prom-client's default Node metrics, in bytes. */
export interface HeapSample {
  heapUsedBytes: number
  heapTotalBytes: number
  externalBytes: number
}

export async function readHeap (httpUrl: string): Promise<HeapSample> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text()
  const value = (name: string): number => {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
    if (match === null) throw new Error(`${name} missing from the relay's /metrics`)
    return Number(match[1])
  }
  return {
    heapUsedBytes: value('nodejs_heap_size_used_bytes'),
    heapTotalBytes: value('nodejs_heap_size_total_bytes'),
    externalBytes: value('nodejs_external_memory_bytes')
  }
}

export interface StatusSample {
  connectedPeers: number
  reservations: number
  /** Connections closed since the relay started, for whatever reason. */
  connectionsClosed: number
  /** … of which closed for lacking a gossipsub stream each way (src/pubsub-streams.ts). */
  pubsubStreamLosses: number
}

export async function readStatus (httpUrl: string, timeoutMs = 60_000): Promise<StatusSample> {
  const res = await fetch(`${httpUrl}/status`, { signal: AbortSignal.timeout(timeoutMs) })
  // a relay whose event loop is saturated answers 408 (its request-head timeout) with no body
  if (!res.ok) throw new Error(`the relay answered /status with ${res.status} ${res.statusText}: saturated past what it can serve?`)
  const status = await res.json()
  return {
    connectedPeers: status.connectedPeers,
    reservations: status.reservations,
    connectionsClosed: status.counters.connectionsClosed,
    pubsubStreamLosses: status.counters.pubsubStreamLosses
  }
}

/** Self size and count of the heap objects of one kind (a constructor name or a V8 node type). */
export interface HeapKind {
  bytes: number
  count: number
}

export interface Inspector {
  /** A full, precise GC, so heap figures hold live objects only. */
  collectGarbage(): Promise<void>
  /** Takes a heap snapshot and sums self sizes per constructor name (objects) or `(type)`. */
  heapSummary(): Promise<Map<string, HeapKind>>
  /**
   * Samples the relay's CPU for `ms`; returns self time per package (or Node's own code) and the
   * profile itself (`.cpuprofile`, for Chrome DevTools).
   */
  cpuSummary(ms: number): Promise<{ byCode: Map<string, number>, profile: object }>
  close(): void
}

export interface InspectableRelay {
  relay: SpawnedRelay
  inspector: Inspector
}

/**
 * Spawns the relay binary with the V8 inspector on a loopback port. The binary has no flag for
 * it; NODE_OPTIONS does. Only the benchmark attaches; an idle inspector costs the relay nothing
 * measurable.
 */
export async function spawnInspectableRelay (args: string[]): Promise<InspectableRelay> {
  const port = await freePort()
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${port}`.trim()
  const relay = await spawnRelay({ args, env: { ...process.env, NODE_OPTIONS: nodeOptions }, timeout: 60_000 })
  try {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<{ webSocketDebuggerUrl: string }>
    return { relay, inspector: await connectInspector(targets[0].webSocketDebuggerUrl) }
  } catch (err) {
    await relay.stop()
    throw err
  }
}

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

/** A minimal Chrome DevTools Protocol client: requests by id, heap snapshot chunks by event. */
async function connectInspector (url: string): Promise<Inspector> {
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true })
    ws.addEventListener('error', () => { reject(new Error(`cannot reach the relay's inspector at ${url}`)) }, { once: true })
  })
  let nextId = 0
  const pending = new Map<number, { resolve: (result: unknown) => void, reject: (err: Error) => void }>()
  let chunks: string[] = []
  ws.addEventListener('message', (evt) => {
    const msg = JSON.parse(String(evt.data))
    if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') { chunks.push(msg.params.chunk); return }
    const waiter = pending.get(msg.id)
    if (waiter === undefined) return
    pending.delete(msg.id)
    if (msg.error !== undefined) waiter.reject(new Error(`${msg.error.message} (inspector)`))
    else waiter.resolve(msg.result)
  })
  ws.addEventListener('close', () => {
    for (const waiter of pending.values()) waiter.reject(new Error('the relay\'s inspector closed'))
    pending.clear()
  })
  const call = async (method: string, params: object = {}): Promise<unknown> => new Promise((resolve, reject) => {
    const id = ++nextId
    pending.set(id, { resolve, reject })
    ws.send(JSON.stringify({ id, method, params }))
  })
  return {
    async collectGarbage () { await call('HeapProfiler.collectGarbage') },
    async heapSummary () {
      chunks = []
      // the snapshot is sent as chunk events before the call's own reply
      await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
      const text = chunks.join('')
      chunks = []
      return summarize(JSON.parse(text))
    },
    async cpuSummary (ms) {
      await call('Profiler.enable')
      await call('Profiler.start')
      await new Promise((resolve) => setTimeout(resolve, ms))
      const { profile } = await call('Profiler.stop') as { profile: CpuProfile }
      await call('Profiler.disable')
      return { byCode: selfTimeByPackage(profile), profile }
    },
    close () { ws.close() }
  }
}

interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string } }>
  samples: number[]
  timeDeltas: number[]
}

/**
 * Self time in ms per npm package (`@scope/name`), `node` (Node's JavaScript), `our code`, or a
 * V8 pseudo-frame such as `(garbage collector)`, `(program)` or `(idle)`.
 */
function selfTimeByPackage (profile: CpuProfile): Map<string, number> {
  const owner = new Map<number, string>()
  for (const { id, callFrame: { functionName, url } } of profile.nodes) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]
    owner.set(id, pkg ?? (url.startsWith('node:') ? 'node' : url === '' ? functionName : 'our code'))
  }
  const totals = new Map<string, number>()
  profile.samples.forEach((node, i) => {
    const name = owner.get(node) ?? '?'
    totals.set(name, (totals.get(name) ?? 0) + profile.timeDeltas[i] / 1000)
  })
  return totals
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
  nodes: number[]
  strings: string[]
}

/** Sums self sizes as DevTools' "Summary" view does: objects by constructor, the rest by type. */
function summarize (snap: HeapSnapshot): Map<string, HeapKind> {
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const stride = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const kinds = new Map<string, HeapKind>()
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + typeAt]]
    const name = type === 'object' || type === 'native' ? snap.strings[snap.nodes[i + nameAt]] : `(${type})`
    const kind = kinds.get(name) ?? { bytes: 0, count: 0 }
    kind.bytes += snap.nodes[i + sizeAt]
    kind.count++
    kinds.set(name, kind)
  }
  return kinds
}
