/**
 * The meeting bench's delay proxy (test/bench/delay-proxy.ts) keeps a TCP stream's order: with a
 * timer per chunk, chunks due within the same millisecond could leave swapped, and the bench's
 * WebSocket connections through it failed noise's checks now and then.
 */
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { startDelayProxy } from '../bench/delay-proxy.js'
import type { Socket } from 'node:net'

describe('delay proxy', () => {
  it('delivers every byte, in order, no earlier than its delay', async () => {
    const WRITES = 4000
    const ONE_WAY_MS = 20
    const received: Buffer[] = []
    let firstAt = 0
    const server = createServer()
    const ended = new Promise<void>((resolve) => {
      server.on('connection', (s: Socket) => {
        s.on('data', (chunk: Buffer) => { firstAt ||= Date.now(); received.push(chunk) })
        s.on('end', resolve)
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const proxy = await startDelayProxy({ host: '127.0.0.1', port: (server.address() as { port: number }).port }, ONE_WAY_MS)
    try {
      const client = connect(proxy.port, '127.0.0.1')
      client.setNoDelay(true)
      await once(client, 'connect')
      const startedAt = Date.now()
      // small writes over many turns of the event loop: many chunks, due a few per millisecond
      for (let i = 0; i < WRITES; i++) {
        const b = Buffer.alloc(4)
        b.writeUInt32BE(i)
        client.write(b)
        if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve))
      }
      client.end()
      await ended
      const all = Buffer.concat(received)
      expect(all.length).toBe(WRITES * 4)
      const outOfOrder = Array.from({ length: WRITES }, (_, i) => all.readUInt32BE(i * 4)).filter((v, i) => v !== i)
      expect(outOfOrder).toEqual([])
      expect(firstAt - startedAt).toBeGreaterThanOrEqual(ONE_WAY_MS - 1)
    } finally {
      await proxy.close()
      server.close()
    }
  })
})
