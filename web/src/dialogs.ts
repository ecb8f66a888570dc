/**
 * The two dialogs: "Join a room" (your name, the room, its secret, type and identity, or a new
 * private room) and "Invite" (the link, a QR code of it for another device, and for a private
 * room the warning that the link holds the secret).
 */
import { DEFAULT_ROOM, MAX_ROOM_NAME_LENGTH, checkRoomName } from './config.js'
import { byId } from './dom.js'
import { cleanName } from './names.js'
import type { RoomChoice } from './config.js'
import type { IdentityKind, SessionType } from 'p2p-rooms'

export interface JoinChoice {
  room: RoomChoice
  identity: IdentityKind
  /** The name typed; `undefined` when the field was left empty (the generated name). */
  name: string | undefined
}

export interface RoomFormInit {
  /** What the fields start with. */
  room: string
  type: SessionType
  secret?: string
  identity: IdentityKind
  name: string | undefined
  /** The generated name, as the name field's placeholder. */
  generatedName?: string
  /** Heading and intro: why the dialog is open. */
  title?: string
  intro?: string
  /** A problem with the room name to show at once (e.g. from the link). */
  problem?: string
  /** Without a room to go back to, the dialog cannot be dismissed. */
  dismissible: boolean
  /** Open the secret field and focus it: a link that left the secret out. */
  askSecret?: boolean
}

export class RoomDialog {
  private readonly dialog = byId<HTMLDialogElement>('room-dialog')
  private readonly form = byId<HTMLFormElement>('room-form')
  private readonly title = byId<HTMLElement>('room-dialog-title')
  private readonly intro = byId<HTMLElement>('room-dialog-intro')
  private readonly close = byId<HTMLButtonElement>('room-dialog-close')
  private readonly name = byId<HTMLInputElement>('name-input')
  private readonly room = byId<HTMLInputElement>('room-input')
  private readonly error = byId<HTMLElement>('room-error')
  private readonly secret = byId<HTMLInputElement>('secret-input')
  private readonly type = byId<HTMLSelectElement>('type-input')
  private readonly identity = byId<HTMLSelectElement>('identity-input')
  private readonly advanced = byId<HTMLDetailsElement>('room-advanced')
  private readonly newPrivate = byId<HTMLButtonElement>('new-private')
  private dismissible = true
  private handler: (choice: JoinChoice) => void = () => {}

  constructor () {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      this.submit()
    })
    this.room.addEventListener('input', () => {
      // while typing, only a name that is already too long is worth a word
      const check = checkRoomName(this.room.value)
      this.showProblem(!check.ok && this.room.value.trim().length > MAX_ROOM_NAME_LENGTH ? check.problem : undefined)
    })
    this.close.addEventListener('click', () => { this.dialog.close() })
    this.dialog.addEventListener('cancel', (e) => { if (!this.dismissible) e.preventDefault() })
    this.newPrivate.addEventListener('click', () => {
      this.room.value = newRoomName()
      this.secret.value = newSecret()
      this.showProblem(undefined)
      this.submit()
    })
  }

  onJoin (handler: (choice: JoinChoice) => void): void {
    this.handler = handler
  }

  /** `newSecret`: the library's `createRoomSecret()` when it has one, else 128 random bits. */
  setSecretMaker (make: () => string): void {
    newSecret = make
  }

  open (init: RoomFormInit): void {
    this.title.textContent = init.title ?? 'Join a room'
    this.intro.textContent = init.intro ?? ''
    this.intro.hidden = init.intro === undefined
    this.name.value = init.name ?? ''
    this.name.placeholder = init.generatedName ?? 'a generated name'
    this.room.value = init.room.slice(0, MAX_ROOM_NAME_LENGTH * 4)
    this.room.placeholder = DEFAULT_ROOM
    this.secret.value = init.secret ?? ''
    this.type.value = init.type
    this.identity.value = init.identity
    this.dismissible = init.dismissible
    this.close.hidden = !init.dismissible
    this.advanced.open = init.type !== 'broadcast' || init.identity !== 'tab'
    this.showProblem(init.problem)
    if (!this.dialog.open) this.dialog.showModal()
    if (init.askSecret === true) this.secret.focus()
    else if (init.problem !== undefined) this.room.focus()
  }

  get isOpen (): boolean {
    return this.dialog.open
  }

  private submit (): void {
    const check = checkRoomName(this.room.value)
    if (!check.ok) {
      this.showProblem(check.problem)
      this.room.focus()
      return
    }
    this.showProblem(undefined)
    const secret = this.secret.value
    const choice: JoinChoice = {
      room: { name: check.name, type: this.type.value as SessionType, ...(secret !== '' ? { secret } : {}) },
      identity: this.identity.value as IdentityKind,
      name: cleanName(this.name.value)
    }
    this.dismissible = true
    this.dialog.close()
    this.handler(choice)
  }

  private showProblem (problem: string | undefined): void {
    this.error.textContent = problem ?? ''
    this.error.hidden = problem === undefined
    if (problem === undefined) this.room.removeAttribute('aria-invalid')
    else this.room.setAttribute('aria-invalid', 'true')
  }
}

let newSecret: () => string = () => ''

const ROOM_WORDS = ['harbor', 'meadow', 'orbit', 'lantern', 'canyon', 'ember', 'glacier', 'willow', 'summit', 'delta', 'prism', 'atlas']

/** `lantern-4821`: a name for a new private room (the secret, not the name, keeps it private). */
function newRoomName (): string {
  const [a, b] = crypto.getRandomValues(new Uint16Array(2))
  return `${ROOM_WORDS[a % ROOM_WORDS.length]}-${1000 + (b % 9000)}`
}

export interface InviteState {
  room: RoomChoice
  /** The link with the secret (private rooms) or the only link (public ones). */
  link: string
  /** A private room's link without the secret (`?private`): the opener is asked for it. */
  linkWithoutSecret?: string
}

export class InviteDialog {
  private readonly dialog = byId<HTMLDialogElement>('invite-dialog')
  private readonly roomName = byId<HTMLElement>('invite-room')
  private readonly text = byId<HTMLElement>('invite-text')
  private readonly qr = byId<HTMLElement>('invite-qr')
  private readonly link = byId<HTMLInputElement>('invite-link')
  private readonly copy = byId<HTMLButtonElement>('invite-copy')
  private readonly warning = byId<HTMLElement>('invite-warning')
  private readonly withoutSecret = byId<HTMLButtonElement>('invite-without-secret')
  private state?: InviteState
  private copyReset?: ReturnType<typeof setTimeout>

  constructor () {
    byId('invite-close').addEventListener('click', () => { this.dialog.close() })
    this.link.addEventListener('focus', () => { this.link.select() })
    this.copy.addEventListener('click', () => { void this.copyText(this.link.value, this.copy, 'Copy link') })
    this.withoutSecret.addEventListener('click', () => {
      if (this.state?.linkWithoutSecret !== undefined) void this.copyText(this.state.linkWithoutSecret, this.withoutSecret, 'Copy a link without the secret instead')
    })
  }

  async open (state: InviteState): Promise<void> {
    this.state = state
    const isPrivate = state.room.secret !== undefined
    this.roomName.textContent = state.room.name.length > 40 ? `${state.room.name.slice(0, 39)}…` : state.room.name
    this.text.textContent = isPrivate
      ? 'Open this link, or scan the code with another device, to join this private room.'
      : 'Open this link, or scan the code with another device, to join this room.'
    this.link.value = state.link
    this.link.dataset.withSecret = String(isPrivate)
    this.warning.hidden = !isPrivate
    this.withoutSecret.hidden = state.linkWithoutSecret === undefined
    this.copy.textContent = 'Copy link'
    this.qr.replaceChildren()
    this.dialog.showModal()
    // loaded on first use: nobody needs a QR encoder to read the first screen
    const QRCode = (await import('qrcode')).default
    // error correction M: survives a phone camera's blur; the SVG scales with the box
    const svg = await QRCode.toString(state.link, { type: 'svg', errorCorrectionLevel: 'M', margin: 1, color: { dark: '#111827', light: '#ffffff' } })
    const doc = new DOMParser().parseFromString(svg, 'image/svg+xml')
    this.qr.replaceChildren(document.importNode(doc.documentElement, true))
    this.qr.dataset.link = state.link
  }

  private async copyText (text: string, button: HTMLButtonElement, label: string): Promise<void> {
    let ok = true
    try {
      await navigator.clipboard.writeText(text)
    } catch {
      // no clipboard API (plain http on a LAN address): select the link for Ctrl+C instead
      this.link.value = text
      this.link.focus()
      this.link.select()
      ok = false
    }
    button.textContent = ok ? 'Copied' : 'Press Ctrl+C to copy'
    clearTimeout(this.copyReset)
    this.copyReset = setTimeout(() => { button.textContent = label }, 1800)
  }
}
