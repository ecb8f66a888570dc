/**
 * Starts `p2p-rooms-relay` as a child process and resolves once it listens (its multiaddrs are
 * printed and its HTTP endpoint is up). Used by the tests, `npm start` and the benchmarks, which
 * all need a real relay process.
 *
 * Unless the caller picks an identity (`--identity`, `--config`, or their environment variables),
 * the relay gets a key file in a fresh temporary directory, removed when the relay exits, or when
 * this process does: a spawned relay must not leave key files behind. (The relay holds a lock
 * next to its key for as long as it runs, so the directory cannot go as soon as it listens.)
 */
import { spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

export interface SpawnedRelay {
  /** The multiaddrs it printed, each ending in `/p2p/<peer ID>`. */
  multiaddrs: string[]
  peerId: string
  /** Base URL of the HTTP endpoint (`/status`, `/metrics`, `/ice-servers`). */
  httpUrl: string
  process: ChildProcess
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>
}

export interface SpawnRelayInit {
  /** @default ['/ip4/127.0.0.1/tcp/0/ws'] */
  listen?: string[]
  /** Extra command-line arguments (they win over `listen` and the HTTP address given here). */
  args?: string[]
  /** Environment of the relay process. @default process.env */
  env?: NodeJS.ProcessEnv
  /** Called with every JSON log line of the relay, parsed, for as long as it runs. */
  onLog?: (entry: Record<string, any>) => void
  /** How long to wait for the relay to listen, in ms. @default 20000 */
  timeout?: number
}

const BIN = fileURLToPath(new URL('../bin/p2p-rooms-relay.js', import.meta.url))

export async function spawnRelay (init: SpawnRelayInit = {}): Promise<SpawnedRelay> {
  const listen = init.listen ?? ['/ip4/127.0.0.1/tcp/0/ws']
  const env = init.env ?? process.env
  const args = init.args ?? []
  const ownsIdentity = ['--identity', '--config'].some((flag) => args.includes(flag)) ||
    env.P2P_ROOMS_RELAY_IDENTITY !== undefined || env.P2P_ROOMS_RELAY_CONFIG !== undefined
  const tempDir = ownsIdentity ? undefined : mkdtempSync(join(tmpdir(), 'p2p-rooms-relay-'))
  const identityArgs = tempDir === undefined ? [] : ['--identity', join(tempDir, 'identity.key')]
  const removeTempDir = (): void => {
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true })
    process.off('exit', removeTempDir)
  }
  if (tempDir !== undefined) process.once('exit', removeTempDir)

  const child = spawn(process.execPath, [BIN, '--listen', ...listen, '--http', '127.0.0.1:0', ...identityArgs, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env
  })
  child.once('exit', removeTempDir)
  // P2P_ROOMS_RELAY_STDERR=<file> keeps the relay's logs (set DEBUG=… for libp2p's) for debugging tests
  const logFile = process.env.P2P_ROOMS_RELAY_STDERR
  if (logFile !== undefined) child.stderr?.pipe(createWriteStream(logFile, { flags: 'a' }))
  let stdout = ''
  let stderr = ''
  let partial = ''
  let listening: string[] | undefined
  let httpUrl: string | undefined
  let buffering = true
  const timeoutMs = init.timeout ?? 20_000
  const ready = new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => { fail(new Error(`relay did not listen within ${timeoutMs} ms; stderr: ${stderr}`)) }, timeoutMs)
    function fail (err: Error): void {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    function check (): void {
      const printed = stdout.split('\n').filter((l) => l.startsWith('/'))
      if (listening !== undefined && printed.length >= listening.length && httpUrl !== undefined) {
        clearTimeout(timer)
        resolve(printed)
      }
    }
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (buffering) stdout += d
      check()
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (buffering) stderr += d
      const lines = (partial + d).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        let entry
        try {
          entry = JSON.parse(line)
        } catch {
          continue
        }
        if (entry.msg === 'relay listening' && Array.isArray(entry.multiaddrs)) listening = entry.multiaddrs
        if (entry.msg === 'http listening' && typeof entry.url === 'string') httpUrl = entry.url
        init.onLog?.(entry)
      }
      check()
    })
    child.once('exit', (code) => { fail(new Error(`relay exited with ${code} before listening; stderr: ${stderr}`)) })
  })
  const multiaddrs = await ready
  child.removeAllListeners('exit')
  child.once('exit', removeTempDir)
  // a long-running relay (npm start) would otherwise keep every log line in memory
  buffering = false
  stdout = ''
  stderr = ''
  return {
    multiaddrs,
    peerId: multiaddrs[0].split('/p2p/').pop() as string,
    httpUrl: httpUrl as string,
    process: child,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
      child.kill('SIGTERM')
      return exited
    }
  }
}
