/**
 * The relay closes a peer's connection that lost a gossipsub stream (src/pubsub-streams.ts, which
 * relay/src/relay.ts runs on every connection): the peer then dials again and gets both streams.
 * A plain gossipsub client stands in for the peer: it has no such guard of its own, so whatever
 * closes its connection is the relay.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { DISCOVERY_TOPIC_PREFIX, RELAY_PUBSUB_GRACE_MS } from '../../src/constants.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Connection } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

const relayAddr = inject('relayAddr')

const clients: Libp2p[] = []
afterAll(async () => { await Promise.all(clients.map(async (c) => { await c.stop() })) })

const gossipsubStreams = (conn: Connection): string[] => conn.streams.filter((s) => s.protocol?.startsWith('/meshsub/') === true).map((s) => s.direction).sort()

describe('relay and a peer\'s gossipsub streams', () => {
  it('closes the connection of a peer whose gossipsub stream to it was reset, the connection still open', async () => {
    const client = await createLibp2p({
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false },
      // a ping answered late on a busy machine must not be what closes the connection
      connectionMonitor: { abortConnectionOnPingFailure: false },
      services: { identify: identify(), pubsub: gossipsub() }
    })
    clients.push(client)
    const conn = await client.dial(multiaddr(relayAddr))
    await expect.poll(() => gossipsubStreams(conn), { timeout: 10_000 }).toEqual(['inbound', 'outbound'])
    const closed = new Promise<number>((resolve) => { conn.addEventListener('close', () => { resolve(Date.now()) }, { once: true }) })

    conn.streams.find((s) => s.protocol?.startsWith('/meshsub/') === true && s.direction === 'outbound')?.abort(new Error('reset by the test'))
    expect(conn.status).toBe('open')
    // at most the grace after the relay identified us (it did before both streams were up)
    const late = new Promise<undefined>((resolve) => { setTimeout(resolve, RELAY_PUBSUB_GRACE_MS + 5_000, undefined) })
    const at = await Promise.race([closed, late])
    expect(at, 'the relay closed our connection').toBeDefined()

    // dialed again, the peer has both streams: the relay hears its subscriptions and it the relay's
    const again = await client.dial(multiaddr(relayAddr))
    await expect.poll(() => gossipsubStreams(again), { timeout: 10_000 }).toEqual(['inbound', 'outbound'])
    const pubsub = client.services.pubsub as GossipSub
    const topic = `${DISCOVERY_TOPIC_PREFIX}pubsub-streams-${Date.now()}`
    pubsub.subscribe(topic)
    await expect.poll(() => pubsub.getSubscribers(topic).map(String), { timeout: 10_000 }).toContain(relayAddr.split('/p2p/')[1])
  })
})
