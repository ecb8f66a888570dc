/**
 * Guards patches/@libp2p+webrtc+6.0.33.patch (upstream @libp2p/webrtc 6.0.33,
 * dist/src/private-to-private/initiate-connection.js).
 *
 * Upstream fault: after `readCandidatesUntilConnected(...)` the initiator waits for its `init`
 * data channel to fire `open` whenever `readyState !== 'open'`, then closes it and waits for
 * `close`. If that channel already opened and closed before the initiator looks at it (the
 * recipient's muxer closes `init` as soon as it adopts it, and a loaded CPU delays the
 * initiator), `open` never fires again and the dial hangs until the address dial timeout.
 *
 * This is a FAULT INJECTION, not a timing race: the test patches node-datachannel's
 * RTCPeerConnection prototype (the class @libp2p/webrtc uses in Node) so that, for the dial's
 * peer connections, the `init` channel is closed the moment it opens and `connectionState`
 * reads 'connecting' instead of 'connected' until that channel has reached 'closed'. So when
 * the initiator gets past `readCandidatesUntilConnected` the channel is 'closed', every time.
 * Without the patch the dial fails with a TimeoutError; with it the dial completes over WebRTC.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { RTCPeerConnection } from 'node-datachannel/polyfill'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { roomLikeNode, webRTCAddress } from './webrtc-nodes.js'
import type { Connection, Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const relayAddr = inject('relayAddr')

/**
 * One injected fault, shared by the initiator's peer connection and (paired through the offer's
 * ICE ufrag) the recipient's. Both read as not yet 'connected' until the initiator's `init`
 * channel is 'closed'. Holding the recipient back too matters: `readCandidatesUntilConnected`
 * also returns when the signaling stream ends, and the recipient closes that stream as soon as
 * it sees 'connected' - the initiator would then get past it with `init` still open.
 */
interface Fault {
  /** the initiator's `init` channel fired `open` (so the injected close really ran) */
  initOpened: boolean
  /** the `init` channel is 'closed': libp2p may now see the real connection state */
  released: boolean
  initChannel: RTCDataChannel
  peerConnections: Set<RTCPeerConnection>
  /** called if a peer connection fails before `init` ever opened: the fault was never reached */
  onUnreached?: (state: string) => void
}

const faultByPc = new WeakMap<RTCPeerConnection, Fault>()
const faultByUfrag = new Map<string, Fault>()
const faults: Fault[] = []
/** handed to each new fault as its `onUnreached`, set by the dial attempt in progress */
let onUnreached: ((state: string) => void) | undefined

const proto = RTCPeerConnection.prototype
const original = {
  createDataChannel: proto.createDataChannel,
  createOffer: proto.createOffer,
  setRemoteDescription: proto.setRemoteDescription,
  connectionState: Object.getOwnPropertyDescriptor(proto, 'connectionState')
}

function realConnectionState (pc: RTCPeerConnection): RTCPeerConnectionState {
  return original.connectionState!.get!.call(pc)
}

function iceUfrag (sdp: string | undefined): string | undefined {
  return sdp?.match(/^a=ice-ufrag:(\S+)/m)?.[1]
}

function join (pc: RTCPeerConnection, fault: Fault): void {
  fault.peerConnections.add(pc)
  faultByPc.set(pc, fault)
  pc.addEventListener('connectionstatechange', () => {
    const state = realConnectionState(pc)
    if (!fault.initOpened && (state === 'failed' || state === 'closed')) fault.onUnreached?.(state)
  })
}

function injectFault (): void {
  if (original.connectionState?.get == null) {
    throw new Error('node-datachannel RTCPeerConnection has no connectionState getter to wrap')
  }

  // the initiator: `initiateConnection` creates the only channel labelled 'init'
  proto.createDataChannel = function (this: RTCPeerConnection, label: string, opts?: RTCDataChannelInit) {
    const channel = original.createDataChannel.call(this, label, opts)
    if (label !== 'init') return channel

    const fault: Fault = { initOpened: false, released: false, initChannel: channel, peerConnections: new Set(), onUnreached }
    faults.push(fault)
    join(this, fault)
    // closed as soon as it opens, before the initiator can look at it
    channel.addEventListener('open', () => {
      fault.initOpened = true
      channel.close()
    }, { once: true })
    channel.addEventListener('close', () => {
      // only now may libp2p see 'connected': re-announce the (unchanged) real state
      fault.released = true
      for (const pc of fault.peerConnections) pc.dispatchEvent(new Event('connectionstatechange'))
    }, { once: true })
    return channel
  }

  // remember the initiator's offer so the recipient that receives it joins the same fault
  proto.createOffer = async function (this: RTCPeerConnection, ...args: any[]) {
    const offer = await (original.createOffer as (...a: any[]) => Promise<RTCSessionDescriptionInit>).apply(this, args)
    const fault = faultByPc.get(this)
    const ufrag = iceUfrag(offer.sdp)
    if (fault != null && ufrag != null) faultByUfrag.set(ufrag, fault)
    return offer
  } as typeof proto.createOffer

  proto.setRemoteDescription = async function (this: RTCPeerConnection, description: RTCSessionDescriptionInit) {
    if (description.type === 'offer') {
      const fault = faultByUfrag.get(iceUfrag(description.sdp) ?? '')
      if (fault != null) join(this, fault)
    }
    return original.setRemoteDescription.call(this, description)
  }

  Object.defineProperty(proto, 'connectionState', {
    ...original.connectionState,
    get (this: RTCPeerConnection) {
      const state = realConnectionState(this)
      const fault = faultByPc.get(this)
      return fault != null && !fault.released && state === 'connected' ? 'connecting' : state
    }
  })
}

function restore (): void {
  proto.createDataChannel = original.createDataChannel
  proto.createOffer = original.createOffer
  proto.setRemoteDescription = original.setRemoteDescription
  if (original.connectionState != null) Object.defineProperty(proto, 'connectionState', original.connectionState)
  faultByUfrag.clear()
}

/**
 * Dials `addr` over WebRTC with the fault injected. An attempt whose peer connection fails
 * before the `init` channel ever opened never reached the fault (node-datachannel 0.33 /
 * libdatachannel 0.24 sometimes fails the DTLS handshake with "unknown CA" on its own), so it
 * is aborted at once and dialled again; any other failure - such as the TimeoutError the
 * upstream bug causes - fails the test.
 */
async function dialThroughFault (node: Libp2p, addr: Multiaddr, attempts = 5): Promise<Connection> {
  for (let attempt = 1; ; attempt++) {
    const unreached = new AbortController()
    onUnreached = (state) => {
      unreached.abort(new Error(`peer connection became "${state}" before the init channel opened`))
    }
    try {
      return await node.dial(addr, { signal: AbortSignal.any([AbortSignal.timeout(15_000), unreached.signal]) })
    } catch (err) {
      if (!unreached.signal.aborted || attempt >= attempts) throw err
      console.warn(`attempt ${attempt} never reached the fault (${String(unreached.signal.reason?.message)}), dialling again`)
    } finally {
      onUnreached = undefined
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
})

describe('@libp2p/webrtc init channel patch', () => {
  it('completes a dial when the init channel closed before the initiator looked at it', async () => {
    const [a, b] = nodes = await Promise.all([roomLikeNode(), roomLikeNode()])
    const addrs = Promise.all([webRTCAddress(a), webRTCAddress(b)])
    await Promise.all([a.dial(multiaddr(relayAddr)), b.dial(multiaddr(relayAddr))])
    const [, bAddr] = await addrs
    expect(bAddr.toString()).toMatch(new RegExp(`/p2p-circuit/webrtc/p2p/${b.peerId.toString()}$`))

    const conn = await dialThroughFault(a, bAddr)

    expect(conn.multiplexer).toBe('/webrtc')
    expect(conn.remotePeer.equals(b.peerId)).toBe(true)
    // the fault really was injected into the dial that succeeded, on both sides
    const fault = faults.at(-1)!
    expect(fault.initOpened).toBe(true)
    expect(fault.released).toBe(true)
    expect(fault.initChannel.readyState).toBe('closed')
    expect(fault.peerConnections.size).toBe(2)
  })
})
