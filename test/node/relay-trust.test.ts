/**
 * A room node trusts only the relays it was given and those their federation vouches for, with
 * the same check the relays apply (src/relay-records.ts). A hostile room member, directly
 * connected over WebRTC, serves the relay protocol, tries to tell the victim so, and publishes a
 * signed relay record naming an address on this machine: the node never learns the claim (it
 * runs identify with relays only, src/relays.ts), neither reserves on the member nor dials the
 * address. Real Node room nodes (WebRTC through node-datachannel) and a real relay process.
 */
import { createServer } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { RELAYS_TOPIC } from '../../src/constants.js'
import { encodeRelayRecord, relayRecordOf } from '../../src/relay-records.js'
import { RelayRecords } from '../../src/relay-discovery.js'
import { createRoomNode } from '../../src/index.js'
import { isDirect } from '../../src/paths.js'
import { joinedAll, stopAll, uniqueRoom } from './helpers.js'
import type { Room, RoomNode } from '../../src/index.js'
import type { Connection, PublicKey } from '@libp2p/interface'
import type { AddressInfo } from 'node:net'

const relayAddr = inject('relayAddr')
const HOP = '/libp2p/circuit/relay/0.2.0/hop'
const IDENTIFY_PUSH = '/ipfs/id/push/1.0.0'

let members: Array<{ node: RoomNode, room: Room }> = []
afterEach(async () => {
  await stopAll(members)
  members = []
})

/** Resolves once `check` holds, re-checking every 100 ms; rejects after `timeoutMs`. */
async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describe('room node relay trust', () => {
  it('neither reserves on a room member claiming the relay protocol nor dials the addresses of its record', async () => {
    // whoever dials the address in the hostile record lands here
    let dialed = 0
    const tripwire = createServer((socket) => { dialed++; socket.destroy() })
    await new Promise<void>((resolve) => tripwire.listen(0, '127.0.0.1', resolve))
    const port = (tripwire.address() as AddressInfo).port
    try {
      // two reservations wanted, one relay: the victim is looking for a second relay all along
      const [victimNode, attackerNode] = await Promise.all([createRoomNode({ relays: [relayAddr], maxRelays: 2 }), createRoomNode({ relays: [relayAddr] })])
      // the attacker serves the hop protocol before it meets the victim, and counts RESERVEs
      let hopStreams = 0
      await attackerNode.libp2p.handle(HOP, (stream) => { hopStreams++; stream.abort(new Error('no')) })
      const identifiedByVictim: string[] = []
      victimNode.libp2p.addEventListener('peer:identify', (evt) => { identifiedByVictim.push(evt.detail.peerId.toString()) })
      const name = uniqueRoom('trust')
      members = await Promise.all([victimNode, attackerNode].map(async (node) => ({ node, room: await node.joinRoom(name) })))
      const [victim, attacker] = members
      await Promise.all([joinedAll(victim.room, [attacker.node.peerId]), joinedAll(attacker.room, [victim.node.peerId])])
      // a modified client: it identifies the victim over their direct connection itself, so its
      // gossipsub opens a stream to the victim's; the victim serves no identify push to be told by
      const direct = attacker.node.libp2p.getConnections(victim.node.libp2p.peerId).find(isDirect)
      expect(direct, 'a direct connection').toBeDefined()
      await attacker.node.libp2p.services.identify.identify(direct as Connection)
      expect(victim.node.libp2p.getProtocols()).not.toContain(IDENTIFY_PUSH)
      // and publishes a relay record signed with its own key, over the direct connection
      const records = victim.node.libp2p.services.relayDiscovery as RelayRecords
      expect(records).toBeInstanceOf(RelayRecords)
      await until('the attacker can publish to the victim on the relays topic', () =>
        attacker.node.libp2p.services.pubsub.getSubscribers(RELAYS_TOPIC).some((p) => p.toString() === victim.node.peerId))
      const before = records.counts.ignored
      await attacker.node.libp2p.services.pubsub.publish(RELAYS_TOPIC, encodeRelayRecord(relayRecordOf(
        attacker.node.libp2p.peerId.publicKey as PublicKey, [multiaddr(`/ip4/127.0.0.1/tcp/${port}/ws`)])))
      await until('the victim checked the record', () => records.counts.ignored > before)

      expect(dialed).toBe(0)
      expect(hopStreams).toBe(0)
      expect(victim.node.relays.list().map((r) => r.peerId)).not.toContain(attacker.node.peerId)
      expect(victim.node.libp2p.getMultiaddrs().map(String).some((ma) => ma.includes(`/p2p/${attacker.node.peerId}/p2p-circuit`))).toBe(false)
      // the claim never reached the victim: libp2p's own relay search (it reads the peer store) cannot find it
      expect(identifiedByVictim).not.toContain(attacker.node.peerId)
      expect((await victim.node.libp2p.peerStore.get(attacker.node.libp2p.peerId)).protocols).not.toContain(HOP)
    } finally {
      await new Promise<void>((resolve) => tripwire.close(() => { resolve() }))
    }
  })
})
