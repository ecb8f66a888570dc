/**
 * A client that stops reading must not make a real relay process queue what it sends it without
 * bound. The client reaches the relay through a TCP proxy that stops forwarding the relay's bytes;
 * another client floods the room with announcements (10 MB). The relay drops its stream to the
 * stalled client at 4 MiB queued instead of holding the flood for it: once the proxy forwards
 * again, the client gets what was in flight (134 of 2,500 here; all 2,500 without the bound), and
 * the relay serves a newcomer.
 */
import { createServer, connect } from 'node:net'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_OUTBOUND_BUFFER_BYTES } from '../../relay/src/constants.js'
import { DISCOVERY_TOPIC_PREFIX, MAX_ANNOUNCEMENT_BYTES } from '../../src/constants.js'
import { encodeAnnouncement } from '../../src/wire.js'
import { gossipClient, stopClients } from './clients.js'
import type { AddressInfo, Server, Socket } from 'node:net'

afterEach(async () => { await stopClients() })

/** A TCP proxy to `port` whose relay-to-client direction can be stopped and resumed. */
async function stallableProxy (port: number): Promise<{ port: number, stall: () => void, resume: () => void, close: () => Promise<void> }> {
  const pairs: Array<{ client: Socket, upstream: Socket }> = []
  let stalled = false
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    pairs.push({ client, upstream })
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.pipe(upstream)
    if (!stalled) upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    // the relay's bytes stay in the kernel's buffers, then in the relay: TCP backpressure
    stall: () => {
      stalled = true
      for (const { upstream, client } of pairs) { upstream.unpipe(client); upstream.pause() }
    },
    resume: () => {
      stalled = false
      for (const { upstream, client } of pairs) upstream.pipe(client)
    },
    close: async () => {
      for (const { upstream, client } of pairs) { upstream.destroy(); client.destroy() }
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

/** A gossip client on `addr`, retrying while the relay is busy with the flood's backlog. */
async function connectWithin (addr: string, ms: number): Promise<Awaited<ReturnType<typeof gossipClient>>> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await gossipClient(addr)
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
}

describe('relay outbound buffers', () => {
  it(`drops its stream to a client that stops reading once ${MAX_OUTBOUND_BUFFER_BYTES / 2 ** 20} MiB are queued for it`, async () => {
    const relay = await spawnRelay({ args: ['--announcements-per-second', '1000000', '--max-rooms-per-peer', '1000000'] })
    const [, , , , relayPort] = relay.multiaddrs[0].split('/')
    const proxy = await stallableProxy(Number(relayPort))
    try {
      const topic = `${DISCOVERY_TOPIC_PREFIX}stalled-${Date.now()}`
      const stalled = await gossipClient(`/ip4/127.0.0.1/tcp/${proxy.port}/ws/p2p/${relay.peerId}`)
      const publisher = await gossipClient(relay.multiaddrs[0])
      let received = 0
      stalled.services.pubsub.addEventListener('message', (e) => { if (e.detail.topic === topic) received++ })
      for (const c of [stalled, publisher]) c.services.pubsub.subscribe(topic)
      await expect.poll(() => [stalled, publisher].every((c) => c.services.pubsub.getSubscribers(topic).map(String).includes(relay.peerId)), { timeout: 10_000 }).toBe(true)
      // both in the relay's mesh for the topic, so it forwards to them at once
      const mesh = (c: typeof stalled): string[] => (c.services.pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(topic)
      await expect.poll(() => mesh(publisher).length + mesh(stalled).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2)

      proxy.stall()
      // the largest announcement the relay forwards, 2,500 x 4 KiB = 10 MB in all: more than the
      // 4 MiB bound and the 256 KiB yamux window in flight together
      const me = publisher.peerId.toString()
      const FLOOD = 2500
      const pad = 'x'.repeat(Math.floor((MAX_ANNOUNCEMENT_BYTES - 200) / 16) - 60 - me.length)
      for (let i = 0; i < FLOOD; i++) {
        const addrs = Array.from({ length: 16 }, (_, j) => `/dns4/${pad}${i}-${j}.example/tcp/443/tls/ws/p2p/${me}`)
        await publisher.services.pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'announce', addrs }))
      }
      // the relay serves others: a client arriving now gets the next announcement
      const fresh = await connectWithin(relay.multiaddrs[0], 30_000)
      let freshGot = 0
      fresh.services.pubsub.addEventListener('message', (e) => { if (e.detail.topic === topic) freshGot++ })
      fresh.services.pubsub.subscribe(topic)
      await expect.poll(async () => {
        await publisher.services.pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/ip4/127.0.0.1/tcp/1/ws/p2p/${me}`] }))
        return freshGot
      }, { timeout: 15_000, interval: 500 }).toBeGreaterThan(0)

      proxy.resume()
      // what reaches the stalled client is what was in flight, then nothing: read until it stops
      let last = -1
      const deadline = Date.now() + 20_000
      while (received !== last && Date.now() < deadline) {
        last = received
        await new Promise((resolve) => setTimeout(resolve, 2_000))
      }
      console.log(`a client that stopped reading during a flood of ${FLOOD} announcements (${(FLOOD * MAX_ANNOUNCEMENT_BYTES / 1e6).toFixed(0)} MB) got ${received} of them once it read again`)
      expect(received).toBeLessThan(FLOOD / 4)
      expect(relay.process.exitCode).toBeNull()
    } finally {
      await proxy.close()
      expect(await relay.stop()).toBe(0)
    }
  }, 120_000)
})
