/**
 * Relays federate with the relays their operator trusts: each keeps the relays it was given
 * (`peers`) connected, learns the others of its federation (a shared federation key) from their
 * relay records, and a room spans relays. A room node learns relays it was never given and fails
 * over to one when its relay goes away. Real relays (in this process, port 0) and real Node room
 * nodes (WebRTC through node-datachannel).
 */
import { createServer } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { FEDERATION_TAG } from '../../relay/src/federation.js'
import { createRelay } from '../../relay/src/index.js'
import { DISCOVERY_TOPIC_PREFIX, RELAYS_TOPIC } from '../../src/constants.js'
import { encodeRelayRecord, relayRecordOf } from '../../src/relay-records.js'
import { createRoomNode } from '../../src/index.js'
import { joinedAll, nextEvent, uniqueRoom } from '../node/helpers.js'
import { gossipClient } from './clients.js'
import type { Relay, RelayInit } from '../../relay/src/index.js'
import type { RelayInfo, RelaySetEvents, RoomNode } from '../../src/index.js'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { PublicKey } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { AddressInfo } from 'node:net'

const started: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => {
  await Promise.all(started.splice(0).map(async (s) => { await s.stop().catch(() => {}) }))
})

async function relay (init: RelayInit = {}): Promise<Relay> {
  const r = await createRelay({ listen: ['/ip4/127.0.0.1/tcp/0/ws'], ...init })
  started.push(r)
  return r
}

async function roomNode (relays: string[], maxRelays?: number): Promise<RoomNode> {
  const node = await createRoomNode({ relays, maxRelays })
  started.push(node)
  return node
}

/** Resolves once `check` holds, re-checking every 100 ms; rejects after `timeoutMs`. */
async function until (what: string, check: () => boolean, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Resolves with the first `type` event of `node.relays` about `peerId` (or a state already reached). */
async function relayEvent (node: RoomNode, type: keyof RelaySetEvents, peerId: string, timeoutMs = 40_000): Promise<RelayInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      node.relays.removeEventListener(type, listener)
      reject(new Error(`no ${type} for ${peerId} within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (evt: RelaySetEvents[typeof type]): void => {
      if (evt.detail.peerId !== peerId) return
      clearTimeout(timer)
      node.relays.removeEventListener(type, listener)
      resolve(evt.detail)
    }
    node.relays.addEventListener(type, listener)
  })
}

const federated = (r: Relay): string[] => r.libp2p.services.federation.peers()

/** One federation key, as an operator copies one `--federation-key` file to each of its relays. */
const federationKey = await generateKeyPair('Ed25519')

/** A plain gossipsub client on `relay`, standing in for a room member's discovery subscription. */
async function member (relay: Relay): Promise<{ stop: () => Promise<void>, subscribe: (topic: string) => void }> {
  const node = await gossipClient(relay.getMultiaddrs()[0])
  started.push({ stop: async () => { await node.stop() } })
  return { stop: async () => { await node.stop() }, subscribe: (topic) => { node.services.pubsub.subscribe(topic) } }
}

describe('relay federation', () => {
  it('keeps the relays it was given and learns the others of its federation from their records', async () => {
    const a = await relay({ federationKey })
    const b = await relay({ federationKey, peers: a.getMultiaddrs() })
    const c = await relay({ federationKey, peers: a.getMultiaddrs() })
    // b and c were only given a: they meet through the records a forwards
    await until('every relay is federated with the other two', () =>
      [[a, b, c], [b, a, c], [c, a, b]].every(([r, ...others]) => others.every((o) => federated(r).includes(o.peerId))))
    const tags = (await b.libp2p.peerStore.get(c.libp2p.peerId)).tags
    expect(tags.get(FEDERATION_TAG)?.value).toBe(100)
  })

  it('dials a peer relay until it is up, and again after it restarts', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    // a relay that is not there yet, at an address fixed in advance
    const probe = await createRelay({ listen: ['/ip4/127.0.0.1/tcp/0/ws'], privateKey })
    const addr = probe.getMultiaddrs()[0]
    const listen = addr.split('/p2p/')[0]
    await probe.stop()

    const b = await relay({ federationKey, peers: [addr] })
    let a = await relay({ listen: [listen], privateKey, federationKey })
    await until('b federates with a once a is up', () => federated(b).includes(a.peerId))
    await a.stop()
    await until('b sees a gone', () => !federated(b).includes(a.peerId) || b.libp2p.getConnections(a.libp2p.peerId).length === 0)
    a = await relay({ listen: [listen], privateKey, federationKey })
    await until('b is federated with a again', () => federated(b).includes(a.peerId) && b.libp2p.getConnections(a.libp2p.peerId).length > 0)
  })

  it('follows a room for its own members only, and lets it go with them', async () => {
    const a = await relay({ roomTtl: 1000, federationKey })
    const b = await relay({ roomTtl: 1000, federationKey, peers: a.getMultiaddrs() })
    await until('the relays are federated', () => federated(a).includes(b.peerId) && federated(b).includes(a.peerId))
    const shared = `${DISCOVERY_TOPIC_PREFIX}shared-${Date.now()}`
    const onlyA = `${DISCOVERY_TOPIC_PREFIX}only-a-${Date.now()}`
    const [onA, onB] = await Promise.all([member(a), member(b)])
    onA.subscribe(shared)
    onA.subscribe(onlyA)
    onB.subscribe(shared)
    // b knows a follows both rooms; it follows the one its own member is in
    await until('b sees a follow both rooms', () => [shared, onlyA].every((t) => b.libp2p.services.pubsub.getSubscribers(t).some((p) => p.toString() === a.peerId)))
    expect(b.libp2p.services.pubsub.getTopics()).toContain(shared)
    expect(b.libp2p.services.pubsub.getTopics()).not.toContain(onlyA)
    // members gone, each relay drops the room though the other still followed it a moment ago
    await Promise.all([onA.stop(), onB.stop()])
    await until('both relays let the rooms go', () => [a, b].every((r) => !r.libp2p.services.pubsub.getTopics().some((t) => t.startsWith(DISCOVERY_TOPIC_PREFIX))))
  })

  it('carries a room across relays, and a node fails over to a relay it was never given', async () => {
    const relayA = await relay({ federationKey })
    const relayB = await relay({ federationKey, peers: relayA.getMultiaddrs() })
    await until('the relays are federated', () => federated(relayA).includes(relayB.peerId))
    const name = uniqueRoom('federation')

    // one reservation each, on its own relay: the pair must cross relays to meet
    const onA = await roomNode(relayA.getMultiaddrs(), 1)
    const onB = await roomNode(relayB.getMultiaddrs(), 1)
    const learnedB = relayEvent(onA, 'relay:discover', relayB.peerId)
    const [roomA, roomB] = await Promise.all([onA.joinRoom(name), onB.joinRoom(name)])
    await Promise.all([joinedAll(roomA, [onB.peerId]), joinedAll(roomB, [onA.peerId])])
    expect(onA.relays.list().filter((r) => r.reserved).map((r) => r.peerId)).toEqual([relayA.peerId])

    // with the default of two reservations, a node given relay A reserves on B too
    const createdAt = Date.now()
    const both = await roomNode(relayA.getMultiaddrs())
    await relayEvent(both, 'relay:connect', relayB.peerId)
    const secondMs = Date.now() - createdAt
    expect(both.relays.list().filter((r) => r.reserved).map((r) => r.peerId).sort()).toEqual([relayA.peerId, relayB.peerId].sort())

    await learnedB
    const lostA = relayEvent(onA, 'relay:disconnect', relayA.peerId)
    const reservedB = relayEvent(onA, 'relay:connect', relayB.peerId)
    const killedAt = Date.now()
    let leftEarly = false
    roomB.addEventListener('peer:leave', (e) => { if (e.detail.peerId === onA.peerId) leftEarly = true })
    await relayA.stop()
    await lostA
    await reservedB
    const failoverMs = Date.now() - killedAt

    // a newcomer given only relay B reaches the node that was on relay A
    const late = await roomNode(relayB.getMultiaddrs(), 1)
    const roomLate = await late.joinRoom(name)
    await Promise.all([joinedAll(roomLate, [onA.peerId]), joinedAll(roomA, [late.peerId])])
    const reachedMs = Date.now() - killedAt
    const got = nextEvent(roomA, 'message', (m) => m.from === late.peerId)
    const back = nextEvent(roomLate, 'message', (m) => m.from === onA.peerId)
    await roomLate.publish('to a')
    await roomA.publish('to late')
    expect(new TextDecoder().decode((await got).data)).toBe('to a')
    expect(new TextDecoder().decode((await back).data)).toBe('to late')
    expect(leftEarly).toBe(false)
    console.log(`a node given relay A reserved on relay B ${secondMs} ms after it was created; relay A stopped: ` +
      `the node on A reserved on B after ${failoverMs} ms, a newcomer on B reached it after ${reachedMs} ms`)
  })
})

/** A TCP listener on loopback that counts the connections it gets: whoever dials a record's address shows up here. */
async function tripwire (): Promise<{ port: number, hits: () => number, close: () => Promise<void> }> {
  let hits = 0
  const server = createServer((socket) => { hits++; socket.destroy() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: async () => { await new Promise<void>((resolve) => server.close(() => { resolve() })) }
  }
}

/** A client that claims to be a relay: it serves the hop protocol (identify lists it) and gossips. */
async function fakeRelay (relayAddr: string): Promise<Libp2p<{ identify: Identify, pubsub: GossipSub, relay: CircuitRelayService }>> {
  const node = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }), relay: circuitRelayServer() }
  })
  started.push({ stop: async () => { await node.stop() } })
  await node.dial(multiaddr(relayAddr))
  return node
}

/** A relay record `node` signs (gossipsub signs the message carrying it) naming `addrs`. */
function ownRecord (node: Libp2p, addrs: string[]): Uint8Array {
  return encodeRelayRecord(relayRecordOf(node.peerId.publicKey as PublicKey, addrs.map((a) => multiaddr(a))))
}

describe('relay federation trust', () => {
  it('takes no client that claims the relay protocol into the federation, however many', async () => {
    const r = await relay({ federationKey })
    const fakes = await Promise.all(Array.from({ length: 70 }, async () => fakeRelay(r.getMultiaddrs()[0])))
    // each identified, and published a record of its own
    await Promise.all(fakes.map(async (f) => f.services.pubsub.publish(RELAYS_TOPIC, ownRecord(f, [`/ip4/127.0.0.1/tcp/9/ws/p2p/${f.peerId.toString()}`]))))
    await until('the relay checked their records', () => r.libp2p.services.federation.records.ignored >= 1)
    expect(federated(r)).toEqual([])
    // their room subscriptions count like any client's
    const topic = `${DISCOVERY_TOPIC_PREFIX}fake-${Date.now()}`
    fakes[0].services.pubsub.subscribe(topic)
    await until('the relay follows the room for the fake', () => r.libp2p.services.pubsub.getTopics().includes(topic))
    expect((await r.status()).roomMembers).toBe(1)
  })

  it('never dials the addresses of a record it does not trust, nor forwards it', async () => {
    const wire = await tripwire()
    try {
      const r = await relay({ federationKey })
      const attacker = await fakeRelay(r.getMultiaddrs()[0])
      // a client listening on the relays topic, as browser nodes do
      const observer = await gossipClient(r.getMultiaddrs()[0])
      started.push({ stop: async () => { await observer.stop() } })
      const forwarded: string[] = []
      observer.services.pubsub.addEventListener('message', (e) => { if (e.detail.topic === RELAYS_TOPIC && e.detail.type === 'signed') forwarded.push(e.detail.from.toString()) })
      observer.services.pubsub.subscribe(RELAYS_TOPIC)
      await until('the relay forwards its own record to the observer', () => forwarded.includes(r.peerId))
      await until('the attacker and the relay share the relays topic', () => attacker.services.pubsub.getSubscribers(RELAYS_TOPIC).some((p) => p.toString() === r.peerId))
      // signed by the attacker, naming an address on this machine where nothing but the tripwire listens
      await attacker.services.pubsub.publish(RELAYS_TOPIC, ownRecord(attacker, [`/ip4/127.0.0.1/tcp/${wire.port}/ws`]))
      // and one in another relay's name: forged
      await attacker.services.pubsub.publish(RELAYS_TOPIC, encodeRelayRecord(relayRecordOf(r.libp2p.peerId.publicKey as PublicKey, [multiaddr(`/ip4/127.0.0.1/tcp/${wire.port}/ws`)])))
      await until('the relay checked both', () => r.libp2p.services.federation.records.ignored >= 1 && r.libp2p.services.federation.records.rejected >= 1)
      expect(wire.hits()).toBe(0)
      expect(federated(r)).toEqual([])
      expect(forwarded.filter((id) => id !== r.peerId)).toEqual([])
    } finally {
      await wire.close()
    }
  })

  it('trusts a --peer relay without a shared key, and is not trusted back by a relay that was not given it', async () => {
    const a = await relay()
    const b = await relay({ peers: a.getMultiaddrs() })
    await until('b takes a as a relay', () => federated(b).includes(a.peerId))
    // a's operator named nobody: b is one more client to a
    expect(federated(a)).toEqual([])
    expect(b.libp2p.services.federation.isRelay(a.peerId)).toBe(true)
  })
})
