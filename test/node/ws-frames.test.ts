/**
 * One WebSocket message per write on relay connections (patches/@libp2p+websockets+10.1.21.patch),
 * against the real relay process with Node's own WebSocket: every message the node sends and
 * receives is recorded by a subclass installed as the global `WebSocket` for the test.
 *
 * `@libp2p/websockets` 10.1.21 sent each chunk of a write as its own message, and noise writes
 * every encrypted frame as two chunks: its 2-byte length, then the ciphertext. So half the
 * messages on a relay connection were bare lengths, each its own IPC in a browser, TCP segment
 * and wake-up of the receiver (a 2-tab meeting in Chromium: about 300 of 640 segments). The
 * relay runs the same transport, so the messages it sends show its side too.
 */
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { createRoomNode } from '../../src/index.js'
import type { RoomNode } from '../../src/index.js'

const relayAddr = inject('relayAddr')

/** noise's length prefix (a big-endian uint16) alone: what a message holding only it is long. */
const NOISE_LENGTH_BYTES = 2

const NativeWebSocket = globalThis.WebSocket
let sent: number[] = []
let received: number[] = []

const byteLength = (data: unknown): number =>
  data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data.byteLength : data instanceof Blob ? data.size : String(data).length

beforeEach(() => {
  sent = []
  received = []
  globalThis.WebSocket = class extends NativeWebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      this.addEventListener('message', (evt) => { received.push(byteLength(evt.data)) })
    }

    send (data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      sent.push(byteLength(data))
      super.send(data)
    }
  }
})
afterEach(() => { globalThis.WebSocket = NativeWebSocket })

describe('relay connections over WebSocket', () => {
  let node: RoomNode | undefined
  afterEach(async () => { await node?.stop() })

  it('send each encrypted frame whole: no message is a bare noise length, either way', async () => {
    node = await createRoomNode({ relays: [relayAddr] })
    // a reservation, identify both ways, gossipsub's streams and a ping: a few dozen frames each way
    await node.joinRoom('ws-frames')
    const relay = node.libp2p.getConnections()[0].remotePeer
    await node.libp2p.services.ping.ping(relay)

    expect(sent.length).toBeGreaterThan(10)
    expect(received.length).toBeGreaterThan(10)
    expect(sent.filter((n) => n === NOISE_LENGTH_BYTES)).toEqual([])
    expect(received.filter((n) => n === NOISE_LENGTH_BYTES)).toEqual([])
  })
})
