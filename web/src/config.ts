/**
 * What the page reads from its URL and its origin: the room to join and the relay to use.
 */

export const DEFAULT_ROOM = 'lobby'
/** The library's limit (`InvalidRoomNameError` beyond it). */
export const MAX_ROOM_NAME_LENGTH = 256

/** `?room=name`, else `#room=name` or `#name`, else `lobby`. */
export function roomFromUrl (url: URL): string {
  const fromQuery = url.searchParams.get('room')?.trim()
  if (fromQuery !== undefined && fromQuery !== '') return fromQuery
  const hash = url.hash.replace(/^#/, '')
  // `#room=name&…` is read like a query string, anything else is the name itself
  const fromHash = (hash.includes('=') ? new URLSearchParams(hash).get('room') ?? '' : safeDecode(hash)).trim()
  return fromHash !== '' ? fromHash : DEFAULT_ROOM
}

/** This page's URL for `room`: `?room=` set, any hash dropped, `?relay=` kept. */
export function urlForRoom (current: URL, room: string): URL {
  const url = new URL(current)
  url.hash = ''
  url.searchParams.set('room', room)
  return url
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

/** The relay's peer ID: what follows the last `/p2p/` of its multiaddr. */
export function relayPeerId (addr: string): string | undefined {
  const i = addr.lastIndexOf('/p2p/')
  return i === -1 ? undefined : addr.slice(i + '/p2p/'.length).split('/')[0]
}

export function errorText (err: unknown): string {
  if (err instanceof Error) return err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message
  return String(err)
}

function safeDecode (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}
