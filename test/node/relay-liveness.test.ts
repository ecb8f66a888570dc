/**
 * A relay that stops answering without closing its connection (its host lost power or its
 * network: here, its process stopped with SIGSTOP, so its sockets stay open) is found by the
 * relay set's pings, and the node gives up its reservation there (src/relays.ts). Before, nothing
 * closed that connection: the connection monitor only measures (src/node-config.ts), and the
 * node believed it was reachable through the relay for as long as TCP took to notice.
 */
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RELAY_LIVENESS_INTERVAL_MS, RELAY_LIVENESS_MISSES, RELAY_LIVENESS_TIMEOUT_MS } from '../../src/constants.js'
import { createRoomNode } from '../../src/index.js'
import type { RoomNode } from '../../src/index.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'

let relay: SpawnedRelay
let node: RoomNode | undefined
beforeAll(async () => { relay = await spawnRelay() })
afterAll(async () => {
  relay?.process.kill('SIGCONT')
  await node?.stop()
  await relay?.stop()
})

describe('a relay that stops answering', () => {
  it('loses the node\'s reservation within its missed pings', async () => {
    node = await createRoomNode({ relays: [relay.multiaddrs[0]] })
    await expect.poll(() => node?.relays.list().some((r) => r.reserved), { timeout: 10_000 }).toBe(true)
    const lost = new Promise<number>((resolve) => { node?.relays.addEventListener('relay:disconnect', () => { resolve(Date.now()) }, { once: true }) })
    const stopped = Date.now()
    relay.process.kill('SIGSTOP')
    // a ping every interval, each given its timeout: the connection goes after this many missed
    const bound = RELAY_LIVENESS_INTERVAL_MS * RELAY_LIVENESS_MISSES + RELAY_LIVENESS_TIMEOUT_MS + 5_000
    const late = new Promise<undefined>((resolve) => { setTimeout(resolve, bound, undefined) })
    const at = await Promise.race([lost, late])
    expect(at, `the reservation on the stopped relay went within ${bound} ms`).toBeDefined()
    expect(node.relays.list().some((r) => r.reserved)).toBe(false)
    console.log(`a stopped relay lost its reservation ${(at ?? 0) - stopped} ms after it stopped`)
  })
})
