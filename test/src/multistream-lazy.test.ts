/**
 * Our patch of @libp2p/multistream-select 7.0.28 (patches/): a dialer proposing one protocol
 * selects it optimistically, as go-libp2p and rust-libp2p (V1Lazy) do, instead of waiting a round
 * trip for the echo; the echo is taken off the stream before its readers see it. libp2p documents
 * `negotiateFully: false` for this but 7.0.28 ignores it (js-libp2p#2029, #2331).
 *
 * Real multistream-select on both ends, over @libp2p/utils' in-memory stream pair. Every stream
 * libp2p opens goes through this (connection upgrades, hop, stop, signalling, ours): the node and
 * browser suites run it end to end.
 */
import { UnsupportedProtocolError } from '@libp2p/interface'
import { handle, PROTOCOL_ID, select } from '@libp2p/multistream-select'
import { streamPair } from '@libp2p/utils'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import type { Stream } from '@libp2p/interface'

const PROTOCOL = '/p2p-rooms/test/1.0.0'
const text = new TextEncoder()

/** A multistream-select message: its length (one varint byte: these are short), the string and its newline. */
function frame (s: string): Uint8Array {
  const body = text.encode(`${s}\n`)
  return Uint8Array.from([body.length, ...body])
}

/** What the muxer calls with a stream's incoming bytes. */
const onData = (stream: Stream, bytes: number[]): void => {
  (stream as unknown as { onData(data: Uint8ArrayList): void }).onData(new Uint8ArrayList(Uint8Array.from(bytes)))
}

/** Every byte `stream` hands its readers, as one string. */
function received (stream: Stream): () => string {
  const chunks: Uint8Array[] = []
  stream.addEventListener('message', (evt) => { chunks.push(evt.data.subarray()) })
  return () => new TextDecoder().decode(Uint8Array.from(chunks.flatMap((c) => [...c])))
}

/** Resolves with the error `stream` closed with, if it did. */
async function closed (stream: Stream): Promise<Error | undefined> {
  return await new Promise((resolve) => {
    stream.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true })
  })
}

describe('multistream-select, optimistic for one protocol (patched)', () => {
  it('returns before the listener answered, and the listener gets the data sent after the proposal', async () => {
    const [dialer, listener] = await streamPair()
    // nothing answers yet: a full negotiation would wait here for the echo
    await expect(select(dialer, [PROTOCOL])).resolves.toBe(PROTOCOL)
    dialer.send(text.encode('hello'))
    await expect(handle(listener, [PROTOCOL])).resolves.toBe(PROTOCOL)
    // the protocol's handler reads from here on, as libp2p's does
    const got = received(listener)
    await expect.poll(got).toBe('hello')
  })

  it('hides the echo from the dialer\'s readers, however it is split', async () => {
    const [dialer, listener] = await streamPair()
    const got = received(dialer)
    await select(dialer, [PROTOCOL])
    await handle(listener, [PROTOCOL])
    listener.send(text.encode('pong'))
    await expect.poll(got).toBe('pong')
  })

  it('closes its writable end only after the echo, so the listener still hands its handler the data', async () => {
    // a listener that reads the proposal, the data and the end of the stream in one go cannot
    // hand the data on (@libp2p/utils 7.4.1 cannot unshift onto a closed readable end): a ping
    // (write, close, read) to the relay over /tls/ws failed so
    const [dialer, listener] = await streamPair()
    await select(dialer, [PROTOCOL])
    dialer.send(text.encode('hello'))
    const closing = dialer.close()
    await expect.poll(() => listener.readBufferLength).toBe(frame(PROTOCOL_ID).length + frame(PROTOCOL).length + 5)
    expect(dialer.writeStatus).toBe('closing')
    expect(listener.remoteWriteStatus).toBe('writable')
    await handle(listener, [PROTOCOL])
    const got = received(listener)
    await closing
    await expect.poll(got).toBe('hello')
    await expect.poll(() => listener.remoteWriteStatus).toBe('closed')
  })

  it('settles a close still waiting for the echo when the listener resets the stream', async () => {
    // the listener refused before its echo reached us: nothing is left to close. Over WebRTC,
    // closing anyway waited for a FIN_ACK the closed channel never sends (@libp2p/webrtc 6.0.33),
    // which test/node/streams.test.ts › gives up on a request… caught in about half its runs; this
    // in-memory pair does not hang either way, so here it is the contract that is checked
    const [dialer, listener] = await streamPair()
    await select(dialer, [PROTOCOL])
    dialer.send(text.encode('hello'))
    const closing = dialer.close()
    listener.abort(new Error('refused'))
    await expect(closing).resolves.toBeUndefined()
    expect(dialer.status).toBe('reset')
  })

  it('aborts the stream with UnsupportedProtocolError when the listener answers na', async () => {
    const [dialer, listener] = await streamPair()
    const error = closed(dialer)
    await select(dialer, [PROTOCOL])
    dialer.send(text.encode('data the listener reads as a proposal'))
    void handle(listener, ['/another/1.0.0']).catch(() => {})
    const err = await error
    expect(err).toBeInstanceOf(UnsupportedProtocolError)
    expect(err?.name).toBe('UnsupportedProtocolError')
  })

  it('negotiates fully with `negotiateFully: true`, or among several protocols', async () => {
    for (const [protocols, options] of [[[PROTOCOL], { negotiateFully: true }], [['/another/1.0.0', PROTOCOL], {}]] as const) {
      const [dialer, listener] = await streamPair()
      let selected = false
      const selecting = select(dialer, [...protocols], options).then((p) => { selected = true; return p })
      // the listener has not answered: still negotiating (the pair delivers within a few ms)
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(selected).toBe(false)
      await handle(listener, [PROTOCOL])
      await expect(selecting).resolves.toBe(PROTOCOL)
    }
  })

  // the echo parser is a decoder of network bytes: whatever arrives, it never throws out of the
  // stream's onData, never hands its readers part of an echo, and never holds a frame past its
  // bound (2 length bytes and MAX_PROTOCOL_LENGTH, 1024)
  it('property: any answer, split anywhere, is delivered whole after a matching echo or aborts the stream', async () => {
    const echo = [...frame(PROTOCOL_ID), ...frame(PROTOCOL)]
    const answer = fc.oneof(
      // the echo as sent, then data
      fc.uint8Array({ maxLength: 64 }).map((data) => ({ bytes: [...echo, ...data], data })),
      // the echo mutated: one byte changed, or cut and padded
      fc.tuple(fc.nat({ max: echo.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 }))
        .filter(([at, b]) => echo[at] !== b)
        .map(([at, b, data]) => ({ bytes: [...echo.slice(0, at), b, ...echo.slice(at + 1), ...data], data: undefined })),
      // anything at all
      fc.uint8Array({ maxLength: 2100 }).map((bytes) => ({ bytes: [...bytes], data: undefined }))
    )
    await fc.assert(fc.asyncProperty(answer, fc.array(fc.nat(), { maxLength: 8 }), async ({ bytes, data }, cuts) => {
      const [dialer] = await streamPair()
      const got = received(dialer)
      await select(dialer, [PROTOCOL])
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
      let from = 0
      for (const to of [...points, bytes.length]) {
        if (dialer.status !== 'open') break
        expect(() => { onData(dialer, bytes.slice(from, to)) }).not.toThrow()
        from = to
      }
      // complete any frame still held: a frame is at most 2 + 1024 bytes
      if (dialer.status === 'open' && data === undefined) onData(dialer, new Array(2 * 1026).fill(0x0a))
      await new Promise((resolve) => setTimeout(resolve, 0))
      const out = got()
      if (data !== undefined && dialer.status === 'open') {
        expect(out).toBe(new TextDecoder().decode(data))
      } else if (dialer.status === 'open') {
        // a random answer that happened to be the echo: whatever follows it is delivered as is
        expect(bytes.slice(0, echo.length)).toEqual(echo)
      } else {
        expect(dialer.status).toBe('aborted')
        expect(out).toBe('')
      }
    }), { numRuns: 300 })
  })
})
