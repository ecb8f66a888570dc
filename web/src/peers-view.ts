/**
 * The peer list: ourselves first (with our identity), then one row per room peer. The host wears
 * a crown; while we are the host, every joined peer gets a button to hand the role to.
 *
 * Attributes the CSS and the end-to-end test read: `data-peer-id`, `data-path` (the library's
 * path), `data-state` (our reading of it), `data-self` and `data-host` (`"true"` when set).
 */
import { byId, duration, h, hueOf, peerLabel } from './dom.js'
import type { PeerPath, RoomNodeIdentity, RoomPeerStats } from 'p2p-rooms'

interface PeerRow {
  li: HTMLLIElement
  badge: HTMLElement
  note: HTMLElement
  /** RTT, last heard, dial failures: refreshed from `room.stats()`. */
  numbers: HTMLElement
  handOff: HTMLButtonElement
  /** Pending removal of a row that shows why its peer left. */
  removal?: ReturnType<typeof setTimeout>
}

export type PeerState = 'discovered' | 'joining' | 'ready' | 'healing'

const NOTES: Record<PeerState, string> = {
  discovered: 'seen through the relay, opening WebRTC…',
  joining: 'WebRTC open, joining the room…',
  ready: 'direct: messages flow peer to peer',
  healing: 'direct connection dropped, reconnecting…'
}

const IDENTITY_NOTES: Record<RoomNodeIdentity['kind'], string> = {
  tab: "this tab's key (sessionStorage)",
  persistent: "this browser profile's key (IndexedDB)",
  ephemeral: 'a fresh key, kept nowhere',
  supplied: 'a key supplied by the page'
}

/** How long a departed peer's row stays, greyed out with the reason, before it goes. */
const LEAVING_MS = 2500

export class PeerList {
  private readonly list = byId<HTMLUListElement>('peer-list')
  private readonly empty = byId<HTMLElement>('peers-empty')
  private readonly count = byId<HTMLElement>('peer-count')
  private readonly rows = new Map<string, PeerRow>()
  private self?: PeerRow
  private selfId?: string
  private host?: string
  private onHandOff: (peerId: string) => void = () => {}

  /** Our own row, first in the list: identity kind, and whether the key was restored. */
  setSelf (identity: RoomNodeIdentity, asked: string): void {
    this.selfId = identity.peerId
    const row = this.self ?? (this.self = this.row(identity.peerId, ' (you)'))
    row.li.dataset.self = 'true'
    row.li.dataset.identity = identity.kind
    row.li.dataset.restored = String(identity.restored)
    this.list.prepend(row.li)
    row.badge.textContent = 'you'
    const fellBack = identity.kind !== asked && identity.kind !== 'supplied'
    row.note.textContent = `identity: ${identity.kind}, ${identity.restored ? 'restored: same peer ID as before' : 'new peer ID'} · ${IDENTITY_NOTES[identity.kind]}` +
      (fellBack ? ` (asked for ${asked}: that key is in use by another tab, or this browser cannot keep it)` : '')
    this.markHost()
  }

  /** Adds or updates a peer's row; `joinMs` is the time from discovery to a usable direct path. */
  set (peerId: string, path: PeerPath, state: PeerState, joinMs?: number): void {
    let row = this.rows.get(peerId)
    if (row === undefined) {
      row = this.row(peerId)
      this.rows.set(peerId, row)
      this.list.append(row.li)
    }
    clearTimeout(row.removal)
    row.removal = undefined
    row.li.dataset.path = path
    row.li.dataset.state = state
    if (joinMs !== undefined) row.li.dataset.joinMs = String(joinMs)
    row.badge.textContent = path
    row.note.textContent = state === 'ready' && joinMs !== undefined ? `${NOTES[state]} · direct in ${joinMs} ms` : NOTES[state]
    this.markHost()
    this.refreshCount()
  }

  /** Greys the row out with `why`, then removes it. */
  leave (peerId: string, why: string): void {
    const row = this.rows.get(peerId)
    if (row === undefined) return
    row.li.dataset.state = 'left'
    row.badge.textContent = 'left'
    row.note.textContent = why
    row.numbers.textContent = ''
    row.handOff.hidden = true
    clearTimeout(row.removal)
    row.removal = setTimeout(() => {
      row.li.remove()
      if (this.rows.get(peerId) === row) this.rows.delete(peerId)
      this.refreshCount()
    }, LEAVING_MS)
    this.refreshCount()
  }

  /** Crowns `host` (possibly ourselves); hand-off buttons show on joined peers while we are it. */
  setHost (host: string | undefined): void {
    this.host = host
    this.markHost()
  }

  onHandOffClick (handler: (peerId: string) => void): void {
    this.onHandOff = handler
  }

  /** RTT and liveness per peer, from `room.stats().peers`. */
  setStats (peers: Record<string, RoomPeerStats>): void {
    for (const [peerId, row] of this.rows) {
      const s = peers[peerId]
      if (s === undefined || row.li.dataset.state === 'left') continue
      const parts = []
      if (s.rttMs !== undefined) parts.push(`rtt ${duration(s.rttMs)}`)
      if (s.lastHeardMs !== undefined) parts.push(`heard ${duration(s.lastHeardMs)} ago`)
      if (s.dialFailures > 0) parts.push(`${s.dialFailures} failed dial${s.dialFailures === 1 ? '' : 's'} of ${s.dialAttempts}`)
      row.numbers.textContent = parts.join(' · ')
      row.numbers.title = s.lastError !== undefined ? `last dial error: ${s.lastError}` : ''
      if (s.rttMs !== undefined) row.li.dataset.rttMs = String(Math.round(s.rttMs))
    }
  }

  /** Forgets every peer (switching rooms); our own row stays. */
  clear (): void {
    for (const row of this.rows.values()) {
      clearTimeout(row.removal)
      row.li.remove()
    }
    this.rows.clear()
    this.host = undefined
    this.markHost()
    this.refreshCount()
  }

  private row (peerId: string, suffix = ''): PeerRow {
    const li = h('li', 'peer')
    li.dataset.peerId = peerId
    li.style.setProperty('--hue', String(hueOf(peerId)))
    const badge = h('span', 'path-badge')
    const crown = h('span', 'host-badge', '♛ host')
    crown.title = 'The room\'s host: the member that joined first, or was handed the role'
    const handOff = h('button', 'hand-off', 'Make host')
    handOff.type = 'button'
    handOff.hidden = true
    handOff.title = 'Hand the host role to this peer'
    handOff.addEventListener('click', () => { this.onHandOff(peerId) })
    const note = h('span', 'peer-note')
    const numbers = h('span', 'peer-numbers')
    li.append(h('span', 'dot'), peerLabel(peerId, suffix), badge, crown, handOff, note, numbers)
    return { li, badge, note, numbers, handOff }
  }

  private markHost (): void {
    const weAreHost = this.host !== undefined && this.host === this.selfId
    if (this.self !== undefined) toggle(this.self.li, 'host', this.host === this.selfId)
    for (const [peerId, row] of this.rows) {
      toggle(row.li, 'host', peerId === this.host)
      row.handOff.hidden = !(weAreHost && row.li.dataset.state === 'ready')
    }
  }

  private refreshCount (): void {
    const present = [...this.rows.values()].filter((r) => r.li.dataset.state !== 'left').length
    this.count.textContent = String(present)
    this.empty.hidden = this.rows.size > 0
  }
}

function toggle (el: HTMLElement, key: string, on: boolean): void {
  if (on) el.dataset[key] = 'true'
  else delete el.dataset[key]
}
