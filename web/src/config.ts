/**
 * What the page reads from its URL and its origin: the room to join (name, type, secret), the
 * node's identity, and the relay to use.
 *
 * The secret lives in the URL's fragment (`#secret=…`), which browsers never send to a server,
 * so neither the dev server nor any host of the built page sees it in a request or a log.
 */
import type { IdentityKind, SessionType } from 'p2p-rooms'

export const DEFAULT_ROOM = 'lobby'
/** The library's limit (`InvalidRoomNameError` beyond it). */
export const MAX_ROOM_NAME_LENGTH = 256
/** The library's default session type; it is left out of URLs. */
export const DEFAULT_TYPE: SessionType = 'broadcast'
export const SESSION_TYPES: readonly SessionType[] = ['broadcast', 'one-way', 'pairwise']
/** The library's default identity; it is left out of URLs. */
export const DEFAULT_IDENTITY: IdentityKind = 'tab'
export const IDENTITY_KINDS: readonly IdentityKind[] = ['tab', 'persistent', 'ephemeral']

/** A room as the library tells rooms apart: the same name with another type or secret is another room. */
export interface RoomChoice {
  name: string
  type: SessionType
  /** Absent for a public room. */
  secret?: string
}

export interface PageSettings {
  room: RoomChoice
  identity: IdentityKind
  /** `?ice=<url>`: a relay's `/ice-servers` endpoint, for TURN. */
  iceServersUrl?: string
  /** Parameters that were present but not understood, said plainly for the event log (never the secret). */
  ignored: string[]
}

/**
 * `?room=name` (or `#room=name`, or `#name`; default `lobby`), `?type=broadcast|one-way|pairwise`,
 * `#secret=…` (also read from `?secret=`, see `urlFor`), `?identity=tab|persistent|ephemeral`,
 * `?ice=<url>`.
 */
export function settingsFromUrl (url: URL): PageSettings {
  const ignored: string[] = []
  const hash = hashParams(url)
  const type = oneOf(url.searchParams.get('type'), SESSION_TYPES, DEFAULT_TYPE, 'type', ignored)
  const identity = oneOf(url.searchParams.get('identity'), IDENTITY_KINDS, DEFAULT_IDENTITY, 'identity', ignored)
  const secret = hash.get('secret') ?? url.searchParams.get('secret') ?? ''
  const ice = url.searchParams.get('ice')?.trim() ?? ''
  return {
    room: { name: roomFromUrl(url), type, ...(secret !== '' ? { secret } : {}) },
    identity,
    ...(ice !== '' ? { iceServersUrl: ice } : {}),
    ignored
  }
}

/** `?room=name`, else `#room=name` or `#name`, else `lobby`. */
export function roomFromUrl (url: URL): string {
  const fromQuery = url.searchParams.get('room')?.trim()
  if (fromQuery !== undefined && fromQuery !== '') return fromQuery
  const hash = url.hash.replace(/^#/, '')
  // `#room=name&…` is read like a query string, anything else is the name itself
  const fromHash = (hash.includes('=') ? hashParams(url).get('room') ?? '' : safeDecode(hash)).trim()
  return fromHash !== '' ? fromHash : DEFAULT_ROOM
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
  url.searchParams.set('room', room.name)
  if (room.type === DEFAULT_TYPE) url.searchParams.delete('type')
  else url.searchParams.set('type', room.type)
  if (withSecret && room.secret !== undefined) url.hash = new URLSearchParams({ secret: room.secret }).toString()
  return url
}

/** This page's URL with another identity (`tab`, the default, is left out). */
export function urlWithIdentity (current: URL, identity: IdentityKind): URL {
  const url = new URL(current)
  if (identity === DEFAULT_IDENTITY) url.searchParams.delete('identity')
  else url.searchParams.set('identity', identity)
  return url
}

/** Whether two choices are the same room (a secret is compared, never shown). */
export function sameRoom (a: RoomChoice | undefined, b: RoomChoice): boolean {
  return a !== undefined && a.name === b.name && a.type === b.type && a.secret === b.secret
}

/** `"name"`, `"name" (one-way)`, `"name" (private, pairwise)`: for logs, without the secret. */
export function describeRoom (room: RoomChoice): string {
  const traits = [room.secret !== undefined ? 'private' : '', room.type !== DEFAULT_TYPE ? room.type : ''].filter((t) => t !== '')
  return traits.length === 0 ? `"${room.name}"` : `"${room.name}" (${traits.join(', ')})`
}

export interface RelayConfig {
  relays: string[]
  /** Where the addresses came from, for the UI. */
  source: '?relay=' | '/relay.json'
}

/**
 * `?relay=<multiaddr>` (repeatable) wins; otherwise `/relay.json` on this origin, which `npm start`
 * serves and a static deployment must provide: `{ "relays": ["/ip4/…/tcp/…/ws/p2p/…"] }`.
 */
export async function findRelays (url: URL): Promise<RelayConfig> {
  const override = url.searchParams.getAll('relay').map((r) => r.trim()).filter((r) => r !== '')
  if (override.length > 0) return { relays: override, source: '?relay=' }

  let res: Response
  try {
    res = await fetch('/relay.json', { cache: 'no-store' })
  } catch (err) {
    throw new Error(`could not fetch /relay.json (${errorText(err)})`)
  }
  const body = await res.text()
  if (!res.ok) {
    let detail = body.trim()
    try { detail = String(JSON.parse(body).error ?? detail) } catch {}
    throw new Error(`/relay.json answered ${res.status}: ${detail.slice(0, 300)}`)
  }
  let relays: unknown
  try {
    relays = JSON.parse(body)?.relays
  } catch {
    throw new Error('/relay.json is not JSON (is this page served by `npm start`?)')
  }
  if (!Array.isArray(relays) || relays.length === 0 || !relays.every((r) => typeof r === 'string' && r.startsWith('/'))) {
    throw new Error('/relay.json must look like { "relays": ["/ip4/…/tcp/…/ws/p2p/…"] }')
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
