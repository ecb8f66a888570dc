/**
 * The chat: messages (live, and "earlier" ones from the backlog a member served us on joining)
 * and the composer. The composer follows the room's rules: in a pairwise room it sends to one
 * peer picked in "To", and in a one-way room it is disabled, with the reason, unless we are host.
 */
import { append, byId, clock, h, hueOf, peerLabel, shortId } from './dom.js'

export interface ChatLine {
  from: string
  text: string
  mine?: boolean
  /** Part of the backlog served on joining: shown dimmed, marked "earlier". */
  history?: boolean
  /** Small print after the time, e.g. "→ 2 peers". */
  note?: string
}

export interface ComposerState {
  enabled: boolean
  /** Why it is disabled, or what it does (e.g. pairwise). */
  reason?: string
}

const MAX_LINES = 500

export class ChatView {
  private readonly list = byId<HTMLOListElement>('messages')
  private readonly form = byId<HTMLFormElement>('chat-form')
  private readonly input = byId<HTMLInputElement>('chat-input')
  private readonly button = byId<HTMLButtonElement>('send')
  private readonly to = byId<HTMLSelectElement>('send-to')
  private readonly toLabel = byId<HTMLLabelElement>('send-to-label')
  private readonly note = byId<HTMLElement>('composer-note')
  private sending = false
  private enabled = false

  /**
   * `handler` gets the text and, in a pairwise room, the peer picked in "To"; it resolves `true`
   * when the text went out, and the input is cleared only then.
   */
  onSend (handler: (text: string, to?: string) => Promise<boolean>): void {
    // a form submit: Enter in the input and the button both end up here
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      const text = this.input.value
      if (this.sending || !this.enabled || text.trim() === '') return
      this.sending = true
      this.button.disabled = true
      handler(text, this.to.hidden ? undefined : this.to.value)
        .then((sent) => { if (sent && this.input.value === text) this.input.value = '' })
        .finally(() => {
          this.sending = false
          this.button.disabled = !this.enabled
          if (this.enabled) this.input.focus()
        })
    })
  }

  setComposer (state: ComposerState): void {
    this.enabled = state.enabled
    this.input.disabled = !state.enabled
    this.button.disabled = !state.enabled || this.sending
    this.to.disabled = !state.enabled
    this.note.textContent = state.reason ?? ''
    this.note.hidden = state.reason === undefined
    this.note.dataset.disabled = String(!state.enabled)
  }

  /** Pairwise rooms: the peers "To" offers (keeping the one picked); `undefined` hides it. */
  setTargets (peers: string[] | undefined): void {
    this.to.hidden = this.toLabel.hidden = peers === undefined
    if (peers === undefined) return
    // called every second: rebuilding the options would close the list under the user's pointer
    const current = [...this.to.options].map((o) => o.value)
    if (current.length === peers.length && current.every((p, i) => p === peers[i])) return
    const picked = this.to.value
    this.to.replaceChildren(...peers.map((p) => {
      const option = h('option', undefined, shortId(p))
      option.value = p
      option.title = p
      return option
    }))
    if (peers.includes(picked)) this.to.value = picked
  }

  addMessage (line: ChatLine): void {
    const classes = ['msg', line.mine === true ? 'mine' : '', line.history === true ? 'history' : ''].filter((c) => c !== '')
    const li = h('li', classes.join(' '))
    li.style.setProperty('--hue', String(hueOf(line.from)))
    const meta = h('div', 'meta')
    meta.append(peerLabel(line.from, line.mine === true ? ' (you)' : ''), clock(new Date()))
    if (line.history === true) {
      const earlier = h('span', 'earlier', 'earlier')
      earlier.title = 'Sent before you joined: from the backlog a member served you'
      meta.append(earlier)
    }
    if (line.note !== undefined) meta.append(h('span', 'note', line.note))
    li.append(meta, h('div', 'text', line.text))
    append(this.list, li, MAX_LINES)
  }

  addSystem (text: string): void {
    append(this.list, h('li', 'msg system', text), MAX_LINES)
  }

  addError (text: string): void {
    const li = h('li', 'msg error', text)
    li.setAttribute('role', 'alert')
    append(this.list, li, MAX_LINES)
  }
}
