/**
 * The relay's WebRTC upgrade estimate against real room nodes (Node, WebRTC through
 * node-datachannel): each pair signals over one circuit and closes it once direct, which the relay
 * counts as an upgrade.
 */
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { expect, it } from 'vitest'
import { joinedAll, roomOf, stopAll, uniqueRoom } from '../node/helpers.js'
import { metrics, value } from './clients.js'

it('counts the circuit each pair of room nodes closes once direct as a WebRTC upgrade', async () => {
  const relay = await spawnRelay()
  const members = await roomOf(4, relay.multiaddrs[0], uniqueRoom('upgrades'))
  try {
    await Promise.all(members.map(async (m) => joinedAll(m.room, members.filter((o) => o !== m).map((o) => o.node.peerId))))
    // every circuit closed: the pairs are direct and nothing goes through the relay any more
    await expect.poll(async () => value(await metrics(relay.httpUrl), 'p2p_rooms_relay_circuits'), { timeout: 15_000 }).toBe(0)
    const samples = await metrics(relay.httpUrl)
    const opened = value(samples, 'p2p_rooms_relay_circuits_opened_total')
    // 6 pairs; a failed WebRTC attempt (node-datachannel's occasional DTLS failure) opens another circuit
    expect(opened).toBeGreaterThanOrEqual(6)
    expect(value(samples, 'p2p_rooms_relay_circuits_closed_total', { by: 'endpoint' })).toBe(opened)
    expect(value(samples, 'p2p_rooms_relay_webrtc_upgrades_total')).toBe(opened)
    expect(value(samples, 'p2p_rooms_relay_circuits_closed_total', { by: 'duration_limit' })).toBe(0)
    expect(value(samples, 'p2p_rooms_relay_reservations')).toBe(4)
  } finally {
    await stopAll(members)
    expect(await relay.stop()).toBe(0)
  }
})
