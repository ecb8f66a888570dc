/**
 * One member's media RTCPeerConnection in one room, negotiated with the W3C "perfect negotiation"
 * pattern: either side may add or remove tracks at any time and send an offer; when two offers
 * cross, the polite side (the smaller peer ID) rolls its own back and answers, the impolite side
 * ignores the other's. Signals arrive in order (one stream per peer) and are handled one at a time.
 */
import { MEDIA_ROLLBACK_GATHER_WAIT_MS } from '../constants.js'
import { selectedCandidateType } from '../direct.js'
import type { MediaPeerStats } from './types.js'
import type { MediaSignal } from './wire.js'

export interface MediaPeerInit {
  /** Whether we give way when offers cross. Both sides must disagree: decide from the two peer IDs. */
  polite: boolean
  config: RTCConfiguration
  /** Sends a signalling message to the peer; failures are the caller's to log. */
  send: (msg: MediaSignal) => void
  onTrack: (evt: RTCTrackEvent) => void
  log: (fmt: string, ...args: unknown[]) => void
}

type Counters = Pick<MediaPeerStats, 'bitrateIn' | 'bitrateOut' | 'packetsLost' | 'framesDecoded' | 'rttMs' | 'candidateType'>

export class MediaPeer {
  readonly pc: RTCPeerConnection
  private readonly init: MediaPeerInit
  private makingOffer = false
  private ignoreOffer = false
  private settingRemoteAnswer = false
  /** our offer being made (negotiationneeded), if any */
  private making?: Promise<void>
  /** signals are handled one after another: each waits for the one before */
  private tail: Promise<void> = Promise.resolve()
  private last?: { at: number, bytesIn: number, bytesOut: number }
  counters: Counters = { bitrateIn: 0, bitrateOut: 0, packetsLost: 0, framesDecoded: 0 }
  private closed = false

  constructor (init: MediaPeerInit) {
    this.init = init
    this.pc = new RTCPeerConnection(init.config)
    this.pc.addEventListener('negotiationneeded', () => { void this.offer() })
    this.pc.addEventListener('icecandidate', ({ candidate }) => {
      // a null candidate (gathering done) needs no message: candidates are trickled until then
      if (candidate === null || candidate.candidate === '') return
      this.init.log('sending candidate %s', candidate.candidate)
      this.init.send({
        t: 'ice',
        candidate: candidate.candidate,
        ...(candidate.sdpMid != null ? { sdpMid: candidate.sdpMid } : {}),
        ...(candidate.sdpMLineIndex != null ? { sdpMLineIndex: candidate.sdpMLineIndex } : {}),
        ...(candidate.usernameFragment != null ? { usernameFragment: candidate.usernameFragment } : {})
      })
    })
    this.pc.addEventListener('track', init.onTrack)
    this.pc.addEventListener('iceconnectionstatechange', () => {
      this.init.log('ice %s (signaling %s)', this.pc.iceConnectionState, this.pc.signalingState)
      // ICE restarts on the offerer's side; the other side follows the new offer
      if (this.pc.iceConnectionState === 'failed') this.pc.restartIce()
    })
    this.pc.addEventListener('signalingstatechange', () => { this.init.log('signaling %s', this.pc.signalingState) })
    this.pc.addEventListener('icegatheringstatechange', () => { this.init.log('gathering %s', this.pc.iceGatheringState) })
  }

  /** Handles the peer's next signal, after the ones before it. */
  signal (msg: Extract<MediaSignal, { t: 'sdp' | 'ice' }>): Promise<void> {
    const run = this.tail.then(async () => { await this.handle(msg) })
    this.tail = run.catch((err) => { this.init.log('media signal %s failed - %e', msg.t, err) })
    return run
  }

  private async handle (msg: Extract<MediaSignal, { t: 'sdp' | 'ice' }>): Promise<void> {
    if (this.closed) return
    const { pc } = this
    if (msg.t === 'sdp') {
      const ready = !this.makingOffer && (pc.signalingState === 'stable' || this.settingRemoteAnswer)
      const collision = msg.type === 'offer' && !ready
      this.ignoreOffer = !this.init.polite && collision
      this.init.log('received %s in %s%s%s', msg.type, pc.signalingState, collision ? ', colliding' : '', this.ignoreOffer ? ': ignored' : '')
      if (this.ignoreOffer) return
      if (collision) {
        // we give way: our offer is rolled back below, but not while its ICE gathering runs
        await this.ownOfferGathered()
        if (this.closed) return
      }
      this.settingRemoteAnswer = msg.type === 'answer'
      try {
        // the polite side's pending offer is rolled back implicitly
        await pc.setRemoteDescription({ type: msg.type, sdp: msg.sdp })
      } finally {
        this.settingRemoteAnswer = false
      }
      if (msg.type === 'offer') {
        await pc.setLocalDescription()
        this.sendDescription()
      }
      return
    }
    this.init.log('received candidate %s in %s', msg.candidate, pc.signalingState)
    try {
      await pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex, usernameFragment: msg.usernameFragment })
    } catch (err) {
      this.init.log('candidate %s not added (%s) - %e', msg.candidate, pc.signalingState, err)
      // candidates of an offer we ignored cannot apply; anything else is worth knowing
      if (!this.ignoreOffer) throw err
    }
  }

  private async offer (): Promise<void> {
    if (this.closed) return
    this.init.log('negotiation needed in %s', this.pc.signalingState)
    const making = (async () => {
      try {
        this.makingOffer = true
        await this.pc.setLocalDescription()
        this.sendDescription()
      } catch (err) {
        this.init.log('media offer failed - %e', err)
      } finally {
        this.makingOffer = false
      }
    })()
    this.making = making
    await making
  }

  /**
   * Resolves once our offer being made is set and, if it is still pending, its ICE gathering is
   * complete (or MEDIA_ROLLBACK_GATHER_WAIT_MS passed). Chromium (seen in 156) wedges a connection
   * whose offer is rolled back while that offer's candidates are being gathered: the answer that
   * follows never gathers a candidate (`iceGatheringState` stays `'gathering'`, `restartIce()`
   * does not help), so ICE never starts. The first offer of a connection is the one that gathers,
   * and it is the one that collides when both sides add streams at once. Rolled back after its
   * gathering, the answer gathers normally. Reproduced in a plain page without libp2p (Chromium
   * 156.0.8078.114): rolled back while gathering, 3 to 10 connections in 10 gathered nothing; rolled
   * back once gathering completed, none in 20. No upstream report found to cite yet.
   */
  private async ownOfferGathered (): Promise<void> {
    await this.making
    const { pc } = this
    if (pc.signalingState !== 'have-local-offer' || pc.iceGatheringState === 'complete') return
    this.init.log('waiting for our offer\'s ICE gathering before rolling it back')
    await new Promise<void>((resolve) => {
      const settle = (): void => {
        clearTimeout(timer)
        pc.removeEventListener('icegatheringstatechange', onChange)
        pc.removeEventListener('signalingstatechange', onChange)
        resolve()
      }
      const onChange = (): void => {
        if (pc.iceGatheringState === 'complete' || pc.signalingState !== 'have-local-offer') settle()
      }
      const timer = setTimeout(() => {
        this.init.log('our offer\'s ICE gathering still runs after %d ms: rolling it back anyway', MEDIA_ROLLBACK_GATHER_WAIT_MS)
        settle()
      }, MEDIA_ROLLBACK_GATHER_WAIT_MS)
      pc.addEventListener('icegatheringstatechange', onChange)
      pc.addEventListener('signalingstatechange', onChange)
    })
  }

  /**
   * Sends our offer again if it is still waiting for its answer: the connection that carried it
   * (or the answer) dropped. A peer that had it applies it again and answers again.
   */
  resendOffer (): void {
    if (this.closed || this.makingOffer || this.pc.signalingState !== 'have-local-offer') return
    this.init.log('resending our offer')
    this.sendDescription()
  }

  private sendDescription (): void {
    const d = this.pc.localDescription
    if (d === null || (d.type !== 'offer' && d.type !== 'answer')) return
    this.init.log('sending %s', d.type)
    this.init.send({ t: 'sdp', type: d.type, sdp: d.sdp })
  }

  /** Reads the connection's stats: bitrates over the time since the last call. */
  async readStats (): Promise<Counters> {
    const report = await this.pc.getStats()
    let bytesIn = 0
    let bytesOut = 0
    let packetsLost = 0
    let framesDecoded = 0
    let rttMs: number | undefined
    report.forEach((s: any) => {
      if (s.type === 'inbound-rtp') {
        bytesIn += s.bytesReceived ?? 0
        packetsLost += s.packetsLost ?? 0
        framesDecoded += s.framesDecoded ?? 0
      } else if (s.type === 'outbound-rtp') {
        bytesOut += s.bytesSent ?? 0
      } else if (s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded' && typeof s.currentRoundTripTime === 'number') {
        rttMs = Math.round(s.currentRoundTripTime * 1000)
      }
    })
    const now = performance.now()
    const seconds = this.last === undefined ? 0 : (now - this.last.at) / 1000
    const rate = (bytes: number, before: number | undefined): number => seconds > 0 && before !== undefined ? Math.max(0, Math.round((bytes - before) * 8 / seconds)) : 0
    this.counters = {
      bitrateIn: rate(bytesIn, this.last?.bytesIn),
      bitrateOut: rate(bytesOut, this.last?.bytesOut),
      packetsLost,
      framesDecoded,
      rttMs,
      candidateType: await selectedCandidateType(this.pc).catch(() => undefined)
    }
    this.last = { at: now, bytesIn, bytesOut }
    return this.counters
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.pc.close()
  }
}
