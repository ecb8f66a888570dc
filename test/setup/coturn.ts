/**
 * Runs a real coturn `turnserver` for a test, on this machine's own non-loopback IPv4 address and
 * a free UDP port, checking TURN REST API credentials (`use-auth-secret`), the kind a relay's
 * `/ice-servers` mints. Debian's `coturn` package provides it (scripts/ensure-coturn.mjs).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'

export const TURNSERVER_PATH = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver'

export interface Coturn {
  ip: string
  port: number
  /** `turn:<ip>:<port>?transport=udp`, for `--ice-server` or an `RTCIceServer`. */
  url: string
  realm: string
  /** Everything turnserver logged so far. */
  log(): string
  /** Resolves once the log (so far or to come) matches `pattern` at least `count` times, with the matches. */
  waitForLog(pattern: RegExp, count?: number, timeout?: number): Promise<string[]>
  /** SIGTERM (SIGKILL after 5 s), then removes its files. Idempotent. */
  stop(): Promise<void>
}

export interface CoturnInit {
  /** The `static-auth-secret` credentials are minted with. */
  secret: string
  /** @default 'p2p-rooms.test' */
  realm?: string
  /** How long to wait for turnserver to answer a STUN request, in ms. @default 20000 */
  timeout?: number
}

/**
 * The first non-internal IPv4 address (192.0.2.2 in the project's sandbox). A TURN server is
 * reached over the network; on loopback it would hand out loopback relayed addresses, which
 * coturn refuses as peers by default.
 */
export function ownIPv4 (): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  throw new Error('no non-loopback IPv4 address on this machine to run TURN on')
}

export async function startCoturn (init: CoturnInit): Promise<Coturn> {
  const ip = ownIPv4()
  const realm = init.realm ?? 'p2p-rooms.test'
  const dir = await mkdtemp(join(tmpdir(), 'p2p-rooms-coturn-'))
  // another process may take the free port between our probe and turnserver's bind: try again
  let lastError: Error | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeUdpPort(ip)
    try {
      return await run(ip, port, realm, dir, init)
    } catch (err: any) {
      lastError = err
    }
  }
  await rm(dir, { recursive: true, force: true })
  throw lastError
}

async function run (ip: string, port: number, realm: string, dir: string, init: CoturnInit): Promise<Coturn> {
  const args = [
    // our own configuration only: never Debian's /etc/turnserver.conf
    '-c', '/dev/null',
    // listen, and relay, on this machine's LAN address: Chromium reaches it like a real TURN
    // server, and both tabs' relayed addresses are on it
    '--listening-ip', ip, '--relay-ip', ip, '--listening-port', String(port),
    // TURN over UDP is what the test exercises; no TCP listener on the same port to collide
    '--no-tcp', '--no-tls', '--no-dtls',
    // RFC 5780 would bind a second port (port + 1) for NAT behaviour discovery: nothing here needs it
    '--no-rfc5780',
    // the TURN REST API: credentials are `<expiry>:<user>` / base64(HMAC-SHA1(secret, username))
    '--use-auth-secret', '--static-auth-secret', init.secret, '--realm', realm,
    // coturn 4.6 refuses only loopback peers by default, but a hardened deployment denies private
    // ranges (denied-peer-ip); here both tabs' relayed addresses are this machine's own IP, so it
    // is allowed explicitly. The loopback refusal stays on: nothing here relays to 127.0.0.1
    '--allowed-peer-ip', ip,
    // no telnet admin console (port 5766), no shared pid file or user database
    '--no-cli', '--pidfile', join(dir, 'turnserver.pid'), '--userdb', join(dir, 'turndb'),
    // one log, to our pipe, so the test can read allocations and permissions
    '--log-file', 'stdout', '--simple-log', '-v'
  ]
  const child = spawn(TURNSERVER_PATH, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const watchers = new Set<() => void>()
  const onData = (d: string): void => {
    log += d
    for (const w of watchers) w()
  }
  child.stdout.setEncoding('utf8').on('data', onData)
  child.stderr.setEncoding('utf8').on('data', onData)
  // a test worker that dies must not leave turnserver behind
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  let stopped: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopped ??= (async () => {
      process.off('exit', killOnExit)
      await terminate(child)
      await rm(dir, { recursive: true, force: true })
    })()
    await stopped
  }

  try {
    await answersStun(child, ip, port, init.timeout ?? 20_000, () => log)
  } catch (err) {
    process.off('exit', killOnExit)
    await terminate(child)
    throw err
  }

  return {
    ip,
    port,
    url: `turn:${ip}:${port}?transport=udp`,
    realm,
    log: () => log,
    async waitForLog (pattern, count = 1, timeout = 30_000) {
      const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`)
      const matches = (): string[] => [...log.matchAll(re)].map((m) => m[0])
      if (matches().length >= count) return matches()
      return new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check)
          reject(new Error(`turnserver logged ${pattern} ${matches().length} of ${count} times within ${timeout} ms; log:\n${log.slice(-4000)}`))
        }, timeout)
        function check (): void {
          if (matches().length < count) return
          clearTimeout(timer)
          watchers.delete(check)
          resolve(matches())
        }
        watchers.add(check)
      })
    },
    stop
  }
}

/** A UDP port nothing is bound to on `ip` right now. */
async function freeUdpPort (ip: string): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, ip, resolve)
  })
  const { port } = socket.address()
  await new Promise<void>((resolve) => { socket.close(resolve) })
  return port
}

/**
 * Sends STUN Binding requests (RFC 5389 §6) every 250 ms until turnserver answers one: its
 * listener is then up, which no log line says as reliably.
 */
async function answersStun (child: ChildProcess, ip: string, port: number, timeoutMs: number, log: () => string): Promise<void> {
  const socket = createSocket('udp4')
  try {
    await new Promise<void>((resolve, reject) => {
      const request = Buffer.alloc(20)
      request.writeUInt16BE(0x0001, 0) // Binding request, no attributes
      request.writeUInt32BE(0x2112A442, 4) // magic cookie
      randomBytes(12).copy(request, 8) // transaction ID
      const timer = setTimeout(() => { finish(new Error(`turnserver did not answer STUN on ${ip}:${port} within ${timeoutMs} ms; log:\n${log()}`)) }, timeoutMs)
      const interval = setInterval(send, 250)
      const onExit = (code: number | null): void => { finish(new Error(`turnserver exited with ${code} before answering STUN on ${ip}:${port}; log:\n${log()}`)) }
      function send (): void { socket.send(request, port, ip) }
      function finish (err?: Error): void {
        clearTimeout(timer)
        clearInterval(interval)
        child.off('exit', onExit)
        if (err === undefined) resolve()
        else reject(err)
      }
      socket.on('message', (msg) => {
        // a Binding success response (0x0101) carrying our transaction ID
        if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(request.subarray(8, 20))) finish()
      })
      socket.on('error', () => {}) // ICMP port unreachable while it starts: keep trying
      child.once('exit', onExit)
      socket.bind(0, ip, send)
    })
  } finally {
    socket.close()
  }
}

async function terminate (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}
