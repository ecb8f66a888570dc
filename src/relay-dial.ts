/**
 * Reaching the configured relays at start: their multiaddrs checked up front, then dialled at
 * once; the first connection wins. A failure says what happened in plain words (`RelayDialError`
 * and its `reason`), not a browser `Event` or an empty `AggregateError`.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { RelayDialError } from './errors.js'
import type { RelayDialFailure } from './errors.js'
import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

/**
 * Parses relay multiaddrs; each must end in `/p2p/<relay peer ID>`.
 *
 * @throws RelayDialError (`reason: 'bad-address'`) for one that is not a multiaddr or names no valid peer ID
 */
export function parseRelayAddrs (relays: string[]): Multiaddr[] {
  return relays.map((r) => {
    let ma: Multiaddr
    try {
      ma = multiaddr(r)
    } catch (err: any) {
      throw new RelayDialError('bad-address', `the relay address ${JSON.stringify(r)} is not a multiaddr: ${err?.message ?? err}`)
    }
    const last = ma.getComponents().at(-1)
    if (last?.name !== 'p2p' || last.value === undefined) {
      throw new RelayDialError('bad-address', `the relay address ${r} does not end in /p2p/<relay peer ID>`)
    }
    try {
      peerIdFromString(last.value)
    } catch (err: any) {
      throw new RelayDialError('bad-address', `the relay address ${r} ends in ${last.value}, which is not a peer ID: ${err?.message ?? err}`)
    }
    return ma
  })
}

/**
 * Dials every relay at once and resolves with the first connection; `onConnected` hears of each.
 *
 * @throws RelayDialError when none can be reached within `timeoutMs`, with the most telling reason
 */
export async function connectToRelay (libp2p: Libp2p, relays: Multiaddr[], timeoutMs: number, onConnected?: (conn: Connection) => void): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs)
  const failures: RelayDialFailure[] = []
  await Promise.any(relays.map(async (ma) => {
    try {
      onConnected?.(await libp2p.dial(ma, { signal }))
    } catch (err) {
      const failure = classify(err, signal.aborted)
      failures.push({ ...failure, multiaddr: ma.toString() })
      throw err
    }
  })).catch((err) => {
    // the most telling failure first: a wrong peer or a refusal says more than a timeout
    const order: Array<RelayDialFailure['reason']> = ['wrong-peer', 'refused', 'unreachable', 'bad-address', 'timeout']
    failures.sort((a, b) => order.indexOf(a.reason) - order.indexOf(b.reason))
    const first = failures[0] ?? { reason: 'timeout', message: `no relay answered within ${timeoutMs} ms`, multiaddr: '' }
    const others = failures.length > 1 ? ` (and ${failures.length - 1} more relay${failures.length > 2 ? 's' : ''} failed)` : ''
    throw new RelayDialError(first.reason, `${first.message}${others}`, { cause: err, failures })
  })
}

/** What a failed relay dial means, in words a user can act on. */
function classify (err: unknown, timedOut: boolean): Omit<RelayDialFailure, 'multiaddr'> {
  if (timedOut) return { reason: 'timeout', message: 'the relay did not answer in time' }
  const names = new Set<string>()
  const messages: string[] = []
  const walk = (e: any, depth = 0): void => {
    if (e == null || depth > 5) return
    if (typeof e.name === 'string') names.add(e.name)
    if (typeof e.message === 'string') messages.push(e.message)
    if (typeof e.type === 'string' && !(e instanceof Error)) names.add(`Event:${e.type}`)
    if (Array.isArray(e.errors)) for (const x of e.errors) walk(x, depth + 1)
    walk(e.cause, depth + 1)
  }
  walk(err)
  // libp2p's upgrader re-throws noise's UnexpectedPeerError as an EncryptionFailedError with its message
  if (names.has('UnexpectedPeerError') || messages.some((m) => m.includes('does not match expected remote identity key'))) {
    return { reason: 'wrong-peer', message: 'a relay answered at that address, but with another peer ID: the address is out of date' }
  }
  // the browser's WebSocket says only that it failed: refused or no route, it does not tell which
  if (names.has('Event:error') || names.has('Event:close')) {
    return { reason: 'unreachable', message: 'could not open a WebSocket to the relay: it is not running there, or the address is not reachable' }
  }
  if ([...names].some((n) => /EOF|Reset|Closed|Abort/i.test(n))) {
    return { reason: 'refused', message: 'the relay closed the connection: it is full or refuses this address' }
  }
  const described = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  return { reason: 'unreachable', message: `could not connect to the relay (${described})` }
}
