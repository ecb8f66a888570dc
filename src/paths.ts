import type { Connection } from '@libp2p/interface'

/** How a room peer is reached: over our own WebRTC connection, or only through a relay. */
export type PeerPath = 'direct' | 'relayed'

/**
 * A connection carries room traffic only if it is an open WebRTC connection (its multiplexer is
 * the WebRTC data-channel muxer, `/webrtc`) with no relay limits. The remote address alone does
 * not tell: the dialer's WebRTC connection keeps the `/p2p-circuit/webrtc` address it dialed.
 */
export function isDirect (conn: Connection): boolean {
  return conn.status === 'open' && conn.limits == null && conn.multiplexer === '/webrtc'
}

/** A relayed circuit connection: limited by the relay, used only to signal WebRTC. */
export function isRelayed (conn: Connection): boolean {
  if (conn.multiplexer === '/webrtc') return false
  return conn.limits != null || conn.remoteAddr.toString().includes('/p2p-circuit')
}

export function pathOf (conns: Connection[]): PeerPath {
  return conns.some(isDirect) ? 'direct' : 'relayed'
}
