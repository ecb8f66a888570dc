/**
 * The dialer of a circuit starts its upgrade behind the hop CONNECT instead of after the relay's
 * STATUS, and the relay sends those bytes on behind its STOP instead of after the destination's
 * answer (patches/@libp2p+circuit-relay-v2+4.2.13.patch): two round trips between the relay and an
 * end less per circuit, and every WebRTC dial of a room starts with one. Real relay, plain Node
 * clients.
 */
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { decode, encode } from 'it-length-prefixed'
import { Uint8ArrayList } from 'uint8arraylist'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { isPeerGoneError } from '../../src/dialer.js'
import { client, reserved, stopClients, stopHandler } from './clients.js'
import type { Connection, Stream } from '@libp2p/interface'

const relayAddr = inject('relayAddr')

afterAll(stopClients)

/** The length of the varint-prefixed protobuf message at the start of `bytes`, prefix included (Infinity while it is incomplete). */
function firstMessageLength (bytes: Uint8Array): number {
  try {
    const first = decode([bytes]).next().value
    return first === undefined ? Infinity : encode.single(first).byteLength
  } catch {
    return Infinity // its length prefix says more than has arrived
  }
}

/** Records, in order, what `conn`'s hop streams send (`send`) and receive (`recv`). */
function recordHopStreams (conn: Connection): string[] {
  const events: string[] = []
  const newStream = conn.newStream.bind(conn)
  conn.newStream = async (...args: Parameters<Connection['newStream']>): Promise<Stream> => {
    const stream = await newStream(...args)
    if (stream.protocol !== RELAY_V2_HOP_CODEC) return stream
    const send = stream.send.bind(stream)
    stream.send = (data) => { events.push('send'); return send(data) }
    stream.addEventListener('message', () => { events.push('recv') })
    return stream
  }
  return events
}

describe('circuit dial', () => {
  it('sends the first bytes of its upgrade before the relay answers, and gets a limited connection', async () => {
    const listener = await client(relayAddr)
    const circuitAddr = await reserved(listener)
    const dialer = await client()
    const events = recordHopStreams(await dialer.dial(multiaddr(relayAddr)))

    const conn = await dialer.dial(multiaddr(circuitAddr))
    expect(conn.remotePeer.equals(listener.peerId)).toBe(true)
    expect(conn.status).toBe('open')
    // the relay's limits, set from its STATUS: a relayed connection runs only what opts in
    expect(conn.limits).toBeDefined()
    // the CONNECT, then the upgrade's first bytes (multistream-select, noise's first message),
    // all before the first byte of the relay's answer
    const firstRecv = events.indexOf('recv')
    expect(firstRecv).toBeGreaterThan(1)
    expect(events.slice(0, firstRecv).every((e) => e === 'send')).toBe(true)
    // and the connection carries streams: ping runs on limited connections
    expect(await dialer.services.ping.ping(listener.peerId, { signal: AbortSignal.timeout(10_000) })).toBeGreaterThanOrEqual(0)
  })

  it('still fails with the relay\'s status when the destination holds no reservation', async () => {
    const stranger = await client()
    const dialer = await client()
    await dialer.dial(multiaddr(relayAddr))
    const err = await dialer.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${stranger.peerId.toString()}`)).then(() => undefined, (e: unknown) => e)
    expect(err).toBeDefined()
    // what the room's dialer reads as "this peer is gone" (src/dialer.ts)
    expect(isPeerGoneError(err)).toBe(true)
    expect(dialer.getConnections(stranger.peerId)).toEqual([])
  })

  it('reaches the destination with the dialer\'s first upgrade bytes behind the STOP, before the destination answers it', async () => {
    // a destination that answers no STOP: whatever it receives on its stop stream, the relay
    // sent before any answer from it
    const received = new Uint8ArrayList()
    const destination = await stopHandler(relayAddr, (stream) => {
      stream.addEventListener('message', (evt) => { received.append(evt.data) })
    })

    const dialer = await client()
    await dialer.dial(multiaddr(relayAddr))
    const signal = AbortSignal.timeout(20_000)
    const dialing = dialer.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${destination.peerId.toString()}`), { signal }).catch(() => undefined)

    // the STOP, then the dialer's multistream-select proposal (then noise's first message)
    await expect.poll(() => received.byteLength > firstMessageLength(received.subarray()), { timeout: 10_000 }).toBe(true)
    const behind = new TextDecoder().decode(received.subarray(firstMessageLength(received.subarray())))
    expect(behind).toContain('/multistream/1.0.0')
    expect(behind).toContain('/noise')
    await destination.stop()
    await dialing
  })
})
