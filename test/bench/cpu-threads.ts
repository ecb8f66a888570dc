/**
 * CPU time of this process's Chromium children, thread by thread, from /proc (Linux only): where
 * a bench's time goes beyond the pages' JS (WebRTC's network thread, workers, the GPU and network
 * processes). `threadTimes()` before and after a run, `cpuDiff` of the two.
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
