/**
 * The people in the room: ourselves first (with a button to change our name), then one row per
 * member with its connection quality (path, round-trip time, ICE candidate type). The host wears
 * a crown; while we are the host of a broadcast or one-way room, every joined member gets a
 * "Make host" button (pairwise rooms have no use for a host's powers, so no button there).
 *
 * Attributes the CSS and the end-to-end tests read: `data-peer-id`, `data-path` (the library's
 * path), `data-state` (our reading of it), `data-self` and `data-host` (`"true"` when set),
 * `data-quality` (good, fair, poor, relayed).
 */
import { avatar, byId, duration, h, icon, nameTag, plural } from './dom.js'
import { MAX_NAME_LENGTH } from './names.js'
import type { Directory } from './names.js'
import type { PeerPath, RoomPeerStats } from 'p2p-rooms'

export type PeerState = 'discovered' | 'joining' | 'ready' | 'healing'

/** `RoomPeerStats` with the fields the library is adding, optional until they land. */
export type PeerStats = RoomPeerStats & {
  candidateType?: 'host' | 'srflx' | 'prflx' | 'relay'
  timeline?: Partial<Record<string, number>>
}

const STATE_TEXT: Record<PeerState, string> = {
  discovered: 'Seen through the relay · connecting…',
  joining: 'Connected · joining the room…',
  ready: 'Direct',
  healing: 'Connection dropped · reconnecting…'
}

/** ICE candidate types in words (RFC 8445 §5.1.1): what sort of path the data takes. */
export const CANDIDATE_WORDS: Record<string, string> = {
  host: 'same network',
  srflx: 'through NAT',
  prflx: 'through NAT',
  relay: 'via TURN'
}

export type Quality = 'good' | 'fair' | 'poor' | 'relayed'

/** Good under 150 ms, fair under 400 ms, poor beyond; relayed while not direct. */
export function qualityOf (path: PeerPath | undefined, rttMs: number | undefined): Quality {
  if (path !== 'direct') return 'relayed'
  if (rttMs === undefined || rttMs < 150) return 'good'
  return rttMs < 400 ? 'fair' : 'poor'
}

/** The badge: bars and words (`Direct · 12 ms · same network`). */
export function qualityBadge (path: PeerPath | undefined, s: PeerStats | undefined): HTMLElement {
  const level = qualityOf(path, s?.rttMs)
  const el = h('span', 'quality')
  el.dataset.level = level
  const bars = h('span', 'bars')
  bars.setAttribute('aria-hidden', 'true')
  bars.append(h('i'), h('i'), h('i'))
  const words = [path === 'direct' ? 'Direct' : 'Relayed']
  if (path === 'direct' && s?.rttMs !== undefined) words.push(duration(s.rttMs))
  if (path === 'direct' && s?.candidateType !== undefined) words.push(CANDIDATE_WORDS[s.candidateType] ?? s.candidateType)
  el.append(bars, words.join(' · '))
  el.title = [
    path === 'direct' ? 'Direct WebRTC connection: messages go straight to this person' : 'Only reachable through the relay for now',
    s?.rttMs !== undefined ? `round trip ${duration(s.rttMs)}` : '',
    s?.candidateType !== undefined ? `ICE candidate type: ${s.candidateType}` : ''
  ].filter((t) => t !== '').join('\n')
  return el
}

interface Row {
  li: HTMLLIElement
  sub: HTMLElement
  handOff: HTMLButtonElement
  path?: PeerPath
  state?: PeerState
  removal?: ReturnType<typeof setTimeout>
}

/** How long a departed member's row stays, greyed out with the reason, before it goes. */
const LEAVING_MS = 2500

export class PeopleView {
  private readonly list = byId<HTMLUListElement>('people')
  private readonly empty = byId<HTMLElement>('people-empty')
  private readonly counts = [byId<HTMLElement>('people-count'), byId<HTMLElement>('people-count-narrow')]
  private readonly rows = new Map<string, Row>()
  private readonly dir: Directory
  private self?: { li: HTMLLIElement, peerId: string, sub: HTMLElement }
  private host?: string
  private canHandOff = true
  private onHandOff: (peerId: string) => void = () => {}
  private onPick: (peerId: string) => void = () => {}
  private onRename: (name: string | undefined) => void = () => {}

  constructor (dir: Directory) {
    this.dir = dir
  }

  /** Our own row, first. */
  setSelf (peerId: string, identityText: string): void {
    const li = h('li', 'person')
    li.dataset.peerId = peerId
    li.dataset.self = 'true'
    const who = h('span', 'who')
    who.append(nameTag(this.dir, peerId, peerId), this.crown())
    const rename = h('button', 'btn link-btn rename', 'Edit name')
    rename.type = 'button'
    rename.addEventListener('click', () => { this.startRename(li, who, rename) })
    const sub = h('span', 'sub', identityText)
    const line = h('span', 'sub-row')
    line.append(sub, rename)
    li.append(avatar(this.dir, peerId), who, line)
    this.self?.li.remove()
    this.self = { li, peerId, sub }
    this.list.prepend(li)
    this.markHost()
  }

  onHandOffClick (handler: (peerId: string) => void): void { this.onHandOff = handler }
  onPersonClick (handler: (peerId: string) => void): void { this.onPick = handler }
  onRenameSubmit (handler: (name: string | undefined) => void): void { this.onRename = handler }

  /** Adds or updates a member's row. */
  set (peerId: string, path: PeerPath, state: PeerState): void {
    let row = this.rows.get(peerId)
    if (row === undefined) {
      row = this.row(peerId)
      this.rows.set(peerId, row)
      this.list.append(row.li)
    }
    clearTimeout(row.removal)
    row.removal = undefined
    row.path = path
    row.state = state
    row.li.dataset.path = path
    row.li.dataset.state = state
    if (state !== 'ready') row.sub.replaceChildren(STATE_TEXT[state])
    else row.sub.replaceChildren(qualityBadge(path, undefined))
    this.markHost()
    this.refreshCount()
  }

  has (peerId: string): boolean {
    return this.rows.has(peerId) && this.rows.get(peerId)?.li.dataset.state !== 'left'
  }

  /** Greys the row out with `why`, then removes it. */
  leave (peerId: string, why: string): void {
    const row = this.rows.get(peerId)
    if (row === undefined) return
    row.li.dataset.state = 'left'
    row.sub.replaceChildren(why)
    row.handOff.hidden = true
    clearTimeout(row.removal)
    row.removal = setTimeout(() => {
      row.li.remove()
      if (this.rows.get(peerId) === row) this.rows.delete(peerId)
      this.refreshCount()
    }, LEAVING_MS)
    this.refreshCount()
  }

  /** Crowns `host` (possibly ourselves); `canHandOff` is false in pairwise rooms. */
  setHost (host: string | undefined, canHandOff: boolean): void {
    this.host = host
    this.canHandOff = canHandOff
    this.markHost()
  }

  /** Quality badges from `room.stats().peers`, every second. */
  setStats (peers: Record<string, PeerStats>): void {
    for (const [peerId, row] of this.rows) {
      const s = peers[peerId]
      if (row.li.dataset.state !== 'ready') continue
      const badge = qualityBadge(row.path, s)
      row.li.dataset.quality = badge.dataset.level
      const old = row.sub.firstElementChild
      if (old === null || old.textContent !== badge.textContent || (old as HTMLElement).dataset.level !== badge.dataset.level) row.sub.replaceChildren(badge)
    }
  }

  /** Forgets every member (switching rooms); our own row stays. */
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

  /** Members shown now (not those leaving). */
  present (): string[] {
    return [...this.rows].filter(([, r]) => r.li.dataset.state !== 'left').map(([id]) => id)
  }

  private row (peerId: string): Row {
    const li = h('li', 'person')
    li.dataset.peerId = peerId
    const who = h('span', 'who')
    who.append(nameTag(this.dir, peerId), this.crown())
    const handOff = h('button', 'btn link-btn hand-off', 'Make host')
    handOff.type = 'button'
    handOff.hidden = true
    handOff.title = 'Hand the host role to this person'
    handOff.addEventListener('click', (e) => { e.stopPropagation(); this.onHandOff(peerId) })
    const sub = h('span', 'sub')
    li.addEventListener('click', () => { this.onPick(peerId) })
    const line = h('span', 'sub-row')
    line.append(sub, handOff)
    li.append(avatar(this.dir, peerId), who, line)
    return { li, sub, handOff }
  }

  private crown (): HTMLElement {
    const crown = h('span', 'host-badge')
    crown.append(icon('i-crown'), 'host')
    crown.title = 'The room\'s host: the member that joined first, or was handed the role'
    return crown
  }

  private startRename (li: HTMLLIElement, who: HTMLElement, button: HTMLButtonElement): void {
    const form = h('form', 'who')
    const input = h('input')
    input.value = this.dir.baseName(li.dataset.peerId ?? '')
    input.maxLength = MAX_NAME_LENGTH
    input.setAttribute('aria-label', 'Your name (empty: the generated one)')
    form.append(input)
    who.replaceWith(form)
    button.hidden = true
    input.focus()
    input.select()
    let done = false
    const finish = (save: boolean): void => {
      if (done) return
      done = true
      form.replaceWith(who)
      button.hidden = false
      if (save) this.onRename(input.value.trim() === '' ? undefined : input.value)
    }
    form.addEventListener('submit', (e) => { e.preventDefault(); finish(true) })
    input.addEventListener('keydown', (e) => { if (e.key === 'Escape') finish(false) })
    input.addEventListener('blur', () => { finish(true) })
  }

  private markHost (): void {
    const weAreHost = this.host !== undefined && this.host === this.self?.peerId
    if (this.self !== undefined) toggle(this.self.li, 'host', this.host === this.self.peerId)
    for (const [peerId, row] of this.rows) {
      toggle(row.li, 'host', peerId === this.host)
      row.handOff.hidden = !(this.canHandOff && weAreHost && row.li.dataset.state === 'ready')
    }
  }

  private refreshCount (): void {
    const present = this.present().length
    for (const c of this.counts) c.textContent = String(present + 1)
    this.empty.hidden = present > 0
    this.empty.textContent = 'Nobody else is here yet.'
    this.dir.setPresent([...(this.self !== undefined ? [this.self.peerId] : []), ...this.present()])
  }

  /** A line under our own name: identity, and whether the name is generated. */
  setSelfNote (text: string): void {
    if (this.self !== undefined) this.self.sub.textContent = text
  }

  /** For screen readers and the count in the title: `3 people`. */
  summary (): string {
    return plural(this.present().length + 1, 'person', 'people')
  }
}

function toggle (el: HTMLElement, key: string, on: boolean): void {
  if (on) el.dataset[key] = 'true'
  else delete el.dataset[key]
}
