/**
 * Bare libp2p nodes wired like a browser room node (no room layer), for the tests that inject
 * faults into `@libp2p/webrtc`, and event-driven waits for them.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

/** A Node libp2p node configured like a browser room node, minus the room services. */
export async function roomLikeNode (init: { dialTimeout?: number } = {}): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/p2p-circuit', '/webrtc'] },
    transports: [
      webSockets(),
      webRTC({ rtcConfiguration: { iceServers: [] } }),
      circuitRelayTransport()
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    connectionManager: init.dialTimeout === undefined ? undefined : { dialTimeout: init.dialTimeout, addressDialTimeout: init.dialTimeout },
    services: { identify: identify() }
  })
}

/**
 * Resolves with `find()` as soon as it returns something: at once, or after one of `events` on
 * `target`; rejects after `timeoutMs` naming `what` was awaited.
 */
export async function until<T> (target: EventTarget, events: string[], find: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const now = find()
  if (now !== undefined) return now
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      detach()
      reject(new Error(`no ${what} within ${timeoutMs} ms`))
    }, timeoutMs)
    const detach = (): void => { for (const e of events) target.removeEventListener(e, check) }
    function check (): void {
      const found = find()
      if (found === undefined) return
      clearTimeout(timer)
      detach()
      resolve(found)
    }
    for (const e of events) target.addEventListener(e, check)
  })
}

/** Resolves with the node's `/p2p-circuit/webrtc/` address once it has a relay reservation. */
export async function webRTCAddress (node: Libp2p, timeoutMs = 30_000): Promise<Multiaddr> {
  return until(node, ['transport:listening', 'self:peer:update'],
    () => node.getMultiaddrs().find((ma) => ma.toString().includes('/p2p-circuit/webrtc/')),
    '/p2p-circuit/webrtc/ address', timeoutMs)
}
