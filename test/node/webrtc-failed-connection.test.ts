// Guards patches/@libp2p+webrtc+6.0.33.patch (waitForConnected): upstream @libp2p/webrtc 6.0.33 lets a dial whose DTLS handshake failed wait for the dial timeout; this test is a FAULT INJECTION.
/**
 * Upstream fault: `readCandidatesUntilConnected` (dist/src/private-to-private/util.js) returns
 * normally when the RTCPeerConnection becomes 'failed' or 'closed' (it swallows its own error
 * unless the signal was aborted), so the initiator logs "initiator connected" and waits for its
 * `init` data channel until the dial times out. node-datachannel 0.33 fails the DTLS handshake
 * on its own in a few percent of dials ("unknown CA"), which made a retry at our layer wait for
 * the whole dial timeout. The patch makes the initiator (and the recipient) wait for
 * `connectionState === 'connected'` after it and fail at once with SDPHandshakeFailedError on
 * 'failed'/'closed'.
 *
 * Fault injection, deterministic: the test wraps node-datachannel's
 * `RTCPeerConnection.prototype.setRemoteDescription` (the class @libp2p/webrtc uses in Node) so
 * that, for one dial, the initiator's peer connection (the one that created the 'init' channel)
 * applies the SDP answer with a corrupted `a=fingerprint`. libdatachannel then rejects the
 * recipient's DTLS certificate with exactly the errors of the spontaneous fault ("DTLS alert:
 * unknown CA", "certificate verify failed") and both peer connections end: libdatachannel goes
 * Failed and at once Closed, and as node-datachannel reads the state when it dispatches
 * `connectionstatechange`, libp2p usually sees 'closed' rather than 'failed'.
 * Without the patch that dial fails with a TimeoutError after the 15 s dial timeout; with it, it
 * fails with SDPHandshakeFailedError at once, a second (un-injected) dial between the same nodes
 * succeeds over WebRTC, and the recipient never registered a connection over the dead peer
 * connection (unpatched, it upgrades it and emits `connection:open` for it).
 */
import { multiaddr } from '@multiformats/multiaddr'
import { RTCPeerConnection } from 'node-datachannel/polyfill'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { roomLikeNode, until, webRTCAddress } from './webrtc-nodes.js'
import type { Connection, Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const relayAddr = inject('relayAddr')

/** long enough that waiting for it is unmistakable, short enough for the unpatched run to finish */
const DIAL_TIMEOUT = 15_000

/** One injected fault: the initiator peer connection it was applied to and what became of it. */
interface Fault {
  peerConnection: RTCPeerConnection
  /** the fingerprint line as the recipient sent it, and as the initiator applied it */
  fingerprint: { sent: string, applied: string }
  /** resolves with the first 'failed' or 'closed' state the peer connection really reached */
  ended: Promise<RTCPeerConnectionState>
}

const proto = RTCPeerConnection.prototype
const original = {
  createDataChannel: proto.createDataChannel,
  setRemoteDescription: proto.setRemoteDescription
}

/** the initiator peer connections created while armed: their SDP answer gets corrupted */
const targets = new WeakSet<RTCPeerConnection>()
const faults: Fault[] = []
/** how many dials still get the fault */
let armed = 0

/** Flips the first hex digit of the `a=fingerprint` value: same format, wrong certificate. */
function corruptFingerprint (sdp: string): { sdp: string, sent: string, applied: string } {
  const match = sdp.match(/^a=fingerprint:(\S+) ([0-9A-Fa-f])(\S*)$/m)
  if (match == null) throw new Error(`no a=fingerprint line in the SDP answer:\n${sdp}`)
  const [line, algo, first, rest] = match
  const applied = `a=fingerprint:${algo} ${first.toUpperCase() === 'A' ? 'B' : 'A'}${rest}`
  return { sdp: sdp.replace(line, applied), sent: line, applied }
}

function injectFault (): void {
  // the initiator: `initiateConnection` creates the only channel labelled 'init'
  proto.createDataChannel = function (this: RTCPeerConnection, label: string, opts?: RTCDataChannelInit) {
    if (label === 'init' && armed > 0) {
      armed--
      targets.add(this)
    }
    return original.createDataChannel.call(this, label, opts)
  }

  proto.setRemoteDescription = async function (this: RTCPeerConnection, description: RTCSessionDescriptionInit) {
    if (description.type !== 'answer' || !targets.has(this)) {
      return original.setRemoteDescription.call(this, description)
    }
    targets.delete(this)
    const { sdp, sent, applied } = corruptFingerprint(description.sdp ?? '')
    const ended = new Promise<RTCPeerConnectionState>((resolve) => {
      const onChange = (): void => {
        const state = this.connectionState
        if (state !== 'failed' && state !== 'closed') return
        this.removeEventListener('connectionstatechange', onChange)
        resolve(state)
      }
      this.addEventListener('connectionstatechange', onChange)
    })
    faults.push({ peerConnection: this, fingerprint: { sent, applied }, ended })
    return original.setRemoteDescription.call(this, { type: 'answer', sdp })
  }
}

function restore (): void {
  proto.createDataChannel = original.createDataChannel
  proto.setRemoteDescription = original.setRemoteDescription
  armed = 0
}

async function dial (node: Libp2p, addr: Multiaddr): Promise<Connection> {
  return node.dial(addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT) })
}

function isWebRTC (conn: Connection): boolean {
  return conn.remoteAddr.getComponents().some((c) => c.name === 'webrtc')
}

/** Resolves with `node`'s open WebRTC connection from `from` (waiting for its `connection:open`). */
async function recipientConnection (node: Libp2p, from: Libp2p, timeoutMs = 10_000): Promise<Connection> {
  return until(node, ['connection:open'],
    () => node.getConnections(from.peerId).find((c) => isWebRTC(c) && c.status === 'open'),
    `WebRTC connection from ${from.peerId.toString()}`, timeoutMs)
}

/** The errors a rejected dial carries (libp2p throws an AggregateError when several addresses failed). */
function dialErrors (err: unknown): Error[] {
  return err instanceof AggregateError ? err.errors : [err as Error]
}

/**
 * The un-injected dial. node-datachannel 0.33 sometimes fails the DTLS handshake on its own - with
 * the patch that is the same prompt SDPHandshakeFailedError, so such an attempt is dialled again;
 * any other failure (a timeout above all) fails the test.
 */
async function dialUninjected (node: Libp2p, addr: Multiaddr, attempts = 4): Promise<Connection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await dial(node, addr)
    } catch (err) {
      if (attempt >= attempts || !dialErrors(err).every((e) => e?.name === 'SDPHandshakeFailedError')) throw err
      console.warn(`un-injected dial attempt ${attempt} failed on its own (${String((err as Error).message)}), dialling again`)
    }
  }
}

let nodes: Libp2p[] = []

beforeAll(() => { injectFault() })
afterAll(() => { restore() })
afterEach(async () => {
  await Promise.all(nodes.map(async (node) => { await node.stop() }))
  nodes = []
  faults.length = 0
  armed = 0
})

describe('@libp2p/webrtc failed peer connection patch', () => {
  it('fails the dial as soon as DTLS fails instead of waiting for the timeout', async () => {
    const [a, b] = nodes = await Promise.all([roomLikeNode({ dialTimeout: DIAL_TIMEOUT }), roomLikeNode({ dialTimeout: DIAL_TIMEOUT })])
    const addrs = Promise.all([webRTCAddress(a), webRTCAddress(b)])
    await Promise.all([a.dial(multiaddr(relayAddr)), b.dial(multiaddr(relayAddr))])
    const [, bAddr] = await addrs
    expect(bAddr.toString()).toMatch(new RegExp(`/p2p-circuit/webrtc/p2p/${b.peerId.toString()}$`))

    // every WebRTC connection the recipient registers from the initiator
    const recipientOpened: Connection[] = []
    b.addEventListener('connection:open', ({ detail }) => {
      if (detail.remotePeer.equals(a.peerId) && isWebRTC(detail)) recipientOpened.push(detail)
    })

    // the injected dial: DTLS fails, the dial must reject with that failure, not time out
    armed = 1
    const startedAt = Date.now()
    const failure = await dial(a, bAddr).then(
      (conn) => { throw new Error(`the injected dial succeeded over ${conn.multiplexer ?? 'nothing'}`) },
      (err: unknown) => err
    )
    const failedAfterMs = Date.now() - startedAt

    // the fault really was injected, and really made the initiator's peer connection fail
    expect(faults).toHaveLength(1)
    const [fault] = faults
    expect(fault.fingerprint.applied).not.toBe(fault.fingerprint.sent)
    expect(['failed', 'closed']).toContain(await fault.ended)

    const errors = dialErrors(failure)
    console.info(`injected dial rejected after ${failedAfterMs} ms with ${errors.map((e) => `${e?.name}: ${e?.message}`).join('; ')}`)
    for (const err of errors) {
      expect(err?.name).not.toBe('TimeoutError')
      expect(err?.name).not.toBe('AbortError')
    }
    expect(errors.map((e) => e?.name)).toContain('SDPHandshakeFailedError')

    // a retry right after the failure works: the same two nodes, no fault
    const conn = await dialUninjected(a, bAddr)
    expect(faults).toHaveLength(1)
    expect(conn.multiplexer).toBe('/webrtc')
    expect(conn.remotePeer.equals(b.peerId)).toBe(true)

    // the recipient's side of the patch: it never handed a failed peer connection to its
    // upgrader, so the only WebRTC connection it registered from `a` is the working one
    const inbound = await recipientConnection(b, a)
    expect(inbound.status).toBe('open')
    expect(recipientOpened.map((c) => `${c.id} ${c.status}`)).toEqual([`${inbound.id} open`])
  })
})
