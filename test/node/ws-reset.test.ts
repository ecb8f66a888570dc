/**
 * An aborted WebSocket connection closes its socket, both ways
 * (patches/@libp2p+websockets+10.1.21.patch, `sendReset`), against a real relay process of the
 * test's own, so that its `/status` counts this test's connections only.
 *
 * `@libp2p/websockets` 10.1.21 reset a connection with `websocket.close(1006)`, which throws
 * (1006 is reserved for a closure without a close frame, RFC 6455 7.4.1): the error was logged and
 * the socket stayed open. Whoever aborted forgot the connection; the other side kept it, with its
 * reservation and its gossipsub streams, until a ping failed, and a tab, whose pings never close
 * a connection (src/node-config.ts), kept it for good. The relay aborts connections for its limits
 * and its ping, a tab for its gossipsub streams (src/pubsub-streams.ts) and when it comes back online.
 * test/relay/pubsub-streams.int.test.ts covers the relay aborting: the client sees its close.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Libp2p } from 'libp2p'

let relay: SpawnedRelay
let client: Libp2p
beforeAll(async () => {
  relay = await spawnRelay()
  client = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify() }
  })
})
afterAll(async () => {
  await client?.stop()
  await relay?.stop()
})

const relayConnections = async (): Promise<number> => (await (await fetch(`${relay.httpUrl}/status`)).json()).connections

describe('an aborted WebSocket connection', () => {
  it('closes its socket, so the relay forgets the connection too', async () => {
    const conn = await client.dial(multiaddr(relay.multiaddrs[0]))
    await expect.poll(relayConnections, { timeout: 10_000 }).toBe(1)
    conn.abort(new Error('aborted by the test'))
    expect(conn.status).toBe('aborted')
    // without the patch it stayed until the relay's ping failed: 30 s and more
    await expect.poll(relayConnections, { timeout: 5_000 }).toBe(0)
  })
})
