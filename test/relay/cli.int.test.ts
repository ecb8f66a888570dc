/**
 * The relay binary as an operator runs it: a real process.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { describe, expect, it } from 'vitest'

const BIN = new URL('../../relay/bin/p2p-rooms-relay.js', import.meta.url).pathname

describe('p2p-rooms-relay', () => {
  it('lists its options with --help', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, '--help'])
    for (const option of ['--listen', '--http', '--max-reservations']) expect(stdout).toContain(option)
  })

  it('prints one multiaddr per listen address on stdout, ending in its peer ID, and exits 0 on SIGTERM', async () => {
    const relay = await spawnRelay({ listen: ['/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/tcp/0/ws'] })
    expect(relay.multiaddrs).toHaveLength(2)
    const peerId = relay.multiaddrs[0].split('/p2p/')[1]
    for (const ma of relay.multiaddrs) expect(ma).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${peerId}$`))
    const health = await fetch(`${relay.httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(await relay.stop()).toBe(0)
  })
})
