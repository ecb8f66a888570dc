/**
 * The relay closes a peer's connection that lost a gossipsub stream (src/pubsub-streams.ts, which
 * relay/src/relay.ts runs on every connection): the peer then dials again and gets both streams.
 * A plain gossipsub client stands in for the peer: it has no such guard of its own, so whatever
 * closes its connection is the relay.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { DISCOVERY_TOPIC_PREFIX, RELAY_PUBSUB_GRACE_MS } from '../../src/constants.js'
import { gossipClient, stopClients } from './clients.js'
import type { Connection } from '@libp2p/interface'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')
const losses = async (): Promise<number> => (await (await fetch(`${relayHttp}/status`)).json()).counters.pubsubStreamLosses

afterAll(stopClients)

const gossipsubStreams = (conn: Connection): string[] => conn.streams.filter((s) => s.protocol?.startsWith('/meshsub/') === true).map((s) => s.direction).sort()

describe('relay and a peer\'s gossipsub streams', () => {
  it('closes the connection of a peer whose gossipsub stream to it was reset, the connection still open', async () => {
    // it keeps its connection through a late ping: whatever closes it is the relay
    const client = await gossipClient(relayAddr)
    const conn = client.getConnections()[0]
    await expect.poll(() => gossipsubStreams(conn), { timeout: 10_000 }).toEqual(['inbound', 'outbound'])
    const lossesBefore = await losses()
    const closed = new Promise<number>((resolve) => { conn.addEventListener('close', () => { resolve(Date.now()) }, { once: true }) })

    conn.streams.find((s) => s.protocol?.startsWith('/meshsub/') === true && s.direction === 'outbound')?.abort(new Error('reset by the test'))
    expect(conn.status).toBe('open')
    // at most the grace after the relay identified us (it did before both streams were up)
    const late = new Promise<undefined>((resolve) => { setTimeout(resolve, RELAY_PUBSUB_GRACE_MS + 5_000, undefined) })
    const at = await Promise.race([closed, late])
    expect(at, 'the relay closed our connection').toBeDefined()
    // and counted it, for its operator
    await expect.poll(losses).toBeGreaterThan(lossesBefore)

    // dialed again, the peer has both streams: the relay hears its subscriptions and it the relay's
    const again = await client.dial(multiaddr(relayAddr))
    await expect.poll(() => gossipsubStreams(again), { timeout: 10_000 }).toEqual(['inbound', 'outbound'])
    const pubsub = client.services.pubsub
    const topic = `${DISCOVERY_TOPIC_PREFIX}pubsub-streams-${Date.now()}`
    pubsub.subscribe(topic)
    await expect.poll(() => pubsub.getSubscribers(topic).map(String), { timeout: 10_000 }).toContain(relayAddr.split('/p2p/')[1])
  })
})
