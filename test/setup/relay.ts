/**
 * Starts one real relay process for a test project and hands its addresses to the tests
 * through `inject('relayAddr')` / `inject('relayHttp')`, and its process ID as `inject('relayPid')`
 * (test/bench/server-sched.bench.test.ts reads its scheduler counters). Port 0: this may run more
 * than once.
 */
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    relayAddr: string
    relayHttp: string
    relayPid: number
  }
}

export default async function setup (project: TestProject): Promise<() => Promise<void>> {
  const relay = await spawnRelay()
  project.provide('relayAddr', relay.multiaddrs[0])
  project.provide('relayHttp', relay.httpUrl)
  project.provide('relayPid', relay.process.pid ?? 0)
  return async () => { await relay.stop() }
}
