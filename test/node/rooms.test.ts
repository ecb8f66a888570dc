/**
 * Real Node libp2p room nodes (WebRTC through node-datachannel) and a real relay process.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { createRoomNode } from '../../src/index.js'
import { isDirect } from '../../src/paths.js'
import { joinedAll, nextEvent, roomOf, stopAll, uniqueRoom } from './helpers.js'
import type { Room, RoomNode } from '../../src/index.js'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')

interface RelayTransfer { circuit: { sent: number, received: number }, pubsub: { sent: number, received: number } }
async function relayTransfer (): Promise<RelayTransfer> {
  const res = await fetch(`${relayHttp}/status`)
  return (await res.json()).transfer
}

let members: Array<{ node: RoomNode, room: Room }> = []
afterEach(async () => {
  await stopAll(members)
  members = []
})

describe('room over a real relay', () => {
  it('lets two peers find each other, go direct and exchange messages', async () => {
    members = await roomOf(2, relayAddr, uniqueRoom('pair'))
    const [a, b] = members
    await Promise.all([joinedAll(a.room, [b.node.peerId]), joinedAll(b.room, [a.node.peerId])])

    expect(a.room.peers()).toEqual([{ peerId: b.node.peerId, path: 'direct' }])
    expect(b.room.peers()).toEqual([{ peerId: a.node.peerId, path: 'direct' }])
    // the connection that carries room traffic is the WebRTC one, not the relayed circuit
    expect(a.node.libp2p.getConnections(b.node.libp2p.peerId).filter(isDirect)).toHaveLength(1)
    // and the circuit goes: the dialer closes it once direct, and the other side hears of it a
    // moment later (peer:join can come first on the side that did not dial)
    await expect.poll(() => a.node.libp2p.getConnections(b.node.libp2p.peerId).every((c) => c.multiplexer === '/webrtc' && c.limits == null), { timeout: 10_000 }).toBe(true)

    const atB = nextEvent(b.room, 'message')
    const atA = nextEvent(a.room, 'message')
    await a.room.publish('from a')
    await b.room.publish(new TextEncoder().encode('from b'))
    expect((await atB).from).toBe(a.node.peerId)
    expect(new TextDecoder().decode((await atB).data)).toBe('from a')
    expect(new TextDecoder().decode((await atA).data)).toBe('from b')
  })

  it('runs identify with the relay only: neither over the circuit nor over the direct connection', async () => {
    const nodes = await Promise.all([0, 1].map(async () => createRoomNode({ relays: [relayAddr] })))
    // stopped after the test even if joining fails
    members = nodes.map((node) => ({ node, room: undefined as unknown as Room }))
    // identify with a room peer cost each side a stream, a signed peer record and peer store
    // updates per peer met, on the meeting's path (src/relays.ts); the relay needs it to reserve
    const identified: Array<{ by: number, peer: string }> = []
    nodes.forEach((node, by) => {
      node.libp2p.addEventListener('peer:identify', (e) => { identified.push({ by, peer: e.detail.peerId.toString() }) })
    })
    const name = uniqueRoom('identify-relay-only')
    const rooms = await Promise.all(nodes.map(async (node) => node.joinRoom(name)))
    members = nodes.map((node, i) => ({ node, room: rooms[i] }))
    await Promise.all([joinedAll(rooms[0], [nodes[1].peerId]), joinedAll(rooms[1], [nodes[0].peerId])])
    // a round trip each way on the direct connection, long after identify would have started on it
    for (const [i, node] of nodes.entries()) {
      const other = nodes[1 - i].libp2p.peerId
      const direct = node.libp2p.getConnections(other).find(isDirect)
      expect(direct, 'a direct connection').toBeDefined()
      await node.libp2p.services.ping.ping(other)
    }

    const relayId = relayAddr.split('/p2p/').pop()
    expect(identified.filter((i) => i.peer !== relayId)).toEqual([])
    // gossipsub opens its streams once identify has run: it talks to the relay alone (so the
    // relay was identified, before createRoomNode resolved)
    for (const node of nodes) expect(node.libp2p.services.pubsub.getPeers().map(String)).toEqual([relayId])
  })

  it('counts messages and reports each peer\'s path, dials and round-trip time', async () => {
    members = await roomOf(2, relayAddr, uniqueRoom('stats'))
    const [a, b] = members
    await Promise.all([joinedAll(a.room, [b.node.peerId]), joinedAll(b.room, [a.node.peerId])])
    const texts: string[] = []
    const received = new Promise<void>((resolve) => {
      b.room.addEventListener('message', (e) => { if (texts.push(new TextDecoder().decode(e.detail.data)) === 3) resolve() })
    })
    for (let i = 0; i < 3; i++) await a.room.publish(`m${i}`)
    await received

    expect(texts).toEqual(['m0', 'm1', 'm2'])
    expect(a.room.stats().messages).toMatchObject({ sent: 3, received: 0, gaps: 0 })
    expect(b.room.stats().messages).toMatchObject({ sent: 0, received: 3, gaps: 0 })
    expect(b.room.stats().messages.dropped).toEqual({ malformed: 0, tooLarge: 0, rateLimited: 0, notHost: 0, unauthenticated: 0, duplicate: 0, wrongType: 0, notMember: 0 })
    // neither asked the other for a backlog: each one's hello said it held none (FLAG_NO_BACKLOG),
    // so nothing was held back, and no message came twice
    expect([a.room.stats().history.served, b.room.stats().history.served]).toEqual([0, 0])
    // exactly one side dials: the node that started later (direct.ts)
    const dialers = members.filter((x) => x.room.stats().peers[members.find((y) => y !== x)?.node.peerId ?? '']?.dialAttempts > 0)
    expect(dialers).toHaveLength(1)
    const dialer = dialers[0]
    const other = dialer === a ? b : a
    const seen = dialer.room.stats().peers[other.node.peerId]
    expect(seen).toMatchObject({ path: 'direct', joined: true })
    expect(seen.dialAttempts).toBeGreaterThanOrEqual(1)
    expect(seen.dialSuccesses).toBe(1)
    expect(seen.dialAttempts).toBe(seen.dialSuccesses + seen.dialFailures)
    // libp2p's connection monitor pings every 10 s: the first RTT comes with its first ping
    await expect.poll(() => a.room.stats().peers[b.node.peerId]?.rttMs, { timeout: 25_000, interval: 200 }).toBeGreaterThanOrEqual(0)
    expect(a.room.stats().peers[b.node.peerId]?.lastHeardMs).toBeLessThan(10_000)
  })

  // gossipsub lists a peer as subscribed before its outbound stream is open and publish then
  // skips it silently; five newcomers at once give that race five chances per run
  it('delivers a message published right after peer:join to that peer', async () => {
    const name = uniqueRoom('early')
    const [host] = await roomOf(1, relayAddr, name)
    members = [host]
    const sent = new Map<string, Promise<string[]>>()
    host.room.addEventListener('peer:join', (e) => {
      // publish the instant the join is reported, with nothing in between
      sent.set(e.detail.peerId, host.room.publish(`hello ${e.detail.peerId}`).then((r) => r.recipients))
    })
    const newcomers = await Promise.all(Array.from({ length: 5 }, async () => createRoomNode({ relays: [relayAddr] })))
    const greeted = await Promise.all(newcomers.map(async (node) => {
      const room = await node.joinRoom(name)
      members.push({ node, room })
      const text = `hello ${node.peerId}`
      return nextEvent(room, 'message', (m) => new TextDecoder().decode(m.data) === text)
    }))
    expect(greeted.every((m) => m.from === host.node.peerId)).toBe(true)
    for (const node of newcomers) expect(await sent.get(node.peerId)).toContain(node.peerId)
  })

  it('returns the same Room when a name is joined twice', async () => {
    const node = await createRoomNode({ relays: [relayAddr] })
    members = [{ node, room: await node.joinRoom('twice') }]
    expect(await node.joinRoom('twice')).toBe(members[0].room)
    expect(node.getRooms()).toHaveLength(1)
  })

  it('delivers every message exactly once among four peers', async () => {
    members = await roomOf(4, relayAddr, uniqueRoom('four'))
    const ids = members.map((m) => m.node.peerId)
    await Promise.all(members.map(async (m) => { await joinedAll(m.room, ids.filter((id) => id !== m.node.peerId)) }))

    const received = members.map(() => [] as string[])
    members.forEach((m, i) => {
      m.room.addEventListener('message', (e) => { received[i].push(`${e.detail.from}:${new TextDecoder().decode(e.detail.data)}`) })
    })
    const perPeer = 5
    await Promise.all(members.map(async (m) => {
      for (let k = 0; k < perPeer; k++) await m.room.publish(String(k))
    }))
    const expected = (i: number): string[] => ids.filter((_, j) => j !== i).flatMap((id) => Array.from({ length: perPeer }, (_, k) => `${id}:${k}`)).sort()
    await expect.poll(() => received.map((r) => r.length), { timeout: 15_000 }).toEqual(members.map(() => 3 * perPeer))
    received.forEach((r, i) => { expect([...r].sort()).toEqual(expected(i)) })
  })

  it('keeps room traffic off the relay once peers are direct', async () => {
    members = await roomOf(3, relayAddr, uniqueRoom('offrelay'))
    const ids = members.map((m) => m.node.peerId)
    await Promise.all(members.map(async (m) => { await joinedAll(m.room, ids.filter((id) => id !== m.node.peerId)) }))

    const before = await relayTransfer()
    const payload = new Uint8Array(4096).fill(7)
    const count = 50
    const last = members.slice(1).map((m) => nextEvent(m.room, 'message', (d) => d.data[0] === 1))
    for (let k = 0; k < count - 1; k++) await members[0].room.publish(payload)
    await members[0].room.publish(new Uint8Array(4096).fill(1))
    await Promise.all(last)
    const after = await relayTransfer()

    const roomBytes = count * payload.byteLength * (members.length - 1)
    const circuit = (after.circuit.sent + after.circuit.received) - (before.circuit.sent + before.circuit.received)
    const pubsub = (after.pubsub.sent + after.pubsub.received) - (before.pubsub.sent + before.pubsub.received)
    // the relay saw no circuit bytes at all, and only announcement-sized gossip, against ~400 KiB of room traffic
    expect(circuit).toBe(0)
    expect(pubsub).toBeLessThan(roomBytes / 20)
  })

  it('reports peer:leave with reason "left" when a peer leaves', async () => {
    members = await roomOf(2, relayAddr, uniqueRoom('leave'))
    const [a, b] = members
    await joinedAll(a.room, [b.node.peerId])
    const left = nextEvent(a.room, 'peer:leave')
    await b.room.leave()
    expect(await left).toEqual({ peerId: b.node.peerId, reason: 'left' })
    expect(a.room.peers()).toEqual([])
  })

  it('drops the connection to a peer that left, and goes direct again when it rejoins', async () => {
    const name = uniqueRoom('rejoin')
    members = await roomOf(2, relayAddr, name)
    const [a, b] = members
    await Promise.all([joinedAll(a.room, [b.node.peerId]), joinedAll(b.room, [a.node.peerId])])
    const left = nextEvent(a.room, 'peer:leave')
    await b.room.leave()
    await left
    // the side that stayed closes its end too, so no dead connection passes for a direct path
    await expect.poll(() => a.node.libp2p.getConnections(b.node.libp2p.peerId).length, { timeout: 10_000 }).toBe(0)

    const rejoined = nextEvent(a.room, 'peer:join')
    b.room = await b.node.joinRoom(name)
    expect((await rejoined).peerId).toBe(b.node.peerId)
    const got = nextEvent(b.room, 'message')
    expect((await a.room.publish('welcome back')).recipients).toEqual([b.node.peerId])
    expect(new TextDecoder().decode((await got).data)).toBe('welcome back')
    expect(a.node.libp2p.getConnections(b.node.libp2p.peerId).filter(isDirect)).toHaveLength(1)
  })

  it('reports peer:leave when a peer vanishes without leaving', async () => {
    // the side that does not redial waits `dialTakeover` (5 s) before it dials and learns from the
    // relay that the peer holds no reservation: under the full suite's load that raced the presence
    // timeout (8 s after the last heartbeat) and lost ('timeout'), twice, the second time with a
    // 1 s takeover (8.5 s in all). The subject here is the reason the relay gives, not either delay
    members = await roomOf(2, relayAddr, uniqueRoom('vanish'), { dialTakeover: 1_000, presenceTimeout: 30_000 })
    const [a, b] = members
    await joinedAll(a.room, [b.node.peerId])
    // a heals by dialing b at the addresses b announced, and that dial is how the relay's answer
    // comes. a may have met b through b's dial before b's announcement reached it (one failed run:
    // no dial attempted, a's link to b had no address, so only the presence timeout could end
    // it): wait for an announcement of b's at a before b vanishes
    const announced = new Promise<void>((resolve) => {
      a.node.libp2p.services.pubsub.addEventListener('message', (e) => {
        if (e.detail.type === 'signed' && e.detail.from.toString() === b.node.peerId) resolve()
      })
    })
    // b announces once it holds a reservation (its circuit address)
    await expect.poll(() => b.node.reservationMs, { timeout: 15_000 }).toBeDefined()
    ;(b.room as unknown as { announceNow: () => void }).announceNow()
    await announced
    const left = nextEvent(a.room, 'peer:leave')
    // stop libp2p underneath the room: no leave announcement, no unsubscribe, like a crashed tab
    await b.node.libp2p.stop()
    // it failed once in about 20 full runs with no leave in 30 s, and nothing said why: say what
    // the heal dial did (attempts, last error) if it happens again
    const detail = await left.catch((err: Error) => {
      throw new Error(`${err.message}; a's link to b: ${JSON.stringify(a.room.stats().peers[b.node.peerId])}`)
    })
    expect(detail).toEqual({ peerId: b.node.peerId, reason: 'unreachable' })
  })

  it('heals a dropped direct connection without losing the peer', async () => {
    members = await roomOf(2, relayAddr, uniqueRoom('heal'))
    const [a, b] = members
    await Promise.all([joinedAll(a.room, [b.node.peerId]), joinedAll(b.room, [a.node.peerId])])
    let leaves = 0
    a.room.addEventListener('peer:leave', () => { leaves++ })

    const relayed = nextEvent(a.room, 'peer:update', (d) => d.path === 'relayed')
    const direct = nextEvent(a.room, 'peer:update', (d) => d.path === 'direct', 45_000)
    for (const conn of a.node.libp2p.getConnections(b.node.libp2p.peerId)) conn.abort(new Error('simulated network loss'))
    await relayed
    await direct

    const got = nextEvent(b.room, 'message')
    await expect.poll(async () => (await a.room.publish('after heal')).recipients, { timeout: 15_000 }).toEqual([b.node.peerId])
    expect(new TextDecoder().decode((await got).data)).toBe('after heal')
    expect(leaves).toBe(0)
  })
})

describe('room node and its relay', () => {
  // circuit-relay-v2's relay discovery redials a known relay to restore its reservation; we
  // rely on it (a tab that lost its relay could never be found by a newcomer again)
  it('reconnects to its relay after the connection drops, and can be found again', async () => {
    const name = uniqueRoom('blip')
    const a = await createRoomNode({ relays: [relayAddr] })
    members = [{ node: a, room: await a.joinRoom(name) }]
    const relayPeer = peerIdFromString(relayAddr.split('/p2p/')[1])
    for (const conn of a.libp2p.getConnections(relayPeer)) conn.abort(new Error('simulated network loss'))
    expect(a.libp2p.getConnections(relayPeer)).toHaveLength(0)

    // a newcomer can only find and reach a through the relay
    const b = await createRoomNode({ relays: [relayAddr] })
    const bRoom = await b.joinRoom(name)
    members.push({ node: b, room: bRoom })
    await Promise.all([joinedAll(members[0].room, [b.peerId]), joinedAll(bRoom, [a.peerId])])
    expect(a.libp2p.getConnections(relayPeer).length).toBeGreaterThan(0)
  })
})

describe('room node errors', () => {
  it('throws NoRelaysError without relays', async () => {
    await expect(createRoomNode({})).rejects.toHaveProperty('name', 'NoRelaysError')
  })

  it('says why no relay could be reached: nothing listening, another peer ID, a bad address', async () => {
    const dead = relayAddr.replace(/\/tcp\/\d+\//, '/tcp/9/')
    await expect(createRoomNode({ relays: [dead], reservationTimeout: 5000 })).rejects.toMatchObject({ name: 'RelayDialError', reason: 'unreachable' })
    const wrongPeer = relayAddr.replace(/\/p2p\/[^/]+$/, `/p2p/${peerIdFromPublicKey((await generateKeyPair('Ed25519')).publicKey).toString()}`)
    await expect(createRoomNode({ relays: [wrongPeer], reservationTimeout: 5000 })).rejects.toMatchObject({ name: 'RelayDialError', reason: 'wrong-peer' })
    await expect(createRoomNode({ relays: ['/ip4/127.0.0.1/tcp/1/ws'] })).rejects.toMatchObject({ name: 'RelayDialError', reason: 'bad-address' })
    await expect(createRoomNode({ relays: ['not a multiaddr'] })).rejects.toMatchObject({ name: 'RelayDialError', reason: 'bad-address' })
    await expect(createRoomNode({ relays: ['/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWbad'] })).rejects.toMatchObject({ name: 'RelayDialError', reason: 'bad-address' })
  })

  it('rejects an oversized message with MessageTooLargeError and a bad name with InvalidRoomNameError', async () => {
    const node = await createRoomNode({ relays: [relayAddr], maxMessageBytes: 1024 })
    const room = await node.joinRoom(uniqueRoom('big'))
    members = [{ node, room }]
    await expect(room.publish(new Uint8Array(1025))).rejects.toHaveProperty('name', 'MessageTooLargeError')
    await expect(node.joinRoom('')).rejects.toHaveProperty('name', 'InvalidRoomNameError')
    await room.leave()
    await expect(room.publish('late')).rejects.toHaveProperty('name', 'RoomClosedError')
  })
})
