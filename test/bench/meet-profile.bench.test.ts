/**
 * Where a tab's CPU goes while it meets its room: `BENCH_MEET_PROFILE=<tabs> npm run bench` (or
 * `npx vitest run --project bench test/bench/meet-profile.bench.test.ts`) opens that many tabs of
 * the bench's room app together, records a V8 CPU profile of the first one (Chrome DevTools
 * Protocol `Profiler`, 200 µs sampling) from navigation until it heard from every other tab, maps
 * each sample through the build's source maps (the fixture is built with them when this is set)
 * and prints self time per npm package, and per file for ours, over `BENCH_MEET_PROFILE_RUNS`
 * runs (3). Skipped unless set: it measures nothing `npm run bench` compares.
 *
 * This is how the meeting's CPU costs were found (2 December 2026): noble's Ed25519 and X25519
 * base-point tables built on every new tab's path to its relay (identity.ts, noise-crypto.ts).
 */
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping'
import { describe, expect, inject, it } from 'vitest'
import { launchChromium } from '../browser/tabs.js'
import { followProgress } from './progress.js'

const relayAddr = inject('relayAddr')
const benchUrl = inject('benchUrl')
const TABS = Number(process.env.BENCH_MEET_PROFILE ?? 0)
const RUNS = Number(process.env.BENCH_MEET_PROFILE_RUNS ?? 3)

/** A sample's frame in a V8 CPU profile (DevTools Protocol `Runtime.CallFrame`). */
interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }

describe.skipIf(TABS < 1)('meeting CPU profile', () => {
  it(`profiles the first of ${TABS} tabs opened together`, async () => {
    const browser = await launchChromium()
    const selfBy = new Map<string, number>()
    // time with the package anywhere on the stack: what a package costs with everything it calls
    const inclusiveBy = new Map<string, number>()
    const maps = new Map<string, TraceMap | null>()
    let total = 0
    try {
      for (let run = 0; run < RUNS; run++) {
        const url = `${benchUrl}rooms.html?relay=${encodeURIComponent(relayAddr)}&room=profile-${run}-${Date.now()}&hello=1`
        const pages = await Promise.all(Array.from({ length: TABS }, async () => (await browser.newContext()).newPage()))
        // told by the page, not polled: polling would land in the very profile it waits for
        const followed = await followProgress(pages[0])
        const cdp = await pages[0].context().newCDPSession(pages[0])
        await cdp.send('Profiler.enable')
        await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
        await cdp.send('Profiler.start')
        await Promise.all(pages.map(async (p) => p.goto(url)))
        await followed.until((p) => p.first >= TABS - 1, 120_000, `hearing from ${TABS - 1} tabs`)
        const { profile } = await cdp.send('Profiler.stop')
        await Promise.all(pages.map(async (p) => { await p.context().close() }))
        for (const node of profile.nodes) {
          const script = node.callFrame.url
          if (script.endsWith('.js') && !maps.has(script)) {
            const res = await fetch(`${script}.map`).catch(() => undefined)
            const json = res?.ok === true && res.headers.get('content-type')?.includes('json') === true
            maps.set(script, json ? new TraceMap(await res.json()) : null)
          }
        }
        const owner = new Map(profile.nodes.map((node) => [node.id, ownerOf(node.callFrame, maps)]))
        const parent = new Map<number, number>()
        for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
        const deltas = profile.timeDeltas ?? []
        for (let i = 0; i < (profile.samples ?? []).length; i++) {
          const ms = (deltas[i + 1] ?? 0) / 1000
          const who = owner.get(profile.samples?.[i] ?? -1) ?? '?'
          selfBy.set(who, (selfBy.get(who) ?? 0) + ms)
          const onStack = new Set<string>()
          for (let id: number | undefined = profile.samples?.[i]; id !== undefined; id = parent.get(id)) onStack.add(owner.get(id) ?? '?')
          for (const pkg of onStack) inclusiveBy.set(pkg, (inclusiveBy.get(pkg) ?? 0) + ms)
          total += ms
        }
      }
    } finally {
      await browser.close()
    }
    expect(total).toBeGreaterThan(0)
    const rows = [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, 40)
    const inclusive = (who: string): string => ((inclusiveBy.get(who) ?? 0) / RUNS).toFixed(1)
    console.log([
      `CPU time of the first of ${TABS} tabs, navigation → heard from all, ${RUNS} runs (ms per run); `,
      '"self" is time in the package\'s own code, "with callees" time with it anywhere on the stack:',
      '| who | self | with callees |', '| --- | --: | --: |',
      ...rows.map(([who, ms]) => `| ${who} | ${(ms / RUNS).toFixed(1)} | ${inclusive(who)} |`)
    ].join('\n'))
  }, 600_000)
})

/** An npm package (`@libp2p/peer-store`), one of our files (`ours: room.js`), or V8's own (`(idle)`). */
function ownerOf (frame: CallFrame, maps: Map<string, TraceMap | null>): string {
  if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)'
  const map = maps.get(frame.url)
  if (map == null) return `(unmapped) ${frame.url.split('/').pop()?.split('?')[0] ?? ''}`
  const source = originalPositionFor(map, { line: frame.lineNumber + 1, column: frame.columnNumber }).source ?? '?'
  const at = source.lastIndexOf('node_modules/')
  if (at < 0) return `ours: ${source.split('/').slice(-2).join('/')}`
  const [scope, name] = source.slice(at + 'node_modules/'.length).split('/')
  return scope.startsWith('@') ? `${scope}/${name}` : scope
}
