/**
 * A client that stops reading must not make a real relay process queue what it sends it without
 * bound. The client reaches the relay through a TCP proxy that stops forwarding the relay's bytes;
 * another client floods the room with announcements (32 MB). The relay drops its stream to the
 * stalled client at 4 MiB queued instead of holding the flood for it: once the proxy forwards
 * again, the client gets a small part of the flood, not all of it, and the relay serves everyone
 * else throughout.
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
  const upstreams: Socket[] = []
  const clients: Socket[] = []
  let stalled = false
  const server: Server = createServer((client) => {
    clients.push(client)
    const upstream = connect(port, '127.0.0.1')
    upstreams.push(upstream)
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.pipe(upstream)
    upstream.pipe(client)
    if (stalled) upstream.pause()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    stall: () => {
      stalled = true
      for (const u of upstreams) { u.unpipe(); u.pause() }
    },
    resume: () => {
      stalled = false
      for (const u of upstreams) u.resume()
    },
    close: async () => {
      for (const socket of [...upstreams, ...clients]) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
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
      await expect.poll(() => publisher.services.pubsub.getMeshPeers(topic).length + stalled.services.pubsub.getMeshPeers(topic).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2)

      proxy.stall()
      // the largest announcement the relay forwards, 8 x 4 KiB = 32 MB in all
      const me = publisher.peerId.toString()
      const FLOOD = 8000
      const pad = 'x'.repeat(Math.floor((MAX_ANNOUNCEMENT_BYTES - 200) / 16) - 60 - me.length)
      for (let i = 0; i < FLOOD; i++) {
        const addrs = Array.from({ length: 16 }, (_, j) => `/dns4/${pad}${i}-${j}.example/tcp/443/tls/ws/p2p/${me}`)
        await publisher.services.pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'announce', addrs }))
      }
      // the relay serves others meanwhile: a client arriving now gets the next announcement
      const fresh = await gossipClient(relay.multiaddrs[0])
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
