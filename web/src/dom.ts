/**
 * Small DOM helpers shared by the views. Every piece of text, and above all anything a peer sent,
 * goes in through `textContent`, never as HTML.
 */

export function byId<T extends HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`index.html has no #${id}`)
  return el as T
}

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (className !== undefined) el.className = className
  if (text !== undefined) el.textContent = text
  return el
}

/** Peer IDs all start with `12D3KooW`: the tail is what tells them apart. */
export function shortId (peerId: string): string {
  return `…${peerId.slice(-6)}`
}

/** A stable colour per peer, so the same peer looks the same in every panel. */
export function hueOf (peerId: string): number {
  let hash = 0
  for (let i = 0; i < peerId.length; i++) hash = (hash * 31 + peerId.charCodeAt(i)) >>> 0
  return hash % 360
}

export function peerLabel (peerId: string, suffix = ''): HTMLElement {
  const el = h('code', 'peer-id', shortId(peerId) + suffix)
  el.title = peerId
  el.style.setProperty('--hue', String(hueOf(peerId)))
  return el
}

export function clock (at: Date): HTMLTimeElement {
  const el = h('time', 'time', at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }))
  el.dateTime = at.toISOString()
  return el
}

/** Appends, keeps at most `max` children, and follows the bottom unless the user scrolled up. */
export function append (list: HTMLElement, item: HTMLElement, max: number): void {
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
  list.append(item)
  while (list.childElementCount > max) list.firstElementChild?.remove()
  if (atBottom) list.scrollTop = list.scrollHeight
}

/** `12 ms`, `1.4 s`: durations as people read them. */
export function duration (ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}
