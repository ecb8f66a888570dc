/**
 * Relay connection state. The library reports the first reservation (`createRoomNode` resolves,
 * `reservationMs`) but has no event for losing or regaining the relay, so this watches the
 * underlying libp2p node that `node.libp2p` exposes for inspection.
 */
import { relayPeerId } from './config.js'
import type { RoomNode } from 'p2p-rooms'

export interface RelaySnapshot {
  /** Configured relays with an open connection. */
  connected: number
  total: number
  /** Whether we hold a reservation, i.e. have a `/p2p-circuit` address peers can dial. */
  reserved: boolean
}

export function watchRelay (node: RoomNode, relays: string[], onChange: (s: RelaySnapshot) => void): () => void {
  const ids = new Set(relays.map(relayPeerId).filter((id): id is string => id !== undefined))
  const { libp2p } = node
  const snapshot = (): RelaySnapshot => {
    const open = new Set(libp2p.getConnections()
      .filter((c) => c.status === 'open' && ids.has(c.remotePeer.toString()))
      .map((c) => c.remotePeer.toString()))
    return {
      connected: open.size,
      total: ids.size,
      reserved: libp2p.getMultiaddrs().some((ma) => ma.toString().includes('/p2p-circuit'))
    }
  }
  const update = (): void => { onChange(snapshot()) }
  libp2p.addEventListener('connection:open', update)
  libp2p.addEventListener('connection:close', update)
  libp2p.addEventListener('self:peer:update', update)
  update()
  return () => {
    libp2p.removeEventListener('connection:open', update)
    libp2p.removeEventListener('connection:close', update)
    libp2p.removeEventListener('self:peer:update', update)
  }
}
