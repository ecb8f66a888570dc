/**
 * The relay binary as an operator runs it: a real process.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { describe, expect, it } from 'vitest'

const BIN = new URL('../../relay/bin/p2p-rooms-relay.js', import.meta.url).pathname

/** Resolves with `promise`, or rejects once `ms` passed, naming `what`. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} took over ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

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

  // pino.destination(2) looped forever on EPIPE (sonic-boom 4.2.1), so a relay whose log reader
  // had gone never finished its shutdown
  it('still exits 0 on SIGTERM after whoever read its logs went away', async () => {
    const relay = await spawnRelay()
    relay.process.stdout?.destroy()
    relay.process.stderr?.destroy()
    expect(await within(relay.stop(), 20_000, 'shutdown')).toBe(0)
  })
})
