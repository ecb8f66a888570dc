/**
 * Starts `p2p-rooms-relay` as a child process and resolves once it prints its multiaddrs.
 * Used by the tests, `npm start` and the benchmarks, which all need a real relay process.
 */
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

export interface SpawnedRelay {
  /** Listen multiaddrs, each ending in `/p2p/<peer ID>`. */
  multiaddrs: string[]
  /** Base URL of the HTTP endpoint (`/status`, `/metrics`). */
  httpUrl: string
  process: ChildProcess
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>
}

export interface SpawnRelayInit {
  /** @default ['/ip4/127.0.0.1/tcp/0/ws'] */
  listen?: string[]
  /** Extra command-line arguments. */
  args?: string[]
  /** How long to wait for the relay to print its addresses, in ms. @default 20000 */
  timeout?: number
}

const BIN = fileURLToPath(new URL('../bin/p2p-rooms-relay.js', import.meta.url))

export async function spawnRelay (init: SpawnRelayInit = {}): Promise<SpawnedRelay> {
  const listen = init.listen ?? ['/ip4/127.0.0.1/tcp/0/ws']
  const child = spawn(process.execPath, [BIN, '--listen', ...listen, '--http', '127.0.0.1:0', ...(init.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  // P2P_ROOMS_RELAY_STDERR=<file> keeps the relay's logs (set DEBUG=… for libp2p's) for debugging tests
  const logFile = process.env.P2P_ROOMS_RELAY_STDERR
  if (logFile !== undefined) child.stderr?.pipe(createWriteStream(logFile, { flags: 'a' }))
  let stdout = ''
  let stderr = ''
  let httpUrl: string | undefined
  let stopBuffering = (): void => {}
  const ready = new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => { fail(new Error(`relay printed no multiaddrs within ${init.timeout ?? 20_000} ms; stderr: ${stderr}`)) }, init.timeout ?? 20_000)
    function fail (err: Error): void {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    function check (): void {
      const lines = stdout.split('\n').filter((l) => l.startsWith('/'))
      if (lines.length >= listen.length && httpUrl !== undefined) {
        clearTimeout(timer)
        resolve(lines)
      }
    }
    child.stdout?.setEncoding('utf8').on('data', onStdout)
    child.stderr?.setEncoding('utf8').on('data', onStderr)
    function onStdout (d: string): void { stdout += d; check() }
    function onStderr (d: string): void {
      stderr += d
      for (const line of d.split('\n')) {
        try {
          const entry = JSON.parse(line)
          if (typeof entry.url === 'string') httpUrl = entry.url
        } catch {}
      }
      check()
    }
    stopBuffering = () => {
      child.stdout?.off('data', onStdout).resume()
      child.stderr?.off('data', onStderr).resume()
    }
    child.once('exit', (code) => { fail(new Error(`relay exited with ${code} before listening; stderr: ${stderr}`)) })
  })
  const multiaddrs = await ready
  child.removeAllListeners('exit')
  // a long-running relay (npm start) would otherwise keep every log line in memory
  stopBuffering()
  return {
    multiaddrs,
    httpUrl: httpUrl as string,
    process: child,
    async stop () {
      if (child.exitCode !== null) return child.exitCode
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
      child.kill('SIGTERM')
      return exited
    }
  }
}
