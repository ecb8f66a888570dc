/**
 * The sending end of an open `RTCDataChannel`, enough for @libp2p/webrtc's `WebRTCStream`
 * (`createStream`) to write to: each `send` goes to `onSend`, which may record it or throw as a
 * failing transport does.
 */
export function fakeDataChannel (onSend: (data: Uint8Array) => void): RTCDataChannel {
  const dc = {
    readyState: 'open',
    bufferedAmount: 0,
    bufferedAmountLowThreshold: 0,
    binaryType: 'arraybuffer',
    id: 1,
    send: onSend,
    close: () => {},
    addEventListener: () => {},
    removeEventListener: () => {}
  }
  return dc as unknown as RTCDataChannel
}
