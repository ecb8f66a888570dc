/**
 * Errors in plain words, each with what the person can do about it.
 *
 * `createRoomNode` throws `RelayDialError` with a `reason` (`bad-address`, `unreachable`,
 * `wrong-peer`, `refused`, `timeout`); older builds of the library throw
 * `ReservationTimeoutError` for every failed dial ("no relay could be dialed: Error: [object
 * Event]"), or the multiaddr parser's own error. Both are read here, by `err.name`, never shown raw.
 */
import { errorName } from './config.js'

export type Action = 'retry' | 'default-relay' | 'reload'

export interface Problem {
  /** A short heading. */
  title: string
  /** What happened and what to do, in a sentence or two. */
  text: string
  actions: Action[]
  /** For the "Details" fold: the error's name and the addresses involved. */
  detail: string
}

export type RelayFailure = 'bad-address' | 'unreachable' | 'wrong-peer' | 'refused' | 'timeout' | 'ice-servers' | 'other'

/** Which of the library's relay failures `err` is. */
export function relayFailure (err: unknown): RelayFailure {
  const name = errorName(err)
  const reason = (err as { reason?: unknown })?.reason
  if (name === 'RelayDialError' && typeof reason === 'string' && ['bad-address', 'unreachable', 'wrong-peer', 'refused', 'timeout'].includes(reason)) {
    return reason as RelayFailure
  }
  const message = err instanceof Error ? err.message : String(err)
  if (name === 'IceServersFetchError') return 'ice-servers'
  if (name === 'NoRelaysError' || name === 'InvalidMultiaddrError' || name === 'ValidationError' || /multiaddr|incorrect length|multihash|base58|invalid peer ?id/i.test(message)) {
    return 'bad-address'
  }
  if (name === 'ReservationTimeoutError') {
    if (/no relay could be dialed/.test(message)) {
      if (/UnexpectedPeerError|unexpected peer|peer id mismatch/i.test(message)) return 'wrong-peer'
      if (/refused|ConnectionDenied|gated/i.test(message) && !/\[object Event\]/.test(message)) return 'refused'
      return 'unreachable'
    }
    return 'timeout'
  }
  return 'other'
}

/** `127.0.0.1:9090` from `/ip4/127.0.0.1/tcp/9090/ws/p2p/…`; the address itself when it does not parse. */
export function hostPort (multiaddr: string): string {
  const m = /^\/(?:ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d+)/.exec(multiaddr)
  if (m === null) return multiaddr.length > 60 ? `${multiaddr.slice(0, 59)}…` : multiaddr
  return m[1].includes(':') ? `[${m[1]}]:${m[2]}` : `${m[1]}:${m[2]}`
}

/**
 * The problem of a failed `createRoomNode`. `overridden`: the relays came from `?relay=`, so
 * "use the default relay" (the one `/relay.json` names) is an option.
 */
export function relayProblem (err: unknown, relays: string[], overridden: boolean): Problem {
  const where = relays.map(hostPort).join(', ')
  const fallback: Action[] = overridden ? ['default-relay'] : []
  const detail = `${errorName(err)}: ${err instanceof Error ? err.message : String(err)}\nrelay: ${relays.join('\n       ')}`
  switch (relayFailure(err)) {
    case 'bad-address':
      return {
        title: 'That relay address is not valid',
        text: `A relay address looks like /ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooW… and ends with the relay's peer ID${overridden ? '; the one in this link does not.' : '.'}`,
        actions: overridden ? ['default-relay'] : ['reload'],
        detail
      }
    case 'unreachable':
      return {
        title: 'Can\'t reach the relay',
        text: `Nothing answered at ${where}. The relay is not running, or it is no longer at this address.${overridden ? '' : ' Start it with `npm start`, then try again.'}`,
        actions: ['retry', ...fallback],
        detail
      }
    case 'wrong-peer':
      return {
        title: 'Another relay answered',
        text: `A relay answered at ${where}, but not the one this link names: it was restarted with a new key, or the address belongs to another relay now.`,
        actions: [...fallback, 'retry'],
        detail
      }
    case 'refused':
      return {
        title: 'The relay turned us away',
        text: `The relay at ${where} refused the connection: it may be full, or limiting connections from your network. Try again in a moment.`,
        actions: ['retry', ...fallback],
        detail
      }
    case 'timeout':
      return {
        title: 'The relay did not answer in time',
        text: `The relay at ${where} took too long to let us in. The network may be slow, or the relay overloaded.`,
        actions: ['retry', ...fallback],
        detail
      }
    case 'ice-servers':
      return {
        title: 'Could not get the TURN servers',
        text: 'The link asks for TURN servers from a relay (?ice=) that did not hand them out.',
        actions: ['retry'],
        detail
      }
    default:
      return {
        title: 'Could not start',
        text: 'Something went wrong while connecting to the relay.',
        actions: ['retry', ...fallback],
        detail
      }
  }
}

/** Why a message was not sent, as the composer says it. */
export function sendProblem (err: unknown, ctx: { maxMessageBytes: number, bytes: number, hostName: string, roomType: string }): string {
  switch (errorName(err)) {
    case 'MessageTooLargeError':
      return `Too long to send: ${ctx.bytes.toLocaleString('en')} bytes, and a message carries at most ${ctx.maxMessageBytes.toLocaleString('en')}.`
    case 'RateLimitedError':
      return `That's a lot of messages at once: try again in ${Math.max(1, Math.ceil(((err as { retryAfterMs?: number }).retryAfterMs ?? 0) / 1000))} s.`
    case 'NotHostError':
      return `Only the host (${ctx.hostName}) can post in this one-way room.`
    case 'SessionTypeError':
      return `That does not fit a ${ctx.roomType} room.`
    case 'PeerNotFoundError':
      return 'That person is not in the room any more.'
    case 'RoomClosedError':
      return 'You are no longer in this room.'
    default:
      return `Not sent: ${err instanceof Error ? err.message : String(err)}`
  }
}
