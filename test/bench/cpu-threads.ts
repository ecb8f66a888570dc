/**
 * CPU time of this process's Chromium children, thread by thread, from /proc (Linux only): where
 * a bench's time goes beyond the pages' JS (WebRTC's network thread, workers, the GPU and network
 * processes). `threadTimes()` before and after a run, `cpuDiff` of the two. `cpuSnapshot()` and
 * `cpuSpent()` sum it by kind of process instead, to the nanosecond, for a bench's table.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'

/** CPU seconds by `<process type>/<thread name>`, and by process ID for renderers. */
export type ThreadTimes = Map<string, number>

const TICKS = 100

function descendants (root: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
  const children = new Map<number, number[]>()
  for (const line of out.trim().split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number)
    children.set(ppid, [...(children.get(ppid) ?? []), pid])
  }
  const all: number[] = []
  const walk = (p: number): void => { for (const c of children.get(p) ?? []) { all.push(c); walk(c) } }
  walk(root)
  return all
}

function kind (pid: number): string {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    const type = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? 'browser'
    const sub = /--utility-sub-type=([\w.]+)/.exec(cmd)?.[1]
    return type === 'renderer' ? `renderer ${pid}` : sub !== undefined ? `${type}:${sub.split('.').pop() ?? ''}` : type
  } catch {
    return 'gone'
  }
}

/** CPU seconds of every thread of this process's Chromium descendants, keyed `<process>/<thread>`. */
export function threadTimes (): ThreadTimes {
  const times: ThreadTimes = new Map()
  for (const pid of descendants(process.pid)) {
    const k = kind(pid)
    let tasks: string[] = []
    try { tasks = readdirSync(`/proc/${pid}/task`) } catch { continue }
    for (const tid of tasks) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        const s = (Number(fields[11]) + Number(fields[12])) / TICKS
        const key = `${k}/${comm}`
        times.set(key, (times.get(key) ?? 0) + s)
      } catch {}
    }
  }
  return times
}

/** What `after` adds to `before`, largest first, entries under 0.2 s left out. */
export function cpuDiff (before: ThreadTimes, after: ThreadTimes): Array<[string, number]> {
  return [...after].map(([k, v]): [string, number] => [k, Math.round((v - (before.get(k) ?? 0)) * 100) / 100])
    .filter(([, v]) => v >= 0.2).sort((a, b) => b[1] - a[1])
}

/** Per process: its kind (`renderer`, `browser`, `gpu-process`, a utility's service, or a server's name) and its threads' CPU ns. */
export type CpuSnapshot = Map<number, { kind: string, ns: Map<string, number> }>

/**
 * The CPU time so far of every thread of this process's Chromium descendants and of `servers`
 * (name → process ID), from the scheduler's own counters (`/proc/<pid>/task/<tid>/schedstat`,
 * nanoseconds; the tick counts of `threadTimes` are 10 ms coarse). Empty where /proc is absent.
 */
export function cpuSnapshot (servers: Record<string, number> = {}): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map()
  let chromium: number[] = []
  try { chromium = descendants(process.pid) } catch { return snapshot }
  const named = new Map(Object.entries(servers).map(([name, pid]) => [pid, name]))
  for (const pid of [...chromium.filter((p) => !named.has(p) && isChromium(p)), ...named.keys()]) {
    const kindOf = named.get(pid) ?? kind(pid).replace(/^renderer \d+$/, 'renderer')
    if (kindOf === 'gone') continue
    const ns = new Map<string, number>()
    let tasks: string[] = []
    try { tasks = readdirSync(`/proc/${pid}/task`) } catch { continue }
    for (const tid of tasks) {
      try {
        ns.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]))
      } catch {
        // the thread ended meanwhile
      }
    }
    snapshot.set(pid, { kind: kindOf, ns })
  }
  return snapshot
}

/** Whether `pid` runs Chromium (not `ps`, a shell, or a server this process spawned). */
function isChromium (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chrom')
  } catch {
    return false
  }
}

/**
 * CPU ms spent between two snapshots, by kind of process. A process or thread born since counts
 * from zero; one that ended since is left out, so a figure can be low, never negative.
 */
export function cpuSpent (before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const spent: Record<string, number> = {}
  for (const [pid, { kind: k, ns }] of after) {
    const was = before.get(pid)?.ns
    let total = 0
    for (const [tid, v] of ns) total += v - (was?.get(tid) ?? 0)
    spent[k] = (spent[k] ?? 0) + total / 1e6
  }
  return spent
}
