/**
 * The conversation: messages (live, and "earlier" ones from the backlog a member served us on
 * joining, with the time they were written), quiet lines for joins, leaves and host changes, and
 * the composer. The composer follows the room's rules: in a pairwise room it sends to one person
 * picked in "To", and in a one-way room it is disabled, with the reason, unless we are the host.
 */
import { append, avatar, byId, clock, h, nameTag } from './dom.js'
import type { Directory } from './names.js'

export interface ChatLine {
  from: string
  text: string
  mine?: boolean
  /** Part of the backlog served on joining: marked "earlier". */
  history?: boolean
  /** When the sender wrote it (its clock), in ms since the epoch; arrival time when absent. */
  sentAt?: number
  /** Small print after the time, e.g. "to you only". */
  note?: string
}

export interface ComposerState {
  enabled: boolean
  /** Why it is disabled, or what it does (e.g. pairwise). */
  reason?: string
  tone?: 'info' | 'warn' | 'error'
}

/** Lines kept in the conversation; older ones are dropped from the page. */
const MAX_LINES = 500
/** Longer messages are shown folded, with a button to unfold them. */
const FOLD_CHARS = 700
const FOLD_LINES = 8
/** Messages from one sender closer than this are grouped under one name. */
const GROUP_MS = 3 * 60_000

export type QuietPart = string | { peer: string }

export class ChatView {
  private readonly list = byId<HTMLOListElement>('messages')
  private readonly scroller = byId<HTMLElement>('scroller')
  private readonly form = byId<HTMLFormElement>('composer')
  private readonly input = byId<HTMLTextAreaElement>('chat-input')
  private readonly button = byId<HTMLButtonElement>('send')
  private readonly to = byId<HTMLSelectElement>('send-to')
  private readonly toLabel = byId<HTMLLabelElement>('send-to-label')
  private readonly note = byId<HTMLElement>('composer-note')
  private readonly dir: Directory
  private self?: string
  private sending = false
  private state: ComposerState = { enabled: false, reason: 'Connecting…' }
  /** Says why the text cannot go out as it is (too long), or `undefined`. */
  private check: (text: string) => string | undefined = () => undefined
  private last?: { from: string, at: number }

  constructor (dir: Directory) {
    this.dir = dir
    this.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter starts a new line; never while an input method is composing
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault()
        this.form.requestSubmit()
      }
    })
    this.input.addEventListener('input', () => {
      this.fit()
      this.renderNote()
    })
  }

  setSelf (peerId: string): void {
    this.self = peerId
  }

  setPlaceholder (text: string): void {
    this.input.placeholder = text
  }

  /** `check` runs on every keystroke and before sending: a sentence shown under the composer blocks sending. */
  setCheck (check: (text: string) => string | undefined): void {
    this.check = check
    this.renderNote()
  }

  /**
   * `handler` gets the text and, in a pairwise room, the peer picked in "To"; it resolves `true`
   * when the text went out, and the input is cleared only then.
   */
  onSend (handler: (text: string, to?: string) => Promise<boolean>): void {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      const text = this.input.value
      if (this.sending || !this.state.enabled || text.trim() === '' || this.check(text) !== undefined) return
      this.sending = true
      this.button.disabled = true
      handler(text, this.to.hidden ? undefined : this.to.value)
        .then((sent) => {
          if (sent && this.input.value === text) {
            this.input.value = ''
            this.fit()
          }
        })
        .finally(() => {
          this.sending = false
          this.renderNote()
          if (this.state.enabled) this.input.focus()
        })
    })
  }

  setComposer (state: ComposerState): void {
    const changed = state.enabled !== this.state.enabled || state.reason !== this.state.reason
    this.state = state
    if (!changed) return
    this.input.disabled = !state.enabled
    this.to.disabled = !state.enabled
    this.renderNote()
  }

  /** Says why a message was not sent, under the composer, until the next keystroke. */
  showSendError (text: string): void {
    this.note.textContent = text
    this.note.dataset.tone = 'error'
    this.note.setAttribute('role', 'alert')
  }

  /** Pairwise rooms: the people "To" offers (keeping the one picked); `undefined` hides it. */
  setTargets (peers: string[] | undefined): void {
    this.to.hidden = this.toLabel.hidden = peers === undefined
    if (peers === undefined) return
    const current = [...this.to.options].map((o) => `${o.value}=${o.textContent}`)
    const wanted = peers.map((p) => `${p}=${this.dir.nameOf(p)}`)
    // called every second: rebuilding the options would close the list under the user's pointer
    if (current.length === wanted.length && current.every((p, i) => p === wanted[i])) return
    const picked = this.to.value
    this.to.replaceChildren(...peers.map((p) => {
      const option = h('option', undefined, this.dir.nameOf(p))
      option.value = p
      option.title = p
      return option
    }))
    if (peers.includes(picked)) this.to.value = picked
  }

  /** Picks `peerId` in "To" (clicking a person in a pairwise room). */
  pickTarget (peerId: string): void {
    if (this.to.hidden) return
    if ([...this.to.options].some((o) => o.value === peerId)) this.to.value = peerId
    this.input.focus()
  }

  addMessage (line: ChatLine): void {
    const at = line.sentAt ?? Date.now()
    const grouped = this.last !== undefined && this.last.from === line.from && Math.abs(at - this.last.at) < GROUP_MS &&
      this.list.lastElementChild?.classList.contains('msg') === true
    const li = h('li', ['msg', line.mine === true ? 'mine' : '', line.history === true ? 'history' : '', grouped ? 'cont' : ''].filter((c) => c !== '').join(' '))
    li.dataset.from = line.from
    const meta = h('div', 'meta')
    meta.append(nameTag(this.dir, line.from, this.self))
    if (line.mine === true) meta.append(h('span', 'you-badge', 'you'))
    meta.append(clock(new Date(at)))
    if (line.history === true) {
      const earlier = h('span', 'earlier', 'earlier')
      earlier.title = 'Sent before you joined: from the backlog a member served you'
      meta.append(earlier)
    }
    if (line.note !== undefined) meta.append(h('span', 'note', line.note))
    const body = h('div', 'body')
    const bubble = h('div', 'text-wrap')
    const text = h('div', 'text', line.text)
    bubble.append(text)
    const lines = line.text.split('\n').length
    if (line.text.length > FOLD_CHARS || lines > FOLD_LINES) {
      li.classList.add('collapsed')
      const more = h('button', 'more', `Show all (${line.text.length.toLocaleString('en')} characters)`)
      more.type = 'button'
      more.setAttribute('aria-expanded', 'false')
      more.addEventListener('click', () => {
        const open = li.classList.toggle('collapsed')
        more.textContent = open ? `Show all (${line.text.length.toLocaleString('en')} characters)` : 'Show less'
        more.setAttribute('aria-expanded', String(!open))
      })
      bubble.append(more)
    }
    body.append(meta, bubble)
    li.append(avatar(this.dir, line.from), body)
    this.last = { from: line.from, at }
    append(this.list, li, MAX_LINES, this.scroller)
  }

  /** A quiet line: someone joined or left, the host changed, we joined. */
  addQuiet (parts: QuietPart[], kind = 'info'): void {
    const li = h('li', `quiet ${kind}`)
    li.dataset.kind = kind
    for (const part of parts) li.append(typeof part === 'string' ? part : nameTag(this.dir, part.peer, this.self))
    li.append(clock(new Date()))
    this.last = undefined
    append(this.list, li, MAX_LINES, this.scroller)
  }

  addError (text: string): void {
    const li = h('li', 'quiet error', text)
    li.setAttribute('role', 'alert')
    this.last = undefined
    append(this.list, li, MAX_LINES, this.scroller)
  }

  /** A new room: an empty conversation. */
  clear (): void {
    this.list.replaceChildren()
    this.last = undefined
  }

  private renderNote (): void {
    const text = this.input.value
    const problem = text === '' ? undefined : this.check(text)
    this.button.disabled = !this.state.enabled || this.sending || text.trim() === '' || problem !== undefined
    this.note.removeAttribute('role')
    if (problem !== undefined) {
      this.note.textContent = problem
      this.note.dataset.tone = 'error'
      this.input.setAttribute('aria-invalid', 'true')
      return
    }
    this.input.removeAttribute('aria-invalid')
    this.note.textContent = this.state.reason ?? ''
    this.note.dataset.tone = this.state.tone ?? (this.state.enabled ? 'info' : 'warn')
  }

  /** Grows the textarea with its text, up to its max-height. */
  private fit (): void {
    this.input.style.height = 'auto'
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 160)}px`
  }
}
