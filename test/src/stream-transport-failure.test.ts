/**
 * A request whose data channel fails under it reports `StreamResetError` (src/streams.ts
 * `readFailure`). @libp2p/webrtc 6.0.33 aborts a stream with whatever `RTCDataChannel.send`
 * threw (libp2p/js-libp2p#3469); node-datachannel throws a bare `Error: ... DataChannel is
 * closed` when the remote closed its channel while the polyfill's cached `readyState` still says
 * `'open'`. test/node/streams.test.ts's refused request hit it in about 1 run of 6 under load.
 * Here the real `WebRTCStream` runs over a channel that takes the request and then throws, as
 * node-datachannel does, on the FIN that closes our end.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { readFailure, request } from '../../src/streams.js'
import { createStream } from '../../node_modules/@libp2p/webrtc/dist/src/stream.js'
import { fakeDataChannel } from './fake-data-channel.js'
import type { Libp2p } from '@libp2p/interface'

const CLOSED = 'libdatachannel error while sending data channel message: DataChannel is closed'

/** An open data channel whose `send` throws node-datachannel's error from call `failAt` on. */
function channel (failAt: number): RTCDataChannel {
  let sends = 0
  return fakeDataChannel(() => { if (++sends >= failAt) throw new Error(CLOSED) })
}

/** A node whose one direct connection, to the peer it returns, opens `stream`. */
async function nodeWith (stream: unknown): Promise<{ node: Libp2p, peer: string }> {
  const remotePeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const conn = { status: 'open', limits: undefined, multiplexer: '/webrtc', timeline: { open: 1 }, remotePeer, newStream: async () => stream }
  return { node: { logger: defaultLogger(), getConnections: () => [conn] } as unknown as Libp2p, peer: remotePeer.toString() }
}

const opts = { maxFrameBytes: 1024, maxFrames: 4 }

describe('a stream failing in its transport', () => {
  it('rejects a request with StreamResetError, the transport error as its cause', async () => {
    // the request goes out (send 1); the FIN closing our end finds the channel closed (send 2)
    const stream = createStream({ channel: channel(2), direction: 'outbound', protocol: '/test/refused', log: defaultLogger().forComponent('test') } as any)
    const { node, peer } = await nodeWith(stream)
    const err = await request(node, peer, '/test/refused', new Uint8Array([1, 2, 3]), { ...opts, signal: AbortSignal.timeout(5_000) }).then(() => undefined, (e: Error) => e)
    expect(err?.name).toBe('StreamResetError')
    expect((err?.cause as Error | undefined)?.message).toBe(CLOSED)
  })

  it('passes named errors through unchanged', () => {
    const timeout = new DOMException('timed out', 'TimeoutError')
    expect(readFailure({ protocol: '/x' }, timeout)).toBe(timeout)
    const wrapped = readFailure({ protocol: '/x' }, new Error('boom'))
    expect(wrapped.name).toBe('StreamResetError')
    expect(wrapped.message).toBe('/x stream failed in its transport: boom')
  })
})
