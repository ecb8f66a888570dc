/**
 * Time-limited TURN credentials in the form of the TURN REST API
 * (draft-uberti-behave-turn-rest-00, §2.2), which coturn checks with `use-auth-secret` and
 * `static-auth-secret`: the username is `<expiry, Unix seconds>:<user>` and the password is
 * base64(HMAC-SHA1(shared secret, username)). The TURN server needs only the shared secret.
 */
import { createHmac } from 'node:crypto'

export interface TurnCredentials {
  username: string
  credential: string
  /** Seconds the credentials stay valid. */
  ttl: number
}

/**
 * Mints credentials valid for `ttlSeconds` from `now` (ms since the epoch) for `user`, an opaque
 * label the TURN server logs (no colon).
 */
export function mintTurnCredentials (secret: string, ttlSeconds: number, user = 'p2p-rooms', now = Date.now()): TurnCredentials {
  const expiry = Math.floor(now / 1000) + ttlSeconds
  const username = `${expiry}:${user.replace(/:/g, '')}`
  const credential = createHmac('sha1', secret).update(username).digest('base64')
  return { username, credential, ttl: ttlSeconds }
}

export interface IceServersInit {
  /** STUN and TURN URLs (`stun:…`, `turn:…`, `turns:…`) handed to browser nodes. */
  urls: string[]
  /** Shared secret of the TURN server; without it TURN URLs are handed out without credentials. */
  turnSecret?: string
  /** Lifetime of minted credentials, in seconds. */
  turnTtl: number
}

/**
 * The `RTCIceServer[]` a browser node passes to `createRoomNode({ iceServers })`: STUN URLs as
 * they are, TURN URLs with freshly minted credentials.
 */
export function iceServers (init: IceServersInit, user?: string, now?: number): RTCIceServerJson[] {
  const stun = init.urls.filter((u) => u.startsWith('stun:') || u.startsWith('stuns:'))
  const turn = init.urls.filter((u) => u.startsWith('turn:') || u.startsWith('turns:'))
  const out: RTCIceServerJson[] = []
  if (stun.length > 0) out.push({ urls: stun })
  if (turn.length > 0) {
    if (init.turnSecret === undefined) {
      out.push({ urls: turn })
    } else {
      const { username, credential } = mintTurnCredentials(init.turnSecret, init.turnTtl, user, now)
      out.push({ urls: turn, username, credential })
    }
  }
  return out
}

/** The JSON shape of a WebRTC `RTCIceServer` (Node has no DOM types). */
export interface RTCIceServerJson {
  urls: string[]
  username?: string
  credential?: string
}
