/**
 * The meeting bench's servers: its two apps (test/bench/fixture) built minified with Vite and
 * served by `vite preview`, and a local PeerServer (the `peer` package) for the PeerJS anchor.
 * Both on port 0; tests read `inject('benchUrl')` and `inject('peerServer')` (`host:port`). The
 * PeerServer runs in this, the test runner's main process: `inject('peerServerPid')`.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PeerServer } from 'peer'
import { build, preview } from 'vite'
import type { AddressInfo } from 'node:net'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    benchUrl: string
    peerServer: string
    peerServerPid: number
  }
}

export default async function setup (project: TestProject): Promise<() => Promise<void>> {
  const configFile = new URL('../bench/fixture/vite.config.ts', import.meta.url).pathname
  const outDir = await mkdtemp(join(tmpdir(), 'p2p-rooms-bench-'))
  await build({ configFile, build: { outDir } })
  const web = await preview({ configFile, build: { outDir }, preview: { host: '127.0.0.1', port: 0, strictPort: false } })
  const url = web.resolvedUrls?.local[0]
  if (url === undefined) throw new Error('vite preview reported no URL')
  project.provide('benchUrl', url)

  const peerServer = await new Promise<import('node:http').Server>((resolve) => {
    PeerServer({ host: '127.0.0.1', port: 0, path: '/' }, (server) => { resolve(server as import('node:http').Server) })
  })
  project.provide('peerServer', `127.0.0.1:${(peerServer.address() as AddressInfo).port}`)
  project.provide('peerServerPid', process.pid)
  return async () => {
    peerServer.closeAllConnections()
    await new Promise<void>((resolve) => { peerServer.close(() => { resolve() }) })
    await web.close()
  }
}
