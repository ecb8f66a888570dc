/**
 * The WebSockets port of a real relay process against connections that never become libp2p
 * connections: TCP connections that never send a byte, HTTP upgrades never finished, WebSockets
 * that never start Noise. Each counts toward --max-connections from its first moment and is
 * closed after --handshake-timeout; the relay keeps serving real clients.
 */
import { connect } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { MAX_HANDSHAKES_PER_IP } from '../../relay/src/constants.js'
import { client, idleSockets, metrics, stopClients, value } from './clients.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'

afterEach(async () => { await stopClients() })

const refusals = async (relay: SpawnedRelay, reason: string): Promise<number> =>
  value(await metrics(relay.httpUrl), 'p2p_rooms_relay_refusals_total', { reason })

function hostPort (relay: SpawnedRelay): { host: string, port: number } {
  const [, , host, , port] = relay.multiaddrs[0].split('/')
  return { host, port: Number(port) }
}

/** A real client can still connect and ping the relay. */
async function serves (relay: SpawnedRelay): Promise<void> {
  const c = await client()
  expect(await c.services.ping.ping(multiaddr(relay.multiaddrs[0]))).toBeGreaterThanOrEqual(0)
  await c.stop()
}

describe('relay WebSockets port against idle and unfinished connections', () => {
  it('counts sockets that never send a byte toward --max-connections and closes them after --handshake-timeout', async () => {
    const relay = await spawnRelay({ args: ['--max-connections', '8', '--handshake-timeout', '1500'] })
    try {
      const { host, port } = hostPort(relay)
      const opened = Date.now()
      const sockets = await idleSockets(host, port, 40)
      // beyond the 8 the relay holds, every socket is closed at once
      await expect.poll(() => sockets.filter((s) => s.closedAt !== undefined).length, { timeout: 2_000 }).toBeGreaterThanOrEqual(32)
      expect(value(await metrics(relay.httpUrl), 'p2p_rooms_relay_handshakes')).toBe(8)
      // and the 8 are closed once their handshake time is up
      await expect.poll(() => sockets.every((s) => s.closedAt !== undefined), { timeout: 5_000 }).toBe(true)
      const held = sockets.map((s) => (s.closedAt as number) - opened).sort((a, b) => b - a).slice(0, 8)
      for (const ms of held) expect(ms).toBeGreaterThanOrEqual(1_400)
      expect(Math.max(...held)).toBeLessThan(4_000)

      const samples = await metrics(relay.httpUrl)
      expect(value(samples, 'p2p_rooms_relay_refusals_total', { reason: 'max_connections' })).toBeGreaterThanOrEqual(32)
      expect(value(samples, 'p2p_rooms_relay_refusals_total', { reason: 'handshake_timeout' })).toBe(8)
      expect(value(samples, 'p2p_rooms_relay_handshakes')).toBe(0)
      await serves(relay)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it('closes a WebSocket upgrade never finished, and a WebSocket that never starts Noise', async () => {
    const relay = await spawnRelay({ args: ['--handshake-timeout', '1500'] })
    try {
      const { host, port } = hostPort(relay)
      const halfUpgrade = connect(port, host)
      halfUpgrade.on('error', () => {})
      halfUpgrade.write('GET / HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')
      const upgradeClosed = new Promise<void>((resolve) => halfUpgrade.once('close', () => { resolve() }))
      // a complete WebSocket, then silence: no multistream-select, no Noise
      const ws = new WebSocket(`ws://${host}:${port}`)
      const wsOpened = new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve() }); ws.once('error', reject) })
      const wsClosed = new Promise<void>((resolve) => ws.once('close', () => { resolve() }))
      await wsOpened
      const started = Date.now()
      await Promise.all([upgradeClosed, wsClosed])
      expect(Date.now() - started).toBeLessThan(5_000)
      expect(await refusals(relay, 'handshake_timeout')).toBeGreaterThanOrEqual(1)
      await serves(relay)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it(`keeps one IP to ${MAX_HANDSHAKES_PER_IP} unfinished handshakes while another IP connects`, async () => {
    // every 127.x.y.z address is this machine's loopback: a second source address for free
    const relay = await spawnRelay({ listen: ['/ip4/127.0.0.1/tcp/0/ws'], args: ['--handshake-timeout', '3000'] })
    try {
      const { host, port } = hostPort(relay)
      const sockets = await idleSockets(host, port, MAX_HANDSHAKES_PER_IP + 10)
      await expect.poll(() => sockets.filter((s) => s.closedAt !== undefined).length, { timeout: 2_000 }).toBeGreaterThanOrEqual(10)
      expect(await refusals(relay, 'handshakes_per_ip')).toBeGreaterThanOrEqual(10)
      const other = connect({ port, host, localAddress: '127.0.0.2' })
      other.on('error', () => {})
      await new Promise<void>((resolve) => other.once('connect', () => { resolve() }))
      expect(value(await metrics(relay.httpUrl), 'p2p_rooms_relay_handshakes')).toBe(MAX_HANDSHAKES_PER_IP + 1)
      other.destroy()
      for (const { socket } of sockets) socket.destroy()
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })
})
