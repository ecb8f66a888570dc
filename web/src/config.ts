/**
 * What the page reads from its URL and its origin: the room to join (name, type, secret), the
 * node's identity, and the relay to use; and the URLs it writes (the address bar, invites).
 *
 * The secret lives in the URL's fragment (`#secret=…`), which browsers never send to a server,
 * so neither the web server nor any host of the built page sees it in a request or a log.
 */
// the library's limits and names, from its constants alone: the page paints before the
// library itself has loaded. The default session type is left out of URLs.
import { DEFAULT_IDENTITY, DEFAULT_SESSION_TYPE, IDENTITY_KINDS, MAX_ROOM_NAME_LENGTH, SESSION_TYPES } from 'p2p-rooms/constants'
import type { IdentityKind, SessionType } from 'p2p-rooms'

/** The room name limit (`joinRoom` throws `InvalidRoomNameError` outside it), in UTF-16 code units as `String.length` counts them. */
export { MAX_ROOM_NAME_LENGTH }
/** The room `npm start` prints and the form suggests. */
export const DEFAULT_ROOM = 'lobby'

/** A room as the library tells rooms apart: the same name with another type or secret is another room. */
export interface RoomChoice {
  name: string
  type: SessionType
  /** Absent for a public room. */
  secret?: string
}

export interface PageSettings {
  /** The room the URL names, when its name is valid. */
  room?: RoomChoice
  /** Why the URL's room cannot be joined as it is (a plain sentence), when it names one. */
  roomProblem?: string
  /** For a name that is there but invalid: what is wrong with it, to show next to the field. */
  roomNameProblem?: string
  /** The raw `?room=` value, for the form to show (cut to a length an input can hold). */
  roomInput: string
  /** `?private` without a secret: a link that left the secret out; ask for it before joining. */
  needsSecret: boolean
  type: SessionType
  identity: IdentityKind
  /** `?ice=<url>`: a relay's `/ice-servers` endpoint, for TURN. */
  iceServersUrl?: string
  /** `?relay=` multiaddrs: used instead of `/relay.json`. */
  relayOverride: string[]
  /** Parameters that were present but not understood, said plainly for the event log (never the secret). */
  ignored: string[]
  /** A `?secret=` was in the query string, which the browser sent to the server. */
  secretInQuery: boolean
}

export type RoomNameCheck = { ok: true, name: string } | { ok: false, problem: string }

/**
 * A room name as a person typed it: surrounding spaces are dropped (a name of spaces only is
 * empty), and it must then hold 1–`MAX_ROOM_NAME_LENGTH` characters. The problem is a sentence
 * to show next to the field.
 */
export function checkRoomName (raw: string): RoomNameCheck {
  const name = raw.trim()
  if (name === '') return { ok: false, problem: raw === '' ? 'Give the room a name.' : 'A room name needs more than spaces.' }
  if (name.length > MAX_ROOM_NAME_LENGTH) {
    return { ok: false, problem: `Room names have at most ${MAX_ROOM_NAME_LENGTH} characters; this one has ${name.length.toLocaleString('en')}.` }
  }
  return { ok: true, name }
}

/**
 * `?room=name` (or `#room=name`, or `#name`), `?type=broadcast|one-way|pairwise`, `#secret=…`
 * (also read from `?secret=`, see `urlFor`), `?private`, `?identity=tab|persistent|ephemeral`,
 * `?ice=<url>`, `?relay=<multiaddr>` (repeatable). No room in the URL means no room: the page
 * asks, it does not pick one silently.
 */
export function settingsFromUrl (url: URL): PageSettings {
  const ignored: string[] = []
  const hash = hashParams(url)
  const type = oneOf(url.searchParams.get('type'), SESSION_TYPES, DEFAULT_SESSION_TYPE, 'type', ignored)
  const identity = oneOf(url.searchParams.get('identity'), IDENTITY_KINDS, DEFAULT_IDENTITY, 'identity', ignored)
  const secret = hash.get('secret') ?? url.searchParams.get('secret') ?? ''
  const ice = url.searchParams.get('ice')?.trim() ?? ''
  const raw = rawRoom(url)
  let room: RoomChoice | undefined
  let roomProblem: string | undefined
  let roomNameProblem: string | undefined
  if (raw !== undefined) {
    const check = checkRoomName(raw)
    if (check.ok) room = { name: check.name, type, ...(secret !== '' ? { secret } : {}) }
    else if (raw.trim() === '') roomProblem = 'This link names no room.'
    else {
      roomProblem = `This link's room name cannot be used. ${check.problem}`
      roomNameProblem = check.problem
    }
  }
  return {
    ...(room !== undefined ? { room } : {}),
    ...(roomProblem !== undefined ? { roomProblem } : {}),
    ...(roomNameProblem !== undefined ? { roomNameProblem } : {}),
    roomInput: (raw ?? '').slice(0, MAX_ROOM_NAME_LENGTH * 4),
    needsSecret: secret === '' && url.searchParams.has('private'),
    type,
    identity,
    ...(ice !== '' ? { iceServersUrl: ice } : {}),
    relayOverride: url.searchParams.getAll('relay').map((r) => r.trim()).filter((r) => r !== ''),
    ignored,
    secretInQuery: url.searchParams.has('secret')
  }
}

/** The room as the URL spells it, or `undefined` when it names none. */
function rawRoom (url: URL): string | undefined {
  if (url.searchParams.has('room')) return url.searchParams.get('room') ?? ''
  const hash = url.hash.replace(/^#/, '')
  if (hash === '') return undefined
  // `#room=name&…` is read like a query string, anything else is the name itself
  if (hash.includes('=')) return hashParams(url).get('room') ?? undefined
  return safeDecode(hash)
}

/**
 * This page's URL for `room`: `?room=` and `?type=` set (the type only when not the default),
 * `?relay=`, `?identity=` and `?ice=` kept, and the secret, when `withSecret`, in the fragment
 * only: a `?secret=` someone typed is moved there.
 */
export function urlFor (current: URL, room: RoomChoice, withSecret: boolean): URL {
  const url = new URL(current)
  url.hash = ''
  url.searchParams.delete('secret')
  url.searchParams.delete('private')
  url.searchParams.set('room', room.name)
  if (room.type === DEFAULT_SESSION_TYPE) url.searchParams.delete('type')
  else url.searchParams.set('type', room.type)
  if (withSecret && room.secret !== undefined) url.hash = new URLSearchParams({ secret: room.secret }).toString()
  return url
}

export interface InviteInit {
  /** Put the secret in the fragment (an invite); without it, a private room's link says `?private` so the opener is asked for it. */
  withSecret: boolean
  /** The `?relay=` addresses to pass on: only ones this page reached. Empty: none (the opener asks `/relay.json`). */
  relays: string[]
}

/**
 * The link to give someone: this page's origin and path with the room, its type, and (for a
 * private room) its secret in the fragment or `?private`. Never this tab's `?identity=` (the
 * opener's key is theirs to pick) and never a `?relay=` that was not reached.
 */
export function inviteUrl (current: URL, room: RoomChoice, init: InviteInit): URL {
  const url = new URL(current.origin + current.pathname)
  url.searchParams.set('room', room.name)
  if (room.type !== DEFAULT_SESSION_TYPE) url.searchParams.set('type', room.type)
  for (const relay of init.relays) url.searchParams.append('relay', relay)
  const ice = current.searchParams.get('ice')
  if (ice !== null && ice !== '') url.searchParams.set('ice', ice)
  if (room.secret !== undefined) {
    if (init.withSecret) url.hash = new URLSearchParams({ secret: room.secret }).toString()
    else url.searchParams.set('private', '')
  }
  return url
}

/** This page's URL with another identity (`tab`, the default, is left out). */
export function urlWithIdentity (current: URL, identity: IdentityKind): URL {
  const url = new URL(current)
  if (identity === DEFAULT_IDENTITY) url.searchParams.delete('identity')
  else url.searchParams.set('identity', identity)
  return url
}

/** This page's URL without `?relay=`: the relay `/relay.json` names. */
export function urlWithoutRelay (current: URL): URL {
  const url = new URL(current)
  url.searchParams.delete('relay')
  return url
}

/** Whether two choices are the same room (a secret is compared, never shown). */
export function sameRoom (a: RoomChoice | undefined, b: RoomChoice): boolean {
  return a !== undefined && a.name === b.name && a.type === b.type && a.secret === b.secret
}

/** `"name"`, `"name" (one-way)`, `"name" (private, pairwise)`: for logs, without the secret. */
export function describeRoom (room: RoomChoice): string {
  const traits = [room.secret !== undefined ? 'private' : '', room.type !== DEFAULT_SESSION_TYPE ? room.type : ''].filter((t) => t !== '')
  const name = room.name.length > 60 ? `${room.name.slice(0, 59)}…` : room.name
  return traits.length === 0 ? `"${name}"` : `"${name}" (${traits.join(', ')})`
}

/**
 * A strong secret for a new private room: 128 random bits, base64url (22 characters). Whoever
 * can guess a room's secret can join it, so it must not be guessable.
 */
export function newRoomSecret (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export interface RelayConfig {
  relays: string[]
  /** Where the addresses came from, for the UI. */
  source: '?relay=' | '/relay.json'
}

/** `/relay.json` could not tell us a relay; the message is a plain sentence. */
export class RelayConfigError extends Error {
  name = 'RelayConfigError'
}

/**
 * `?relay=<multiaddr>` (repeatable) wins; otherwise `/relay.json` on this origin, which `npm start`
 * serves and a static deployment must provide: `{ "relays": ["/ip4/…/tcp/…/ws/p2p/…"] }`.
 */
export async function findRelays (override: string[]): Promise<RelayConfig> {
  if (override.length > 0) return { relays: override, source: '?relay=' }

  let res: Response
  try {
    res = await fetch('/relay.json', { cache: 'no-store' })
  } catch {
    throw new RelayConfigError('The page could not ask its server which relay to use (/relay.json did not answer).')
  }
  const body = await res.text()
  if (!res.ok) {
    let detail = body.trim()
    try { detail = String(JSON.parse(body).error ?? detail) } catch {}
    throw new RelayConfigError(`The page's server names no relay (/relay.json answered ${res.status}: ${detail.slice(0, 200)}).`)
  }
  let relays: unknown
  try {
    relays = JSON.parse(body)?.relays
  } catch {
    throw new RelayConfigError('The page\'s server did not answer /relay.json with JSON: is this page served by `npm start`?')
  }
  if (!Array.isArray(relays) || relays.length === 0 || !relays.every((r) => typeof r === 'string' && r.startsWith('/'))) {
    throw new RelayConfigError('/relay.json must look like { "relays": ["/ip4/…/tcp/…/ws/p2p/…"] }.')
  }
  return { relays, source: '/relay.json' }
}

/** `Name: message` for the library's named errors (callers tell them apart by `.name`). */
export function errorText (err: unknown): string {
  if (err instanceof Error) return err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message
  return String(err)
}

export function errorName (err: unknown): string {
  return err instanceof Error && err.name !== '' ? err.name : 'Error'
}

function oneOf<T extends string> (value: string | null, allowed: readonly T[], fallback: T, param: string, ignored: string[]): T {
  if (value === null || value === '') return fallback
  if ((allowed as readonly string[]).includes(value)) return value as T
  ignored.push(`?${param}=${value.slice(0, 40)} (not one of ${allowed.join(', ')}; using ${fallback})`)
  return fallback
}

function hashParams (url: URL): URLSearchParams {
  const hash = url.hash.replace(/^#/, '')
  return new URLSearchParams(hash.includes('=') ? hash : '')
}

function safeDecode (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}
