/**
 * The meeting bench's servers: its two apps (test/bench/fixture) built minified with Vite and
 * served by `vite preview`, and a local PeerServer (the `peer` package) for the PeerJS anchor.
 * Both on port 0; tests read `inject('benchUrl')` and `inject('peerServer')` (`host:port`). The
 * PeerServer runs in a process of its own (test/setup/peer-server.mjs), like our relay:
 * `inject('peerServerPid')`.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { build, preview } from 'vite'
import type { ChildProcess } from 'node:child_process'
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

  const peerServer = spawn(process.execPath, [new URL('./peer-server.mjs', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await listeningPort(peerServer)
  project.provide('peerServer', `127.0.0.1:${port}`)
  project.provide('peerServerPid', peerServer.pid ?? 0)
  return async () => {
    if (peerServer.exitCode === null) {
      peerServer.kill()
      await once(peerServer, 'exit')
    }
    await web.close()
  }
}

/** The port peer-server.mjs prints once it listens; rejects if it exits first or takes over 30 s. */
async function listeningPort (child: ChildProcess): Promise<number> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`the PeerServer exited with ${String(code)} before it listened`) })
  // it exits at the end of every bench: only a rejection before the port counts
  exited.catch(() => {})
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('the PeerServer did not listen within 30 s')) }, 30_000) })
  try {
    const [line] = await Promise.race([once(lines, 'line') as Promise<[string]>, exited, timeout])
    return (JSON.parse(line) as { port: number }).port
  } catch (err) {
    child.kill()
    throw err
  } finally {
    clearTimeout(timer)
    lines.close()
  }
}
