/**
 * The page's DOM: small views over the elements in index.html. Every piece of text, and above
 * all anything a peer sent, goes in through `textContent`, never as HTML.
 */
import type { PeerPath } from 'p2p-rooms'
import type { RelaySnapshot } from './relay-status.js'

// --- helpers ------------------------------------------------------------------------------------

export function byId<T extends HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`index.html has no #${id}`)
  return el as T
}

function h<K extends keyof HTMLElementTagNameMap> (tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (className !== undefined) el.className = className
  if (text !== undefined) el.textContent = text
  return el
}

/** Peer IDs all start with `12D3KooW`: the tail is what tells them apart. */
export function shortId (peerId: string): string {
  return `…${peerId.slice(-6)}`
}

/** A stable colour per peer, so the same peer looks the same in the list and in the chat. */
function hueOf (peerId: string): number {
  let hash = 0
  for (let i = 0; i < peerId.length; i++) hash = (hash * 31 + peerId.charCodeAt(i)) >>> 0
  return hash % 360
}

function peerLabel (peerId: string, suffix = ''): HTMLElement {
  const el = h('code', 'peer-id', shortId(peerId) + suffix)
  el.title = peerId
  el.style.setProperty('--hue', String(hueOf(peerId)))
  return el
}

function clock (at: Date): HTMLTimeElement {
  const el = h('time', 'time', at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }))
  el.dateTime = at.toISOString()
  return el
}

/** Appends, keeps at most `max` children, and follows the bottom unless the user scrolled up. */
function append (list: HTMLElement, item: HTMLElement, max: number): void {
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
  list.append(item)
  while (list.childElementCount > max) list.firstElementChild?.remove()
  if (atBottom) list.scrollTop = list.scrollHeight
}

// --- views --------------------------------------------------------------------------------------

export class Banner {
  private readonly el = byId<HTMLParagraphElement>('banner')

  show (text: string): void {
    this.el.textContent = text
    this.el.hidden = false
  }

  hide (): void {
    this.el.hidden = true
  }
}

export class StatusView {
  private readonly ownId = byId<HTMLElement>('own-id')
  private readonly relay = byId<HTMLElement>('relay-state')
  private readonly reservation = byId<HTMLElement>('reservation')

  setOwnId (peerId: string): void {
    this.ownId.textContent = shortId(peerId)
    this.ownId.title = peerId
    this.ownId.style.setProperty('--hue', String(hueOf(peerId)))
  }

  /** Before the node exists: `connecting` or `failed`, with the addresses tried as a tooltip. */
  setRelayPhase (state: 'connecting' | 'failed', text: string, relays: string[] = []): void {
    this.relay.dataset.state = state
    this.relay.textContent = text
    this.relay.title = relays.join('\n')
    if (state === 'failed') this.ownId.textContent = 'not started'
  }

  setRelay (s: RelaySnapshot): void {
    let state: string
    let text: string
    if (s.connected > 0 && s.reserved) {
      state = 'ok'
      text = s.total > 1 ? `connected to ${s.connected}/${s.total}, reserved` : 'connected, reservation held'
    } else if (s.connected > 0) {
      state = 'warn'
      text = 'connected, no reservation (peers cannot reach you)'
    } else {
      state = 'down'
      text = s.reserved ? 'disconnected' : 'disconnected: new peers cannot find you'
    }
    this.relay.dataset.state = state
    this.relay.textContent = text
  }

  setReservationMs (ms: number): void {
    this.reservation.textContent = `took ${Math.round(ms)} ms`
  }
}

export class RoomControls {
  private readonly title = byId<HTMLElement>('room-name')
  private readonly form = byId<HTMLFormElement>('room-form')
  private readonly input = byId<HTMLInputElement>('room-input')
  private readonly link = byId<HTMLInputElement>('share-link')
  private readonly copy = byId<HTMLButtonElement>('copy-link')
  private copyReset?: ReturnType<typeof setTimeout>

  constructor () {
    this.copy.addEventListener('click', () => { void this.copyLink() })
    this.link.addEventListener('focus', () => { this.link.select() })
  }

  show (room: string, shareUrl: string): void {
    this.title.textContent = room
    document.title = `${room} · p2p-rooms`
    this.input.value = room
    this.link.value = shareUrl
  }

  onSwitch (handler: (room: string) => void): void {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      const room = this.input.value.trim()
      if (room !== '') handler(room)
    })
  }

  private async copyLink (): Promise<void> {
    let ok = true
    try {
      await navigator.clipboard.writeText(this.link.value)
    } catch {
      // no clipboard API (e.g. plain http on a LAN address): select it for Ctrl+C instead
      this.link.focus()
      this.link.select()
      ok = false
    }
    this.copy.textContent = ok ? 'Copied ✓' : 'Press Ctrl+C'
    clearTimeout(this.copyReset)
    this.copyReset = setTimeout(() => { this.copy.textContent = 'Copy link' }, 1500)
  }
}

interface PeerRow {
  li: HTMLLIElement
  badge: HTMLElement
  note: HTMLElement
  /** Pending removal of a row that shows why its peer left. */
  removal?: ReturnType<typeof setTimeout>
}

/** One row per room peer; `data-path` is the library's path, `data-state` our reading of it. */
export type PeerState = 'discovered' | 'joining' | 'ready' | 'healing'

const NOTES: Record<PeerState, string> = {
  discovered: 'seen through the relay, opening WebRTC…',
  joining: 'WebRTC open, joining the room…',
  ready: 'direct: messages flow peer to peer',
  healing: 'direct connection dropped, reconnecting…'
}

/** How long a departed peer's row stays, greyed out with the reason, before it goes. */
const LEAVING_MS = 2500

export class PeerList {
  private readonly list = byId<HTMLUListElement>('peer-list')
  private readonly empty = byId<HTMLElement>('peers-empty')
  private readonly count = byId<HTMLElement>('peer-count')
  private readonly rows = new Map<string, PeerRow>()

  /** Adds or updates a peer's row; `joinMs` is the time from discovery to a usable direct path. */
  set (peerId: string, path: PeerPath, state: PeerState, joinMs?: number): void {
    let row = this.rows.get(peerId)
    if (row === undefined) {
      const li = h('li', 'peer')
      li.dataset.peerId = peerId
      const badge = h('span', 'path-badge')
      const note = h('span', 'peer-note')
      li.append(h('span', 'dot'), peerLabel(peerId), badge, note)
      li.style.setProperty('--hue', String(hueOf(peerId)))
      row = { li, badge, note }
      this.rows.set(peerId, row)
      this.list.append(li)
    }
    clearTimeout(row.removal)
    row.removal = undefined
    row.li.dataset.path = path
    row.li.dataset.state = state
    if (joinMs !== undefined) row.li.dataset.joinMs = String(joinMs)
    row.badge.textContent = path
    row.note.textContent = state === 'ready' && joinMs !== undefined ? `${NOTES[state]} · direct in ${joinMs} ms` : NOTES[state]
    this.refreshCount()
  }

  /** Greys the row out with `why`, then removes it. */
  leave (peerId: string, why: string): void {
    const row = this.rows.get(peerId)
    if (row === undefined) return
    row.li.dataset.state = 'left'
    row.badge.textContent = 'left'
    row.note.textContent = why
    clearTimeout(row.removal)
    row.removal = setTimeout(() => {
      row.li.remove()
      if (this.rows.get(peerId) === row) this.rows.delete(peerId)
      this.refreshCount()
    }, LEAVING_MS)
    this.refreshCount()
  }

  clear (): void {
    for (const row of this.rows.values()) {
      clearTimeout(row.removal)
      row.li.remove()
    }
    this.rows.clear()
    this.refreshCount()
  }

  private refreshCount (): void {
    const present = [...this.rows.values()].filter((r) => r.li.dataset.state !== 'left').length
    this.count.textContent = String(present)
    this.empty.hidden = this.rows.size > 0
  }
}

export type LogKind = 'info' | 'join' | 'leave' | 'error'

export class EventLog {
  private readonly list = byId<HTMLOListElement>('log')

  add (kind: LogKind, ...parts: Array<string | { peer: string }>): void {
    const li = h('li', `log-entry ${kind}`)
    li.append(clock(new Date()), ' ')
    for (const part of parts) li.append(typeof part === 'string' ? part : peerLabel(part.peer))
    append(this.list, li, 300)
  }
}

export interface ChatLine {
  from: string
  text: string
  mine?: boolean
  /** Small print after the time, e.g. "→ 2 peers". */
  note?: string
}

export class ChatView {
  private readonly list = byId<HTMLOListElement>('messages')
  private readonly form = byId<HTMLFormElement>('chat-form')
  private readonly input = byId<HTMLInputElement>('chat-input')
  private readonly button = byId<HTMLButtonElement>('send')
  private sending = false

  /** `handler` resolves `true` when the text went out; the input is cleared only then. */
  onSend (handler: (text: string) => Promise<boolean>): void {
    // a form submit: Enter in the input and the button both end up here
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      const text = this.input.value
      if (this.sending || text.trim() === '') return
      this.sending = true
      this.button.disabled = true
      handler(text)
        .then((sent) => { if (sent && this.input.value === text) this.input.value = '' })
        .finally(() => {
          this.sending = false
          this.button.disabled = this.input.disabled
          this.input.focus()
        })
    })
  }

  setEnabled (enabled: boolean): void {
    this.input.disabled = !enabled
    this.button.disabled = !enabled
    if (enabled) this.input.focus()
  }

  addMessage (line: ChatLine): void {
    const li = h('li', line.mine === true ? 'msg mine' : 'msg')
    li.style.setProperty('--hue', String(hueOf(line.from)))
    const meta = h('div', 'meta')
    meta.append(peerLabel(line.from, line.mine === true ? ' (you)' : ''), clock(new Date()))
    if (line.note !== undefined) meta.append(h('span', 'note', line.note))
    li.append(meta, h('div', 'text', line.text))
    append(this.list, li, 500)
  }

  addSystem (text: string): void {
    append(this.list, h('li', 'msg system', text), 500)
  }

  addError (text: string): void {
    const li = h('li', 'msg error', text)
    li.setAttribute('role', 'alert')
    append(this.list, li, 500)
  }
}
