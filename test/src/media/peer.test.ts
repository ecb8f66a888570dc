/**
 * A media peer's perfect negotiation (src/media/peer.ts) on a fake RTCPeerConnection that records
 * what is set on it and lets the test move its ICE gathering: when the two sides' offers cross,
 * the polite side rolls its own back only once that offer's gathering is over (Chromium wedges a
 * connection rolled back mid-gathering; peer.ts says more). The real browser case, three tabs
 * adding streams at once, is in test/browser/media.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MEDIA_ROLLBACK_GATHER_WAIT_MS } from '../../../src/constants.js'
import { MediaPeer } from '../../../src/media/peer.js'
import type { MediaSignal } from '../../../src/media/wire.js'

/** Just what MediaPeer uses of an RTCPeerConnection, with JSEP's offer/answer states. */
class FakePeerConnection extends EventTarget {
  static last?: FakePeerConnection
  signalingState: RTCSignalingState = 'stable'
  iceGatheringState: RTCIceGatheringState = 'new'
  iceConnectionState: RTCIceConnectionState = 'new'
  localDescription: { type: RTCSdpType, sdp: string } | null = null
  /** what was set on it, in order */
  readonly calls: string[] = []

  constructor () {
    super()
    FakePeerConnection.last = this
  }

  async setLocalDescription (): Promise<void> {
    await Promise.resolve()
    if (this.signalingState === 'stable') {
      this.calls.push('local offer')
      this.localDescription = { type: 'offer', sdp: 'our offer' }
      this.setState('have-local-offer')
    } else if (this.signalingState === 'have-remote-offer') {
      this.calls.push('local answer')
      this.localDescription = { type: 'answer', sdp: 'our answer' }
      this.setState('stable')
    }
  }

  async setRemoteDescription (d: { type: RTCSdpType, sdp: string }): Promise<void> {
    await Promise.resolve()
    if (d.type === 'offer') {
      // an offer in have-local-offer rolls ours back first (implicit rollback)
      if (this.signalingState === 'have-local-offer') this.calls.push('rollback')
      this.calls.push('remote offer')
      this.setState('have-remote-offer')
    } else {
      this.calls.push('remote answer')
      this.setState('stable')
    }
  }

  async addIceCandidate (): Promise<void> {}
  restartIce (): void {}
  close (): void { this.signalingState = 'closed' }

  gather (state: RTCIceGatheringState): void {
    this.iceGatheringState = state
    this.dispatchEvent(new Event('icegatheringstatechange'))
  }

  private setState (state: RTCSignalingState): void {
    this.signalingState = state
    this.dispatchEvent(new Event('signalingstatechange'))
  }
}

/** Lets every pending promise callback run (the fake's and MediaPeer's). */
async function settle (): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

function mediaPeer (polite: boolean): { peer: MediaPeer, pc: FakePeerConnection, sent: MediaSignal[] } {
  const sent: MediaSignal[] = []
  const peer = new MediaPeer({ polite, config: {}, send: (msg) => { sent.push(msg) }, onTrack: () => {}, log: () => {} })
  const pc = FakePeerConnection.last
  if (pc === undefined) throw new Error('no RTCPeerConnection made')
  return { peer, pc, sent }
}

const theirOffer = { t: 'sdp', type: 'offer', sdp: 'their offer' } as const

describe('media peer negotiation', () => {
  const had = 'RTCPeerConnection' in globalThis
  let before: unknown
  beforeEach(() => {
    before = (globalThis as any).RTCPeerConnection
    ;(globalThis as any).RTCPeerConnection = FakePeerConnection
  })
  afterEach(() => {
    if (had) (globalThis as any).RTCPeerConnection = before
    else delete (globalThis as any).RTCPeerConnection
    vi.useRealTimers()
  })

  it('rolls its crossing offer back only once that offer\'s ICE gathering completed, on the polite side', async () => {
    const { peer, pc, sent } = mediaPeer(true)
    pc.dispatchEvent(new Event('negotiationneeded'))
    // the other side's offer arrives while ours is still being set
    const answered = peer.signal(theirOffer)
    await settle()
    pc.gather('gathering')
    await settle()
    expect(sent.map((m) => m.t === 'sdp' && m.type)).toEqual(['offer'])
    expect(pc.calls).toEqual(['local offer'])

    pc.gather('complete')
    await answered
    expect(pc.calls).toEqual(['local offer', 'rollback', 'remote offer', 'local answer'])
    expect(sent.map((m) => m.t === 'sdp' && m.type)).toEqual(['offer', 'answer'])
  })

  it('rolls back at once when its offer\'s gathering had already completed', async () => {
    const { peer, pc, sent } = mediaPeer(true)
    pc.dispatchEvent(new Event('negotiationneeded'))
    await settle()
    pc.gather('gathering')
    pc.gather('complete')
    await peer.signal(theirOffer)
    expect(pc.calls).toEqual(['local offer', 'rollback', 'remote offer', 'local answer'])
    expect(sent.map((m) => m.t === 'sdp' && m.type)).toEqual(['offer', 'answer'])
  })

  it('rolls back anyway once its gathering ran MEDIA_ROLLBACK_GATHER_WAIT_MS without completing', async () => {
    vi.useFakeTimers()
    const { peer, pc, sent } = mediaPeer(true)
    pc.dispatchEvent(new Event('negotiationneeded'))
    await settle()
    pc.gather('gathering')
    const answered = peer.signal(theirOffer)
    await vi.advanceTimersByTimeAsync(MEDIA_ROLLBACK_GATHER_WAIT_MS - 1)
    expect(pc.calls).toEqual(['local offer'])
    await vi.advanceTimersByTimeAsync(1)
    await answered
    expect(pc.calls).toEqual(['local offer', 'rollback', 'remote offer', 'local answer'])
    expect(sent.map((m) => m.t === 'sdp' && m.type)).toEqual(['offer', 'answer'])
  })

  it('ignores the crossing offer on the impolite side, and takes the answer to its own', async () => {
    const { peer, pc, sent } = mediaPeer(false)
    pc.dispatchEvent(new Event('negotiationneeded'))
    await settle()
    pc.gather('gathering')
    await peer.signal(theirOffer)
    expect(pc.calls).toEqual(['local offer'])
    await peer.signal({ t: 'sdp', type: 'answer', sdp: 'their answer' })
    expect(pc.calls).toEqual(['local offer', 'remote answer'])
    expect(sent.map((m) => m.t === 'sdp' && m.type)).toEqual(['offer'])
  })

  it('answers an offer that does not cross its own at once, gathering or not', async () => {
    const { peer, pc, sent } = mediaPeer(true)
    pc.gather('gathering')
    await peer.signal(theirOffer)
    expect(pc.calls).toEqual(['remote offer', 'local answer'])
    expect(sent.map((m) => m.t === 'sdp' && m.type)).toEqual(['answer'])
  })
})
