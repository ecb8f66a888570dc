/**
 * A room node speaks one gossipsub protocol (src/gossipsub.ts), and one whose gossipsub stream
 * with its relay is reset, while the connection stays open,
 * gets both streams back (src/pubsub-streams.ts). Real room nodes and a real relay process.
 */
import { afterEach, describe, expect, inject, it } from 'vitest'
import { RELAY_PUBSUB_GRACE_MS } from '../../src/constants.js'
import { createRoomNode } from '../../src/index.js'
import { joinedAll, stopAll, uniqueRoom } from './helpers.js'
import type { Room, RoomNode } from '../../src/index.js'
import type { Connection } from '@libp2p/interface'

const relayAddr = inject('relayAddr')
const relayPeer = relayAddr.split('/p2p/')[1]

let members: Array<{ node: RoomNode, room: Room }> = []
afterEach(async () => {
  await stopAll(members)
  members = []
})

const gossipsubStreams = (conn: Connection): string[] => conn.streams.filter((s) => s.protocol?.startsWith('/meshsub/') === true).map((s) => s.direction).sort()

describe('a room node\'s gossipsub streams with its relay', () => {
  // one protocol lets multistream-select open a stream without a round trip (src/gossipsub.ts)
  it('speak /meshsub/1.2.0 alone, both ways', async () => {
    const a = await createRoomNode({ relays: [relayAddr] })
    members.push({ node: a, room: await a.joinRoom(uniqueRoom('pubsub-protocol')) })
    const handled = a.libp2p.getProtocols().filter((p) => p.startsWith('/meshsub/') || p.startsWith('/floodsub/'))
    expect(handled).toEqual(['/meshsub/1.2.0'])
    const conn = a.libp2p.getConnections().find((c) => c.remotePeer.toString() === relayPeer)
    if (conn === undefined) throw new Error('no connection to the relay')
    await expect.poll(() => gossipsubStreams(conn), { timeout: 10_000 }).toEqual(['inbound', 'outbound'])
    expect(conn.streams.filter((s) => s.protocol?.startsWith('/meshsub/') === true).map((s) => s.protocol)).toEqual(['/meshsub/1.2.0', '/meshsub/1.2.0'])
  })

  // without the guard, gossipsub 17.1.1 never opens a stream again while the connection stays
  // open (libp2p/js-libp2p#2771): the member below was never met (25–30 s, in every run)
  it('are made anew when one is reset, and a newcomer then meets the member', async () => {
    const name = uniqueRoom('pubsub-reset')
    const a = await createRoomNode({ relays: [relayAddr] })
    members.push({ node: a, room: await a.joinRoom(name) })
    const first = a.libp2p.getConnections().find((c) => c.remotePeer.toString() === relayPeer)
    if (first === undefined) throw new Error('no connection to the relay')
    await expect.poll(() => gossipsubStreams(first), { timeout: 10_000 }).toEqual(['inbound', 'outbound'])

    // our stream to the relay is reset under gossipsub; the connection stays open
    const closed = new Promise<string>((resolve) => { first.addEventListener('close', (evt) => { resolve(evt.error?.name ?? 'none') }, { once: true }) })
    first.streams.find((s) => s.protocol?.startsWith('/meshsub/') === true && s.direction === 'outbound')?.abort(new Error('reset by the test'))
    expect(first.status).toBe('open')

    const b = await createRoomNode({ relays: [relayAddr] })
    members.push({ node: b, room: await b.joinRoom(name) })
    // the guard gives a connection RELAY_PUBSUB_GRACE_MS after identify to have both streams
    expect(await closed).toBe('PubSubStreamLostError')
    await Promise.all([
      joinedAll(members[0].room, [b.peerId], RELAY_PUBSUB_GRACE_MS + 30_000),
      joinedAll(members[1].room, [a.peerId], RELAY_PUBSUB_GRACE_MS + 30_000)
    ])
    // the relay set dialed it again: a new connection, with both streams
    await expect.poll(() => {
      const now = a.libp2p.getConnections().find((c) => c.remotePeer.toString() === relayPeer && c.status === 'open')
      return now === undefined ? [] : gossipsubStreams(now)
    }, { timeout: 10_000 }).toEqual(['inbound', 'outbound'])
  })
})
