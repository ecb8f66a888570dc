/**
 * Small DOM helpers shared by the views. Every piece of text, and above all anything a peer sent,
 * goes in through `textContent`, never as HTML.
 */
import { initials } from './names.js'
import type { Directory } from './names.js'

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

/** An icon from the sprite in index.html; decorative, so hidden from screen readers. */
export function icon (id: string): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('class', 'icon')
  svg.setAttribute('aria-hidden', 'true')
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use')
  use.setAttribute('href', `#${id}`)
  svg.append(use)
  return svg
}

/** Peer IDs all start with `12D3KooW`: the tail is what tells them apart. */
export function shortId (peerId: string): string {
  return `…${peerId.slice(-6)}`
}

/**
 * A member's name in its colour, the full peer ID on hover. `data-name-of` lets a later
 * `profile` message rename every place it is shown (`renameAll`).
 */
export function nameTag (dir: Directory, peerId: string, self?: string): HTMLElement {
  const el = h('span', 'name', dir.nameOf(peerId))
  el.dataset.nameOf = peerId
  el.title = peerId === self ? `You · peer ID ${peerId}` : `Peer ID ${peerId}`
  el.style.setProperty('--hue', String(dir.palette.hueOf(peerId)))
  return el
}

export function avatar (dir: Directory, peerId: string): HTMLElement {
  const el = h('span', 'avatar', initials(dir.baseName(peerId)))
  el.dataset.avatarOf = peerId
  el.setAttribute('aria-hidden', 'true')
  el.style.setProperty('--hue', String(dir.palette.hueOf(peerId)))
  return el
}

/** Shows `peerId`'s current name everywhere it appears. */
export function renameAll (dir: Directory, peerId: string): void {
  for (const el of document.querySelectorAll<HTMLElement>(`[data-name-of="${CSS.escape(peerId)}"]`)) el.textContent = dir.nameOf(peerId)
  for (const el of document.querySelectorAll<HTMLElement>(`[data-avatar-of="${CSS.escape(peerId)}"]`)) el.textContent = initials(dir.baseName(peerId))
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })

/** `14:05`, with the full date and seconds on hover. */
export function clock (at: Date): HTMLTimeElement {
  const el = h('time', 'time', timeFormat.format(at))
  el.dateTime = at.toISOString()
  el.title = dateTimeFormat.format(at)
  return el
}

/** `14:05:09`: for the event log. */
export function clockSeconds (at: Date): HTMLTimeElement {
  const el = h('time', 'time', at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }))
  el.dateTime = at.toISOString()
  return el
}

/** Appends, keeps at most `max` children, and follows the bottom unless the user scrolled up. */
export function append (list: HTMLElement, item: HTMLElement, max: number, scroller: HTMLElement = list): void {
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60
  list.append(item)
  while (list.childElementCount > max) list.firstElementChild?.remove()
  if (atBottom) scroller.scrollTop = scroller.scrollHeight
}

/** `12 ms`, `1.4 s`: durations as people read them. */
export function duration (ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

export function plural (n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`
}
