/**
 * The "Network" drawer: everything about how this tab is connected, for developers and the
 * curious, out of the conversation's way. You (name, peer ID, identity, reservation time), each
 * connection (path, round-trip time, ICE candidate type, dial attempts, and the timeline of
 * meeting it), the relays (`node.relays.list()`), the room's counters and an event log.
 */
import { byId, clockSeconds, duration, h, nameTag, plural } from './dom.js'
import { CANDIDATE_WORDS, qualityBadge } from './people-view.js'
import type { Directory } from './names.js'
import type { PeerStats } from './people-view.js'
import type { DropReason, PeerPath, RelayInfo, RoomNodeIdentity, RoomStats } from 'p2p-rooms'

/** What each drop reason means; the keys are the library's `DropReason`s. */
const DROP_REASONS: Record<DropReason, string> = {
  malformed: 'not a room message of this version, or a body that does not parse',
  tooLarge: "over the room's maxMessageBytes",
  rateLimited: "over the sender's rate limit (messagesPerSecond, burst)",
  notHost: 'data from a non-host in a one-way room',
  unauthenticated: 'failed authentication in a private room: wrong secret or tampered',
  duplicate: 'a sequence number already delivered',
  wrongType: "data that does not fit the room's session type",
  notMember: 'from a peer that is not a member'
}

/** The library's timeline phases, in order, in words; phases it adds later are shown by their key. */
const PHASES: Record<string, string> = {
  discovered: 'discovered',
  dialStarted: 'dial started',
  connected: 'connected',
  gossipReady: 'gossip ready',
  joined: 'joined'
}

const IDENTITY_WORDS: Record<RoomNodeIdentity['kind'], string> = {
  tab: "this tab's key, kept across reloads",
  persistent: "this browser's key, kept across restarts",
  ephemeral: 'a fresh key, kept nowhere',
  supplied: 'a key supplied by the page'
}

export type LogKind = 'info' | 'join' | 'leave' | 'host' | 'relay' | 'warn' | 'error'

export class NetworkView {
  private readonly app = byId<HTMLElement>('app')
  private readonly drawer = byId<HTMLElement>('network')
  private readonly toggle = byId<HTMLButtonElement>('network-btn')
  private readonly ownName = byId<HTMLElement>('own-name')
  private readonly ownId = byId<HTMLElement>('own-id')
  private readonly identity = byId<HTMLElement>('own-identity')
  private readonly reservation = byId<HTMLElement>('reservation')
  private readonly peerList = byId<HTMLUListElement>('net-peer-list')
  private readonly peersEmpty = byId<HTMLElement>('net-peers-empty')
  private readonly relayList = byId<HTMLUListElement>('relay-list')
  private readonly relayCount = byId<HTMLElement>('relay-count')
  private readonly sent = byId<HTMLElement>('stat-sent')
  private readonly received = byId<HTMLElement>('stat-received')
  private readonly gaps = byId<HTMLElement>('stat-gaps')
  private readonly dropped = byId<HTMLElement>('stat-dropped')
  private readonly drops = byId<HTMLUListElement>('stat-drops')
  private readonly log = byId<HTMLOListElement>('log')
  private readonly dir: Directory

  constructor (dir: Directory) {
    this.dir = dir
    this.toggle.addEventListener('click', () => { this.setOpen(this.drawer.hidden) })
    byId('network-close').addEventListener('click', () => { this.setOpen(false); this.toggle.focus() })
    this.drawer.addEventListener('keydown', (e) => { if (e.key === 'Escape') { this.setOpen(false); this.toggle.focus() } })
  }

  get open (): boolean {
    return !this.drawer.hidden
  }

  setOpen (open: boolean): void {
    this.drawer.hidden = !open
    this.app.dataset.network = open ? 'open' : 'closed'
    this.toggle.setAttribute('aria-expanded', String(open))
  }

  setIdentity (identity: RoomNodeIdentity, asked: string): void {
    this.ownId.textContent = identity.peerId
    const fellBack = identity.kind !== asked && identity.kind !== 'supplied'
    this.identity.textContent = `${identity.kind}: ${IDENTITY_WORDS[identity.kind]}${identity.restored ? ' (restored: same peer ID as before)' : ''}` +
      (fellBack ? `. Asked for ${asked}: that key is in use by another tab, or this browser cannot keep it` : '')
  }

  setName (peerId: string): void {
    this.ownName.replaceChildren(nameTag(this.dir, peerId, peerId))
  }

  setReservationMs (ms: number): void {
    this.reservation.textContent = `held after ${duration(ms)}`
  }

  /** Every member's connection, from `room.stats()` and our own event times (ms since joining). */
  renderPeers (peers: Array<{ peerId: string, path: PeerPath }>, stats: Record<string, PeerStats> | undefined, seen: Map<string, Record<string, number>>): void {
    if (!this.open) return
    this.peersEmpty.hidden = peers.length > 0
    this.peerList.replaceChildren(...peers.map(({ peerId, path }) => {
      const s = stats?.[peerId]
      const li = h('li', 'net-peer')
      li.dataset.peerId = peerId
      const line = h('div', 'line')
      line.append(nameTag(this.dir, peerId), qualityBadge(path, s))
      const facts = [
        `path ${path}`,
        s?.candidateType !== undefined ? `candidate ${s.candidateType} (${CANDIDATE_WORDS[s.candidateType] ?? ''})` : '',
        s !== undefined ? `${plural(s.dialAttempts, 'dial')}${s.dialFailures > 0 ? `, ${s.dialFailures} failed` : ''}` : '',
        s?.lastHeardMs !== undefined ? `heard ${duration(s.lastHeardMs)} ago` : ''
      ].filter((f) => f !== '')
      const detail = h('div', 'detail', facts.join(' · '))
      if (s?.lastError !== undefined) detail.title = `last dial error: ${s.lastError}`
      li.append(line, detail, this.timeline({ ...seen.get(peerId), ...definedOnly(s?.timeline) }))
      return li
    }))
  }

  renderRelays (relays: RelayInfo[]): void {
    this.relayCount.textContent = String(relays.length)
    if (!this.open) return
    // reserved first: those are the ones that make us reachable
    const sorted = [...relays].sort((a, b) => Number(b.reserved) - Number(a.reserved) || Number(b.connected) - Number(a.connected))
    this.relayList.replaceChildren(...sorted.map((r) => {
      const li = h('li', 'relay')
      li.dataset.peerId = r.peerId
      li.dataset.connected = String(r.connected)
      li.dataset.reserved = String(r.reserved)
      const line = h('div', 'line')
      const connected = h('span', 'flag', r.connected ? 'connected' : 'not connected')
      connected.dataset.on = String(r.connected)
      const reserved = h('span', 'flag', r.reserved ? 'reserved' : 'no reservation')
      reserved.dataset.on = String(r.reserved)
      line.append(h('code', undefined, `…${r.peerId.slice(-6)}`), connected, reserved)
      li.append(line, h('div', 'detail', r.multiaddr))
      return li
    }))
  }

  renderCounters (stats: RoomStats | undefined): void {
    const m = stats?.messages
    this.sent.textContent = m === undefined ? '–' : m.sent.toLocaleString('en')
    this.received.textContent = m === undefined ? '–' : m.received.toLocaleString('en')
    this.gaps.textContent = m === undefined ? '–' : m.gaps.toLocaleString('en')
    const dropped = Object.entries(m?.dropped ?? {}).filter(([, n]) => n > 0)
    this.dropped.textContent = m === undefined ? '–' : dropped.length === 0 ? 'none' : dropped.reduce((a, [, n]) => a + n, 0).toLocaleString('en')
    // only the reasons that happened: eight zeros say nothing
    this.drops.replaceChildren(...dropped.map(([reason, n]) => {
      const li = h('li')
      li.title = (DROP_REASONS as Record<string, string>)[reason] ?? reason
      li.append(h('span', undefined, reason), h('span', undefined, n.toLocaleString('en')))
      return li
    }))
  }

  add (kind: LogKind, ...parts: Array<string | { peer: string }>): void {
    const li = h('li', 'log-entry')
    li.dataset.kind = kind
    li.append(clockSeconds(new Date()))
    for (const part of parts) li.append(typeof part === 'string' ? part : nameTag(this.dir, part.peer))
    this.log.prepend(li)
    while (this.log.childElementCount > 300) this.log.lastElementChild?.remove()
  }

  private timeline (phases: Record<string, number>): HTMLElement {
    const entries = Object.entries(phases).filter(([, ms]) => Number.isFinite(ms)).sort((a, b) => a[1] - b[1])
    const el = h('div', 'timeline')
    if (entries.length === 0) return el
    el.setAttribute('aria-label', 'Meeting timeline, in ms since you joined the room')
    const max = Math.max(1, ...entries.map(([, ms]) => ms))
    for (const [phase, ms] of entries) {
      const bar = h('span', 'bar')
      bar.style.width = `${Math.max(2, (ms / max) * 100)}%`
      el.append(h('span', undefined, PHASES[phase] ?? phase), h('span', 'track'), h('span', 'ms', duration(ms)))
      ;(el.lastElementChild?.previousElementSibling as HTMLElement).append(bar)
    }
    return el
  }
}

function definedOnly (o: Partial<Record<string, number>> | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => typeof v === 'number')) as Record<string, number>
}
