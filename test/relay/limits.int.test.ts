/**
 * Every limit of the relay, each on a real relay process started with that limit set low: a
 * client over the limit is refused cleanly (a refused dial, a RESERVE status), the refusal is
 * counted by reason in /metrics and logged, and the relay keeps serving everyone else.
 *
 * Per-IP limits need two source addresses: the relay listens on 0.0.0.0, one client dials it on
 * 127.0.0.1 and another on this machine's non-loopback address.
 */
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DISCOVERY_TOPIC_PREFIX } from '../../src/constants.js'
import { encodeAnnouncement } from '../../src/wire.js'
import { CircuitStatus, client, echo, gossipClient, HopMessage, metrics, on, otherIp, reserve, reserved, status, StopMessage, stopClients, stopHandler, value } from './clients.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Connection } from '@libp2p/interface'

const ip2 = otherIp()

/** A relay started with `args`, keeping its log lines. */
async function relayWith (args: string[], listen?: string[]): Promise<SpawnedRelay & { logs: Array<Record<string, any>> }> {
  const logs: Array<Record<string, any>> = []
  const relay = await spawnRelay({ listen, args, onLog: (entry) => logs.push(entry) })
  return Object.assign(relay, { logs })
}

const refusals = async (relay: SpawnedRelay, reason: string): Promise<number> =>
  value(await metrics(relay.httpUrl), 'p2p_rooms_relay_refusals_total', { reason })

afterEach(async () => { await stopClients() })

describe('relay connection limits', () => {
  it('refuses connections beyond --max-connections and keeps the ones it holds', async () => {
    const relay = await relayWith(['--max-connections', '1'])
    try {
      const served = await client()
      await served.dial(multiaddr(relay.multiaddrs[0]))
      const refused = await client()
      await expect(refused.dial(multiaddr(relay.multiaddrs[0]))).rejects.toThrow()

      expect(await served.services.ping.ping(multiaddr(relay.multiaddrs[0]))).toBeGreaterThanOrEqual(0)
      expect(await refusals(relay, 'max_connections')).toBeGreaterThanOrEqual(1)
      expect(relay.logs.some((l) => l.msg === 'connection refused' && l.reason === 'max-connections' && l.ip === '127.0.0.1')).toBe(true)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it.skipIf(ip2 === undefined)('refuses a burst from one IP beyond --inbound-connection-threshold while another IP connects', async () => {
    const relay = await relayWith(['--inbound-connection-threshold', '2', '--log-level', 'debug'], ['/ip4/0.0.0.0/tcp/0/ws'])
    try {
      const burst = await Promise.all(Array.from({ length: 6 }, async () => client()))
      const results = await Promise.allSettled(burst.map(async (c) => c.dial(multiaddr(on(relay.multiaddrs, '127.0.0.1')))))
      expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThanOrEqual(1)

      const other = await client()
      await other.dial(multiaddr(on(relay.multiaddrs, ip2 as string)))
      expect(await other.services.ping.ping(multiaddr(on(relay.multiaddrs, ip2 as string)))).toBeGreaterThanOrEqual(0)
      expect(await refusals(relay, 'connection_rate')).toBeGreaterThanOrEqual(1)
      expect(relay.logs.some((l) => l.msg === 'connection refused' && l.reason === 'connection-rate')).toBe(true)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })
})

describe('relay reservation limits', () => {
  it('answers RESERVATION_REFUSED beyond --max-reservations, and frees the slot when its peer leaves', async () => {
    const relay = await relayWith(['--max-reservations', '1'])
    const addr = relay.multiaddrs[0]
    try {
      const first = await client()
      expect(await reserve(first, addr)).toBe('OK')
      const second = await client()
      expect(await reserve(second, addr)).toBe('RESERVATION_REFUSED')
      // a peer refreshing the reservation it holds is not a new one
      expect(await reserve(first, addr)).toBe('OK')
      await expect.poll(async () => refusals(relay, 'max_reservations')).toBe(1)
      let samples = await metrics(relay.httpUrl)
      expect(value(samples, 'p2p_rooms_relay_reservations')).toBe(1)
      expect(value(samples, 'p2p_rooms_relay_reservations_opened_total')).toBe(1)
      expect(relay.logs.some((l) => l.msg === 'reservation refused' && l.reason === 'max-reservations' && l.peerId === second.peerId.toString())).toBe(true)

      // libp2p alone would hold the departed peer's slot for its 2 h TTL
      await first.stop()
      await expect.poll(async () => (await status(relay.httpUrl)).connectedPeers, { timeout: 10_000 }).toBe(1)
      expect(await reserve(second, addr)).toBe('OK')
      samples = await metrics(relay.httpUrl)
      expect(value(samples, 'p2p_rooms_relay_reservations')).toBe(1)
      expect(value(samples, 'p2p_rooms_relay_reservations_opened_total')).toBe(2)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it.skipIf(ip2 === undefined)('answers PERMISSION_DENIED beyond --max-reservations-per-ip while another IP reserves', async () => {
    const relay = await relayWith(['--max-reservations-per-ip', '1'], ['/ip4/0.0.0.0/tcp/0/ws'])
    const loopback = on(relay.multiaddrs, '127.0.0.1')
    try {
      const [a1, a2, b] = await Promise.all([client(), client(), client()])
      expect(await reserve(a1, loopback)).toBe('OK')
      expect(await reserve(a2, loopback)).toBe('PERMISSION_DENIED')
      expect(await reserve(b, on(relay.multiaddrs, ip2 as string))).toBe('OK')
      expect(await reserve(a1, loopback)).toBe('OK')

      expect(await refusals(relay, 'reservations_per_ip')).toBe(1)
      expect(value(await metrics(relay.httpUrl), 'p2p_rooms_relay_reservations')).toBe(2)
      expect(relay.logs.some((l) => l.msg === 'reservation refused' && l.reason === 'reservations-per-ip' && l.ip === '127.0.0.1')).toBe(true)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })
})

describe('relay circuit limits', () => {
  // half the duration limit is what counts as an early close (a WebRTC upgrade estimate)
  const DURATION_MS = 4000
  let relay: SpawnedRelay
  beforeAll(async () => {
    relay = await spawnRelay({ args: ['--circuit-duration-limit', String(DURATION_MS), '--circuit-data-limit', '4096'] })
  })
  afterAll(async () => { expect(await relay.stop()).toBe(0) })

  /** A destination holding a reservation, and a dialer holding a circuit (relayed connection) to it. */
  async function circuit (): Promise<{ closed: Promise<number>, conn: Connection, dialer: Awaited<ReturnType<typeof client>> }> {
    const destination = await client(relay.multiaddrs[0])
    const circuitAddr = await reserved(destination)
    const dialer = await client()
    const conn = await dialer.dial(multiaddr(circuitAddr))
    expect(conn.limits).toBeDefined()
    const opened = Date.now()
    const closed = new Promise<number>((resolve) => {
      conn.addEventListener('close', () => { resolve(Date.now() - opened) }, { once: true })
    })
    return { closed, conn, dialer }
  }

  const closedBy = async (by: string): Promise<number> => value(await metrics(relay.httpUrl), 'p2p_rooms_relay_circuits_closed_total', { by })

  it('counts a circuit its endpoint closes early as an upgrade', async () => {
    const before = await metrics(relay.httpUrl)
    const { conn } = await circuit()
    await echo(conn, 32)
    await conn.close()

    await expect.poll(async () => closedBy('endpoint'), { timeout: 10_000 }).toBe(value(before, 'p2p_rooms_relay_circuits_closed_total', { by: 'endpoint' }) + 1)
    const after = await metrics(relay.httpUrl)
    expect(value(after, 'p2p_rooms_relay_circuits_opened_total')).toBe(value(before, 'p2p_rooms_relay_circuits_opened_total') + 1)
    expect(value(after, 'p2p_rooms_relay_webrtc_upgrades_total')).toBe(value(before, 'p2p_rooms_relay_webrtc_upgrades_total') + 1)
  })

  it('closes a circuit at --circuit-data-limit and keeps serving', async () => {
    const { conn, closed } = await circuit()
    await echo(conn, 256)
    await expect(echo(conn, 8192)).rejects.toThrow()
    await closed
    await expect.poll(async () => closedBy('data_limit'), { timeout: 10_000 }).toBe(1)
    // the relay still relays: a fresh circuit carries a ping
    const next = await circuit()
    await echo(next.conn, 256)
  })

  // the relay sends what a dialer sends behind its CONNECT on before the destination answers
  // (patches/@libp2p+circuit-relay-v2+4.2.13.patch): those bytes count in the limit too
  it('counts what a dialer sends before the destination answers in --circuit-data-limit', async () => {
    const before = await closedBy('data_limit')
    // a destination that accepts every STOP and then reads nothing: it neither upgrades nor
    // resets, so whatever closes the circuit is the relay
    const destination = await stopHandler(relay.multiaddrs[0], (stream) => {
      void pbStream(stream).pb(StopMessage).write({ type: StopMessage.Type.STATUS, status: CircuitStatus.OK })
    })
    const dialer = await client()
    const conn = await dialer.dial(multiaddr(relay.multiaddrs[0]))
    const stream = await conn.newStream(RELAY_V2_HOP_CODEC)
    const hop = pbStream(stream).pb(HopMessage)
    await hop.write({ type: HopMessage.Type.CONNECT, peer: { id: destination.peerId.toMultihash().bytes, addrs: [] } })
    // 6 KiB behind the CONNECT, over the 4 KiB limit, before any answer
    stream.send(new Uint8Array(6144))
    const answer = await hop.read({ signal: AbortSignal.timeout(10_000) }).then((m) => String(m.status), (err: Error) => err.name)
    // no circuit: the relay closed it for its data limit instead of answering OK
    expect(answer).not.toBe('OK')
    await expect.poll(async () => closedBy('data_limit'), { timeout: 10_000 }).toBe(before + 1)
  })

  it('closes a circuit at --circuit-duration-limit', async () => {
    const { conn, closed } = await circuit()
    await echo(conn, 32)
    const lived = await closed
    expect(lived).toBeGreaterThanOrEqual(DURATION_MS - 500)
    await expect.poll(async () => closedBy('duration_limit'), { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
  })
})

describe('relay room limit', () => {
  it('follows no more than --max-rooms rooms, counting the ones it refuses', async () => {
    const relay = await relayWith(['--max-rooms', '1'])
    const node = await gossipClient(relay.multiaddrs[0])
    try {
      const pubsub = node.services.pubsub
      const [kept, refused] = [`${DISCOVERY_TOPIC_PREFIX}kept-${Date.now()}`, `${DISCOVERY_TOPIC_PREFIX}refused-${Date.now()}`]
      pubsub.subscribe(kept)
      await expect.poll(() => pubsub.getSubscribers(kept).map(String), { timeout: 10_000 }).toContain(relay.peerId)
      pubsub.subscribe(refused)
      await expect.poll(async () => refusals(relay, 'max_rooms'), { timeout: 10_000 }).toBe(1)
      expect(pubsub.getSubscribers(refused).map(String)).not.toContain(relay.peerId)
      const s = await status(relay.httpUrl)
      expect(s.roomsFollowed).toBe(1)
      expect(s.counters.refusals['max-rooms']).toBe(1)
    } finally {
      await node.stop()
      expect(await relay.stop()).toBe(0)
    }
  })
})

describe('relay room quotas', () => {
  it('keeps following genuine rooms while 11 connections subscribe to 1,000 topics each', async () => {
    const relay = await relayWith([])
    try {
      const memory = async (): Promise<{ rss: number, heap: number }> => {
        const samples = await metrics(relay.httpUrl)
        return { rss: value(samples, 'process_resident_memory_bytes'), heap: value(samples, 'nodejs_heap_size_used_bytes') }
      }
      const before = await memory()
      // the flood: about 11 connections of 1,000 topics filled the 10,000-room cap
      const flood = await Promise.all(Array.from({ length: 11 }, async () => gossipClient(relay.multiaddrs[0])))
      for (const [i, node] of flood.entries()) {
        for (let t = 0; t < 1000; t++) node.services.pubsub.subscribe(`${DISCOVERY_TOPIC_PREFIX}flood-${i}-${t}-${Date.now()}`)
      }
      // gossipsub itself takes about 960 topics of this length per peer (maxTopicBytesPerPeer)
      await expect.poll(async () => (await status(relay.httpUrl)).counters.refusals['rooms-per-peer'], { timeout: 30_000, interval: 500 }).toBeGreaterThanOrEqual(11 * (900 - 64))
      const during = await memory()

      const genuine = await gossipClient(relay.multiaddrs[0])
      const room = `${DISCOVERY_TOPIC_PREFIX}genuine-${Date.now()}`
      genuine.services.pubsub.subscribe(room)
      await expect.poll(() => genuine.services.pubsub.getSubscribers(room).map(String), { timeout: 10_000 }).toContain(relay.peerId)
      const s = await status(relay.httpUrl)
      expect(s.roomsFollowed).toBe(11 * 64 + 1)
      expect(s.counters.refusals['max-rooms']).toBe(0)
      expect(value(await metrics(relay.httpUrl), 'p2p_rooms_relay_refusals_total', { reason: 'rooms_per_peer' })).toBe(s.counters.refusals['rooms-per-peer'])
      console.log(`relay under a flood of 11 connections x 1,000 discovery topics: RSS ${mib(before.rss)} -> ${mib(during.rss)} MiB, ` +
        `heap ${mib(before.heap)} -> ${mib(during.heap)} MiB; ${s.roomsFollowed} rooms followed, ${s.counters.refusals['rooms-per-peer']} subscriptions refused`)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })

  it('drops announcements beyond --announcements-per-second from one peer', async () => {
    const relay = await relayWith(['--announcements-per-second', '1', '--max-rooms-per-peer', '2'])
    try {
      const topic = `${DISCOVERY_TOPIC_PREFIX}rate-${Date.now()}`
      const [sender, receiver] = await Promise.all([gossipClient(relay.multiaddrs[0]), gossipClient(relay.multiaddrs[0])])
      let got = 0
      receiver.services.pubsub.addEventListener('message', (e) => { if (e.detail.topic === topic) got++ })
      for (const c of [sender, receiver]) c.services.pubsub.subscribe(topic)
      await expect.poll(() => [sender, receiver].every((c) => c.services.pubsub.getSubscribers(topic).map(String).includes(relay.peerId)), { timeout: 10_000 }).toBe(true)
      const me = sender.peerId.toString()
      for (let i = 0; i < 10; i++) {
        await sender.services.pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/ip4/127.0.0.1/tcp/${i + 1}/ws/p2p/${relay.peerId}/p2p-circuit/webrtc/p2p/${me}`] }))
      }
      await expect.poll(async () => refusals(relay, 'announcement_rate'), { timeout: 10_000 }).toBeGreaterThanOrEqual(7)
      // the burst (2) and what refilled meanwhile got through, the rest did not
      expect(got).toBeGreaterThanOrEqual(2)
      expect(got).toBeLessThanOrEqual(3)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })
})

function mib (bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1)
}
