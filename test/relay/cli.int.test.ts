/**
 * The relay binary as an operator runs it: a real process.
 */
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, describe, expect, it } from 'vitest'
import { IDENTITY_LOCK_STALE_MS } from '../../relay/src/constants.js'
import { client, status, stopClients } from './clients.js'

const BIN = new URL('../../relay/bin/p2p-rooms-relay.js', import.meta.url).pathname

/** Resolves with `promise`, or rejects once `ms` passed, naming `what`. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} took over ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Runs the binary to its exit; resolves with its exit code and output. */
async function run (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number((err as any).code), stdout, stderr })
    })
  })
}

const dirs: string[] = []
/** A temporary directory, removed after the tests. */
function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-rooms-relay-cli-'))
  dirs.push(dir)
  return dir
}
afterAll(async () => {
  await stopClients()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const OPTIONS = [
  'config', 'listen', 'announce', 'identity', 'tls-cert', 'tls-key', 'http', 'log-level', 'max-reservations',
  'max-reservations-per-ip', 'max-connections', 'inbound-connection-threshold', 'circuit-duration-limit',
  'circuit-data-limit', 'max-rooms', 'room-ttl', 'ice-server', 'turn-secret', 'turn-ttl', 'peer',
  'handshake-timeout', 'max-rooms-per-peer', 'max-rooms-per-ip', 'announcements-per-second', 'ice-origins', 'ice-rate-limit',
  'federation-key', 'ping-interval'
]

describe('p2p-rooms-relay', () => {
  it('lists every option with its default, environment variable and config key with --help', async () => {
    const { code, stdout } = await run(['--help'])
    expect(code).toBe(0)
    // one entry per option: its first line starts with two spaces and the flag, the rest wraps
    const entries = stdout.split(/\n(?= {2}-)/).map((e) => e.replace(/\s+/g, ' ').trim())
    for (const option of OPTIONS) {
      const entry = entries.find((e) => e.startsWith(`--${option} `))
      const env = `P2P_ROOMS_RELAY_${option.replace(/-/g, '_').toUpperCase()}`
      expect(entry, option).toMatch(new RegExp(`\\(.*default: .*env: ${env}[,)]`))
    }
    expect(entries.find((e) => e.startsWith('--max-reservations-per-ip '))).toContain('(default: 128, env: P2P_ROOMS_RELAY_MAX_RESERVATIONS_PER_IP, config: maxReservationsPerIp)')
  })

  it('exits with 2 and a one-line message, no stack trace, on an invalid value from a flag, the environment or the config file', async () => {
    const dir = tempDir()
    const badKey = join(dir, 'bad-key.json')
    writeFileSync(badKey, JSON.stringify({ maxReservation: 5 }))
    const badValue = join(dir, 'bad-value.json')
    writeFileSync(badValue, JSON.stringify({ maxRooms: 'many' }))
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--max-reservations', 'lots'], {}, /--max-reservations <n>.*'lots' is invalid\. expected a positive integer/],
      [[], { P2P_ROOMS_RELAY_MAX_CONNECTIONS: '0' }, /P2P_ROOMS_RELAY_MAX_CONNECTIONS.*expected a positive integer/],
      [['--listen', '/ip4/127.0.0.1/tcp/0'], {}, /expected a WebSockets listen multiaddr/],
      [['--config', badKey], {}, /unknown key "maxReservation"/],
      [['--config', badValue], {}, /maxRooms: expected a positive integer/],
      [['--config', join(dir, 'missing.json')], {}, /no such file/],
      [['--listen', '/ip4/127.0.0.1/tcp/0/tls/ws'], {}, /needs --tls-cert and --tls-key/],
      [['--log-level', 'loud'], {}, /Allowed choices are fatal, error, warn, info, debug, trace, silent/],
      [['--ice-server', 'http://example.com'], {}, /expected a stun:, stuns:, turn: or turns: URL/],
      [['--no-such-flag'], {}, /unknown option '--no-such-flag'/]
    ]
    for (const [args, env, message] of cases) {
      const { code, stderr } = await run([...args, '--identity', join(dir, 'id.key')], { ...process.env, ...env })
      expect(code, args.join(' ')).toBe(2)
      expect(stderr).toMatch(message)
      expect(stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('takes each option from its flag, else its environment variable, else the config file, else the default', async () => {
    const dir = tempDir()
    const file = join(dir, 'relay.json')
    writeFileSync(file, JSON.stringify({ maxReservations: 7, maxRooms: 5, roomTtl: 1234, maxConnections: 99, identity: 'relay.key' }))
    const env = { ...process.env, P2P_ROOMS_RELAY_MAX_RESERVATIONS: '8', P2P_ROOMS_RELAY_MAX_ROOMS: '6' }
    const relay = await spawnRelay({ args: ['--config', file, '--max-reservations', '9'], env })
    try {
      expect((await status(relay.httpUrl)).limits).toEqual({
        maxReservations: 9, // flag over environment and file
        maxRooms: 6, // environment over file
        roomTtl: 1234, // file
        maxConnections: 99, // file
        maxReservationsPerIp: 128, // defaults
        inboundConnectionThreshold: 100,
        handshakeTimeout: 10_000,
        maxRoomsPerPeer: 64,
        maxRoomsPerIp: 1024,
        announcementsPerSecond: 10,
        circuitDurationLimit: 120_000,
        circuitDataLimit: 131_072
      })
      // a path in the config file is relative to the file
      expect(statSync(join(dir, 'relay.key')).isFile()).toBe(true)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it('keeps its peer ID across restarts in a key file only its owner can read', async () => {
    const key = join(tempDir(), 'keys', 'relay.key')
    const first = await spawnRelay({ args: ['--identity', key] })
    expect(await first.stop()).toBe(0)
    expect(statSync(key).mode & 0o777).toBe(0o600)
    const second = await spawnRelay({ args: ['--identity', key] })
    expect(await second.stop()).toBe(0)
    expect(second.peerId).toBe(first.peerId)
    expect(second.multiaddrs[0]).toMatch(new RegExp(`/p2p/${first.peerId}$`))
  })

  it('refuses a key file that group or others can read, or that is not a key, with exit code 2', async () => {
    const dir = tempDir()
    const key = join(dir, 'relay.key')
    const relay = await spawnRelay({ args: ['--identity', key] })
    expect(await relay.stop()).toBe(0)
    chmodSync(key, 0o644)
    let result = await run(['--identity', key])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/accessible by group or others \(mode 0644\).*chmod 600/)

    const junk = join(dir, 'junk.key')
    writeFileSync(junk, 'not a key', { mode: 0o600 })
    result = await run(['--identity', junk])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/is not a libp2p private key/)
  })

  it('refuses, with exit code 2 and one line naming --identity, to start on a key file another running relay holds', async () => {
    const key = join(tempDir(), 'shared.key')
    const first = await spawnRelay({ args: ['--identity', key] })
    try {
      const started = Date.now()
      const second = await run(['--identity', key, '--listen', '/ip4/127.0.0.1/tcp/0/ws'])
      expect(second.code).toBe(2)
      const lines = second.stderr.trim().split('\n')
      expect(lines[0]).toMatch(/^p2p-rooms-relay: error: the identity file .*shared\.key is in use by another running relay.*--identity <file>$/)
      expect(lines[1]).toBe('(see p2p-rooms-relay --help)')
      expect(second.stdout).toBe('')
      // it waited for the lock to go stale, and the holder kept it fresh
      expect(Date.now() - started).toBeLessThan(IDENTITY_LOCK_STALE_MS + 5_000)
      expect((await status(first.httpUrl)).peerId).toBe(first.peerId)
    } finally {
      expect(await first.stop()).toBe(0)
    }
    // a relay stopped cleanly releases it at once
    const again = await spawnRelay({ args: ['--identity', key] })
    expect(again.peerId).toBe(first.peerId)
    expect(await again.stop()).toBe(0)
  })

  it('restarts on the key of a relay killed with SIGKILL once its lock is stale', async () => {
    const key = join(tempDir(), 'killed.key')
    const first = await spawnRelay({ args: ['--identity', key] })
    first.process.kill('SIGKILL')
    await new Promise((resolve) => first.process.once('exit', resolve))
    const killedAt = Date.now()
    const second = await spawnRelay({ args: ['--identity', key], timeout: IDENTITY_LOCK_STALE_MS + 20_000 })
    try {
      expect(second.peerId).toBe(first.peerId)
      expect(Date.now() - killedAt).toBeLessThan(IDENTITY_LOCK_STALE_MS + 10_000)
    } finally {
      expect(await second.stop()).toBe(0)
    }
  })

  it('refuses to --peer itself, with exit code 2', async () => {
    const key = join(tempDir(), 'self.key')
    const relay = await spawnRelay({ args: ['--identity', key] })
    const self = relay.multiaddrs[0]
    expect(await relay.stop()).toBe(0)
    const result = await run(['--identity', key, '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--peer', self])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--peer .* is this relay itself/)
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })

  it('advertises and prints its --announce addresses instead of its listen addresses', async () => {
    const relay = await spawnRelay({ args: ['--announce', '/dns4/relay.example.com/tcp/443/tls/ws'] })
    try {
      expect(relay.multiaddrs).toEqual([`/dns4/relay.example.com/tcp/443/tls/ws/p2p/${relay.peerId}`])
      expect((await status(relay.httpUrl)).multiaddrs).toEqual(relay.multiaddrs)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it('closes its connections and exits 0 on SIGTERM', async () => {
    const relay = await spawnRelay()
    const peer = await client()
    const conn = await peer.dial(multiaddr(relay.multiaddrs[0]))
    const closed = new Promise<void>((resolve) => { conn.addEventListener('close', () => { resolve() }, { once: true }) })
    expect(await within(relay.stop(), 20_000, 'shutdown')).toBe(0)
    await within(closed, 10_000, 'the client seeing its connection close')
    expect(peer.getConnections()).toHaveLength(0)
  })

  it('prints one multiaddr per listen address on stdout, ending in its peer ID, and exits 0 on SIGTERM', async () => {
    const relay = await spawnRelay({ listen: ['/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/tcp/0/ws'] })
    expect(relay.multiaddrs).toHaveLength(2)
    const peerId = relay.multiaddrs[0].split('/p2p/')[1]
    for (const ma of relay.multiaddrs) expect(ma).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${peerId}$`))
    const health = await fetch(`${relay.httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(await relay.stop()).toBe(0)
  })

  // pino.destination(2) looped forever on EPIPE (sonic-boom 4.2.1), so a relay whose log reader
  // had gone never finished its shutdown
  it('still exits 0 on SIGTERM after whoever read its logs went away', async () => {
    const relay = await spawnRelay()
    relay.process.stdout?.destroy()
    relay.process.stderr?.destroy()
    expect(await within(relay.stop(), 20_000, 'shutdown')).toBe(0)
  })
})
