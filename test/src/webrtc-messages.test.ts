/**
 * Our @libp2p/webrtc 6.0.33 patch (patches/): a stream's message leaves as ONE data channel
 * message, holding exactly the bytes the unpatched code sent as two (the varint length, then the
 * protobuf), so any reader of the channel's byte stream decodes it the same.
 */
import { defaultLogger } from '@libp2p/logger'
import * as lp from 'it-length-prefixed'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { Message } from '../../node_modules/@libp2p/webrtc/dist/src/private-to-public/pb/message.js'
import { createStream } from '../../node_modules/@libp2p/webrtc/dist/src/stream.js'
import { fakeDataChannel } from './fake-data-channel.js'

/** The sending end of an open data channel that records what was sent. */
function channel (): { sent: Uint8Array[], dc: RTCDataChannel } {
  const sent: Uint8Array[] = []
  return { sent, dc: fakeDataChannel((data) => { sent.push(new Uint8Array(data)) }) }
}

describe('@libp2p/webrtc stream messages (patched)', () => {
  it.each([1, 200, 65_536, 256 * 1024 - 64])('sends %d bytes as one data channel message with the unpatched bytes', (n) => {
    const { sent, dc } = channel()
    const stream = createStream({ channel: dc, direction: 'outbound', log: defaultLogger().forComponent('test'), maxMessageSize: 256 * 1024 } as any)
    const data = Uint8Array.from({ length: n }, (_, i) => i * 7)
    // a header and the data apart, as the file server hands them over
    stream.send(new Uint8ArrayList(data.subarray(0, 1), data.subarray(1)))
    expect(sent).toHaveLength(1)
    // Buffer#equals: vitest's deep equality takes seconds over 256 KiB
    expect(Buffer.from(sent[0]).equals(lp.encode.single(Message.encode({ message: data })).subarray())).toBe(true)
    expect(sent[0].byteLength).toBeLessThanOrEqual(256 * 1024)
  })
})
