/**
 * The STUN/TURN servers a room node hands to WebRTC: those given in `iceServers`, then those a
 * relay serves at `iceServersUrl` (`p2p-rooms-relay --http … --ice-server … --turn-secret …`
 * answers `GET /ice-servers`). Fetching them lets the relay mint short-lived TURN credentials
 * (TURN REST API), so no TURN secret or long-lived password ships inside a page.
 */
import { IceServersFetchError } from './errors.js'

/** Upper bound of the `iceServersUrl` request, in ms: a relay that never answers must not hang `createRoomNode`. */
const ICE_SERVERS_FETCH_TIMEOUT_MS = 10_000

/**
 * `iceServers`, followed by the servers fetched from `url` when one is given.
 *
 * @throws IceServersFetchError when `url` is unreachable, answers an HTTP error, or answers
 * anything but `{ iceServers: RTCIceServer[] }`
 */
export async function resolveIceServers (iceServers: RTCIceServer[], url?: string): Promise<RTCIceServer[]> {
  if (url === undefined) return iceServers
  return [...iceServers, ...await fetchIceServers(url)]
}

/**
 * `GET url` → `{ iceServers: RTCIceServer[], ttl?: number }` → the `iceServers`.
 *
 * @throws IceServersFetchError as `resolveIceServers`
 */
export async function fetchIceServers (url: string, timeoutMs = ICE_SERVERS_FETCH_TIMEOUT_MS): Promise<RTCIceServer[]> {
  let body: unknown
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) throw new IceServersFetchError(`could not get ICE servers from ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd())
    body = await res.json()
  } catch (err: any) {
    if (err instanceof IceServersFetchError) throw err
    // fetch's own TypeError says only "Failed to fetch", and a browser gives no more detail for a
    // cross-origin answer it may not read: name the URL and the likely causes
    const why = err?.name === 'TimeoutError'
      ? `no answer within ${timeoutMs} ms`
      : `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}${err?.name === 'TypeError' ? '; unreachable, or it answered without Access-Control-Allow-Origin' : ''}`
    throw new IceServersFetchError(`could not get ICE servers from ${url} (${why})`, { cause: err })
  }
  const servers = (body as { iceServers?: unknown } | null)?.iceServers
  if (!Array.isArray(servers) || !servers.every(isIceServer)) {
    throw new IceServersFetchError(`${url} did not answer { iceServers: RTCIceServer[] }`)
  }
  // copy the known fields only: whatever else the server sends must not reach RTCPeerConnection
  return servers.map(({ urls, username, credential }) => ({
    urls,
    ...(username === undefined ? {} : { username }),
    ...(credential === undefined ? {} : { credential })
  }))
}

function isIceServer (s: any): s is RTCIceServer {
  if (typeof s !== 'object' || s === null) return false
  const urlsOk = typeof s.urls === 'string' || (Array.isArray(s.urls) && s.urls.length > 0 && s.urls.every((u: unknown) => typeof u === 'string'))
  const optionalString = (v: unknown): boolean => v === undefined || typeof v === 'string'
  return urlsOk && optionalString(s.username) && optionalString(s.credential)
}
