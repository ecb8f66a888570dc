/**
 * The relays panel: every relay the node knows (configured, or learned from the relays'
 * federation), whether we are connected to it, and whether we hold a reservation there, i.e.
 * whether room peers can reach us through it. Read from `node.relays.list()`.
 */
import { byId, h, peerLabel } from './dom.js'
import type { RelayInfo } from 'p2p-rooms'

export class RelaysView {
  private readonly list = byId<HTMLUListElement>('relay-list')
  private readonly count = byId<HTMLElement>('relay-count')

  render (relays: RelayInfo[]): void {
    // reserved first: those are the ones that make us reachable
    const sorted = [...relays].sort((a, b) => Number(b.reserved) - Number(a.reserved) || Number(b.connected) - Number(a.connected))
    this.list.replaceChildren(...sorted.map((r) => {
      const li = h('li', 'relay')
      li.dataset.peerId = r.peerId
      li.dataset.connected = String(r.connected)
      li.dataset.reserved = String(r.reserved)
      const addr = h('code', 'relay-addr', r.multiaddr)
      addr.title = r.multiaddr
      li.append(
        peerLabel(r.peerId),
        h('span', 'flag connected', r.connected ? 'connected' : 'not connected'),
        h('span', 'flag reserved', r.reserved ? 'reserved' : 'no reservation'),
        addr
      )
      return li
    }))
    this.count.textContent = String(relays.length)
  }
}

/** One line for the "You" card: are we reachable through the relays? */
export function relaySummary (relays: RelayInfo[]): { state: 'ok' | 'warn' | 'down', text: string } {
  const connected = relays.filter((r) => r.connected).length
  const reserved = relays.filter((r) => r.reserved).length
  if (reserved > 0) return { state: 'ok', text: `reserved on ${reserved} of ${relays.length} relay${relays.length === 1 ? '' : 's'}` }
  if (connected > 0) return { state: 'warn', text: 'connected, no reservation (new peers cannot reach you)' }
  return { state: 'down', text: 'disconnected: new peers cannot find you' }
}
