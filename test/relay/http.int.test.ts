/**
 * The relay's HTTP endpoint on a relay of its own (with ICE servers configured): `/metrics`
 * parsed by a real Prometheus text-format parser, `/status`, `/healthz`, `/ice-servers`; and
 * neither `/metrics` nor `/status` ever names a room.
 */
import { createHmac } from 'node:crypto'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { DISCOVERY_TOPIC_PREFIX } from '../../src/constants.js'
import { client, metrics, reserve, status, stopClients, value } from './clients.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { GossipSub } from '@libp2p/gossipsub'

const SECRET = 'relay-test-secret'
const ROOM = `secret-room-${Date.now()}`

describe('relay HTTP endpoint', () => {
  let relay: SpawnedRelay
  let member: Awaited<ReturnType<typeof createLibp2p>>
  beforeAll(async () => {
    relay = await spawnRelay({
      args: ['--ice-server', 'stun:stun.example.com:3478', 'turn:turn.example.com:3478?transport=udp', '--turn-secret', SECRET, '--turn-ttl', '600', '--ice-origins', 'https://app.example.com']
    })
    // a peer holding a reservation and following a room, so there is something to report
    const holder = await client()
    expect(await reserve(holder, relay.multiaddrs[0])).toBe('OK')
    member = await createLibp2p({
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false },
      services: { identify: identify(), pubsub: gossipsub() }
    })
    const pubsub = member.services.pubsub as GossipSub
    await member.dial(multiaddr(relay.multiaddrs[0]))
    pubsub.subscribe(DISCOVERY_TOPIC_PREFIX + ROOM)
    await vi.waitFor(() => { expect(pubsub.getSubscribers(DISCOVERY_TOPIC_PREFIX + ROOM).map(String)).toContain(relay.peerId) }, { timeout: 10_000, interval: 100 })
  })
  afterAll(async () => {
    await member?.stop()
    await stopClients()
    expect(await relay?.stop()).toBe(0)
  })

  it('serves libp2p\'s metrics and the relay\'s in the Prometheus text format', async () => {
    const res = await fetch(`${relay.httpUrl}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const samples = await metrics(relay.httpUrl)
    const names = new Set(samples.map((s) => s.name))
    for (const name of [
      'p2p_rooms_relay_reservations', 'p2p_rooms_relay_reservations_opened_total', 'p2p_rooms_relay_circuits_opened_total',
      'p2p_rooms_relay_circuits_closed_total', 'p2p_rooms_relay_webrtc_upgrades_total', 'p2p_rooms_relay_connection_attempts_total',
      'p2p_rooms_relay_connection_successes_total', 'p2p_rooms_relay_connection_failures_total', 'p2p_rooms_relay_refusals_total',
      'p2p_rooms_relay_rooms_followed', 'p2p_rooms_relay_connections_total',
      // libp2p's own, and the process's
      'libp2p_circuit_relay_server_reservations_total', 'libp2p_data_transfer_bytes_total', 'nodejs_heap_size_used_bytes'
    ]) expect(names, name).toContain(name)
    expect(value(samples, 'p2p_rooms_relay_reservations')).toBe(1)
    expect(value(samples, 'p2p_rooms_relay_reservations_opened_total')).toBe(1)
    expect(value(samples, 'p2p_rooms_relay_rooms_followed')).toBe(1)
    expect(value(samples, 'p2p_rooms_relay_connection_attempts_total')).toBeGreaterThanOrEqual(2)
    expect(value(samples, 'p2p_rooms_relay_connection_successes_total')).toBeGreaterThanOrEqual(2)
    expect(value(samples, 'p2p_rooms_relay_connections_total', { event: 'open' })).toBeGreaterThanOrEqual(2)
    for (const reason of ['max_connections', 'connection_rate', 'handshake_timeout', 'max_reservations', 'reservations_per_ip', 'max_rooms', 'rooms_per_peer', 'rooms_per_ip', 'announcement_rate', 'http_malformed', 'ice_origin', 'ice_rate']) {
      expect(samples.some((s) => s.name === 'p2p_rooms_relay_refusals_total' && s.labels.reason === reason), reason).toBe(true)
    }
  })

  it('reports its state in /status', async () => {
    const s = await status(relay.httpUrl)
    expect(s.peerId).toBe(relay.peerId)
    expect(s.multiaddrs).toEqual(relay.multiaddrs)
    expect(s.connectedPeers).toBeGreaterThanOrEqual(2)
    expect(s.connections).toBeGreaterThanOrEqual(2)
    expect(s.reservations).toBe(1)
    expect(s.roomsFollowed).toBe(1)
    expect(s.uptimeMs).toBeGreaterThan(0)
    expect(s.counters).toMatchObject({ reservationsOpened: 1, roomsRefused: 0, refusals: { 'max-reservations': 0 }, circuits: { opened: 0 } })
    expect(s.counters.connectionsOpened).toBeGreaterThanOrEqual(2)
    expect(s.limits).toMatchObject({ maxReservations: 1024, maxConnections: 2048 })
    expect(s.transfer.pubsub.received).toBeGreaterThan(0)
  })

  it('never names a room in /metrics or /status', async () => {
    for (const path of ['/metrics', '/status']) {
      const body = await (await fetch(relay.httpUrl + path)).text()
      expect(body, path).not.toContain(ROOM)
      expect(body, path).not.toContain(DISCOVERY_TOPIC_PREFIX)
    }
  })

  it('answers /healthz, and 404 or 405 to anything else', async () => {
    const health = await fetch(`${relay.httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.text()).toBe('ok\n')
    expect((await fetch(`${relay.httpUrl}/nothing`)).status).toBe(404)
    expect((await fetch(`${relay.httpUrl}/status`, { method: 'POST' })).status).toBe(405)
  })

  it('hands out ICE servers with fresh TURN REST credentials to an allowed origin at /ice-servers', async () => {
    const before = Math.floor(Date.now() / 1000)
    const res = await fetch(`${relay.httpUrl}/ice-servers`, { headers: { origin: 'https://app.example.com' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(res.headers.get('content-type')).toBe('application/json')
    const body = await res.json()
    expect(body.ttl).toBe(600)
    expect(body.iceServers).toHaveLength(2)
    expect(body.iceServers[0]).toEqual({ urls: ['stun:stun.example.com:3478'] })
    const turn = body.iceServers[1]
    expect(turn.urls).toEqual(['turn:turn.example.com:3478?transport=udp'])
    const expiry = Number(turn.username.split(':')[0])
    expect(expiry).toBeGreaterThanOrEqual(before + 600)
    expect(expiry).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600)
    expect(turn.credential).toBe(createHmac('sha1', SECRET).update(turn.username).digest('base64'))

    const preflight = await fetch(`${relay.httpUrl}/ice-servers`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
  })
})
