/**
 * `npm run bench` (or `npx vitest run --project bench test/bench/relay-floods.bench.test.ts`):
 * the memory of a real relay process, with its default limits, under the floods of issue 9:
 *
 * - idle sockets: 2,000 TCP connections that never send a byte, from 40 loopback addresses
 *   (50 each, under the per-IP handshake cap), against --max-connections 2048;
 * - subscriptions: 11 connections subscribing to 1,000 discovery topics each;
 * - HTTP: 1,000 idle connections to the HTTP port.
 *
 * Prints RSS and V8 heap used (from /metrics) before, during and after each flood, beside the
 * relay's own count of what it held and refused. Asserts only that the floods happened as said.
 */
import { connect } from 'node:net'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DISCOVERY_TOPIC_PREFIX } from '../../src/constants.js'
import { gossipClient, metrics, status, stopClients, value } from '../relay/clients.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Socket } from 'node:net'

let relay: SpawnedRelay
beforeAll(async () => { relay = await spawnRelay() })
afterAll(async () => {
  await stopClients()
  await relay.stop()
})

async function memory (): Promise<string> {
  const samples = await metrics(relay.httpUrl)
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1)
  return `RSS ${mib(value(samples, 'process_resident_memory_bytes'))} MiB, heap ${mib(value(samples, 'nodejs_heap_size_used_bytes'))} MiB`
}

async function open (port: number, host: string, localAddress: string): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, localAddress })
    socket.on('error', () => {})
    socket.once('connect', () => { resolve(socket) })
    socket.once('close', () => { resolve(socket) })
  })
}

describe('relay memory under floods', () => {
  it('idle sockets on the WebSockets port', async () => {
    const [, , host, , port] = relay.multiaddrs[0].split('/')
    const before = await memory()
    const sockets: Socket[] = []
    for (let ip = 1; ip <= 40; ip++) {
      sockets.push(...await Promise.all(Array.from({ length: 50 }, async () => open(Number(port), host, `127.0.1.${ip}`))))
    }
    const held = value(await metrics(relay.httpUrl), 'p2p_rooms_relay_handshakes')
    const during = await memory()
    await new Promise<void>((resolve) => { const check = (): void => { if (sockets.every((s) => s.destroyed)) resolve(); else setTimeout(check, 250) }; check() })
    const after = await memory()
    const s = await status(relay.httpUrl)
    console.log(`2,000 idle sockets: ${held} held mid-handshake; before ${before}; during ${during}; after all were closed (${s.counters.refusals['handshake-timeout']} handshake timeouts, ${s.counters.refusals['max-connections']} refused at the cap) ${after}`)
    expect(held).toBeGreaterThan(1000)
  }, 120_000)

  it('1,000 discovery topics on each of 11 connections', async () => {
    const before = await memory()
    const flood = await Promise.all(Array.from({ length: 11 }, async () => gossipClient(relay.multiaddrs[0])))
    for (const [i, node] of flood.entries()) {
      for (let t = 0; t < 1000; t++) node.services.pubsub.subscribe(`${DISCOVERY_TOPIC_PREFIX}bench-${i}-${t}-${Date.now()}`)
    }
    let s = await status(relay.httpUrl)
    while (s.counters.refusals['rooms-per-peer'] < 11 * (900 - 64)) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      s = await status(relay.httpUrl)
    }
    const during = await memory()
    await stopClients()
    console.log(`11 x 1,000 topics: ${s.roomsFollowed} rooms followed, ${s.counters.refusals['rooms-per-peer']} subscriptions refused; before ${before}; during ${during}; after the clients left ${await memory()}`)
    expect(s.roomsFollowed).toBe(11 * 64)
  }, 120_000)

  it('idle connections on the HTTP port', async () => {
    const { hostname, port } = new URL(relay.httpUrl)
    const before = await memory()
    const sockets = await Promise.all(Array.from({ length: 1000 }, async (_, i) => open(Number(port), hostname, `127.0.2.${1 + (i % 200)}`)))
    const during = await memory()
    const refused = (await status(relay.httpUrl)).counters.refusals['http-connections']
    for (const s of sockets) s.destroy()
    console.log(`1,000 idle HTTP connections: ${refused} refused at the cap; before ${before}; during ${during}`)
    expect(refused).toBeGreaterThan(0)
  }, 60_000)
})
