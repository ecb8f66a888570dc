/**
 * The page's smaller views over the elements in index.html: the error banner, the "You" card,
 * the room form with its share link, and the event log.
 */
import { DEFAULT_TYPE } from './config.js'
import { append, byId, clock, h, hueOf, peerLabel, shortId } from './dom.js'
import type { RoomChoice } from './config.js'
import type { IdentityKind, RoomNodeIdentity, SessionType } from 'p2p-rooms'

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
  private readonly identity = byId<HTMLElement>('own-identity')
  private readonly relay = byId<HTMLElement>('relay-state')
  private readonly reservation = byId<HTMLElement>('reservation')

  setIdentity (identity: RoomNodeIdentity): void {
    this.ownId.textContent = shortId(identity.peerId)
    this.ownId.title = identity.peerId
    this.ownId.style.setProperty('--hue', String(hueOf(identity.peerId)))
    this.identity.textContent = `${identity.kind}, ${identity.restored ? 'restored' : 'new'}`
    this.identity.dataset.kind = identity.kind
  }

  /** Before the node exists: `connecting` or `failed`, with the addresses tried as a tooltip. */
  setRelayPhase (state: 'connecting' | 'failed', text: string, relays: string[] = []): void {
    this.relay.dataset.state = state
    this.relay.textContent = text
    this.relay.title = relays.join('\n')
    if (state === 'failed') this.ownId.textContent = 'not started'
  }

  setRelay (state: 'ok' | 'warn' | 'down', text: string): void {
    this.relay.dataset.state = state
    this.relay.textContent = text
  }

  setReservationMs (ms: number): void {
    this.reservation.textContent = `took ${Math.round(ms)} ms`
  }
}

export interface JoinChoice {
  room: RoomChoice
  identity: IdentityKind
}

const TYPE_TAGS: Record<SessionType, string> = {
  broadcast: '',
  'one-way': 'one-way: only the host posts',
  pairwise: 'pairwise: one-to-one messages'
}

/**
 * The room form (name, type, secret, identity) and the share link. The link leaves the secret
 * out unless "include the secret" is ticked, which shows a warning first: whoever holds a link
 * with the secret can join and read the room.
 */
export class RoomControls {
  private readonly title = byId<HTMLElement>('room-name')
  private readonly titleLock = byId<HTMLElement>('room-title-lock')
  private readonly titleType = byId<HTMLElement>('room-title-type')
  private readonly lock = byId<HTMLElement>('room-lock')
  private readonly form = byId<HTMLFormElement>('room-form')
  private readonly name = byId<HTMLInputElement>('room-input')
  private readonly type = byId<HTMLSelectElement>('type-input')
  private readonly secret = byId<HTMLInputElement>('secret-input')
  private readonly identity = byId<HTMLSelectElement>('identity-input')
  private readonly link = byId<HTMLInputElement>('share-link')
  private readonly copy = byId<HTMLButtonElement>('copy-link')
  private readonly withSecret = byId<HTMLInputElement>('share-secret')
  private readonly withSecretLabel = byId<HTMLElement>('share-secret-label')
  private readonly warning = byId<HTMLElement>('share-warning')
  private linkFor: (withSecret: boolean) => string = () => ''
  private copyReset?: ReturnType<typeof setTimeout>

  constructor () {
    this.copy.addEventListener('click', () => { void this.copyLink() })
    this.link.addEventListener('focus', () => { this.link.select() })
    this.withSecret.addEventListener('change', () => { this.refreshLink() })
  }

  /** Shows the room we are in; `linkFor` builds the share link, with or without the secret. */
  show (room: RoomChoice, identity: IdentityKind, linkFor: (withSecret: boolean) => string): void {
    const isPrivate = room.secret !== undefined
    this.title.textContent = room.name
    this.titleLock.hidden = !isPrivate
    this.titleType.textContent = room.type === DEFAULT_TYPE ? '' : room.type
    this.titleType.title = TYPE_TAGS[room.type]
    this.lock.hidden = !isPrivate
    document.title = `${isPrivate ? '🔒 ' : ''}${room.name} · p2p-rooms`
    this.name.value = room.name
    this.type.value = room.type
    this.secret.value = room.secret ?? ''
    this.identity.value = identity
    this.linkFor = linkFor
    // a new room never inherits the consent given for the previous one
    this.withSecret.checked = false
    this.withSecretLabel.hidden = !isPrivate
    this.refreshLink()
  }

  onJoin (handler: (choice: JoinChoice) => void): void {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault()
      const name = this.name.value.trim()
      if (name === '') return
      const secret = this.secret.value
      handler({
        room: { name, type: this.type.value as SessionType, ...(secret !== '' ? { secret } : {}) },
        identity: this.identity.value as IdentityKind
      })
    })
  }

  private refreshLink (): void {
    const withSecret = this.withSecret.checked && !this.withSecretLabel.hidden
    this.link.value = this.linkFor(withSecret)
    this.warning.hidden = !withSecret
    this.link.dataset.withSecret = String(withSecret)
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

/** `join`/`leave`: peers; `host`: host changes; `relay`: relay events; `warn`: gaps and the like. */
export type LogKind = 'info' | 'join' | 'leave' | 'host' | 'relay' | 'warn' | 'error'

export class EventLog {
  private readonly list = byId<HTMLOListElement>('log')

  add (kind: LogKind, ...parts: Array<string | { peer: string }>): void {
    const li = h('li', `log-entry ${kind}`)
    li.dataset.kind = kind
    li.append(clock(new Date()), ' ')
    for (const part of parts) li.append(typeof part === 'string' ? part : peerLabel(part.peer))
    append(this.list, li, 300)
  }
}
