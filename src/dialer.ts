/**
 * Bounded retries with exponential backoff and jitter for the direct WebRTC dial.
 *
 * Two upstream faults make a healthy WebRTC dial fail now and then, more often as a room grows:
 * the initiator waiting for the `init` data channel's `open` after the remote closed it
 * (`@libp2p/webrtc` 6.0.33, patched in `patches/`; no upstream issue found for it as of 2026-11), and an occasional
 * `DTLS alert: unknown CA` from node-datachannel. Each such dial succeeds when tried again.
 */
import { backoffDelay as exponentialBackoff, sleep } from './backoff.js'
import { DIAL_BACKOFF_JITTER } from './constants.js'
import type { Connection } from '@libp2p/interface'

export interface DialRetryInit {
  /** Attempts in all, at least 1. */
  attempts: number
  /** Delay before the second attempt, doubled for each further one, in ms. */
  backoffMs: number
  /** Stops retrying (and rejects with its reason) when aborted. */
  signal?: AbortSignal
  /** Called once per attempt with its 1-based number, and the error if it failed. */
  onAttempt?: (attempt: number, err?: Error) => void
  /** Source of jitter in [0, 1). @default Math.random */
  random?: () => number
}

/**
 * The relay refused to open a circuit because the target holds no reservation there: the peer
 * is gone (its tab closed), so retrying cannot help.
 */
export function isPeerGoneError (err: unknown): boolean {
  const seen = new Set<unknown>()
  const walk = (e: unknown): boolean => {
    if (e == null || typeof e !== 'object' || seen.has(e)) return false
    seen.add(e)
    const { message, errors, cause } = e as { message?: unknown, errors?: unknown, cause?: unknown }
    if (typeof message === 'string' && message.includes('NO_RESERVATION')) return true
    if (Array.isArray(errors) && errors.some(walk)) return true
    return walk(cause)
  }
  return walk(err)
}

/** Delay before attempt `n` (2-based): `backoffMs * 2^(n-2)`, scaled by a jitter in [0.5, 1.5) (backoff.ts). */
export function backoffDelay (attempt: number, backoffMs: number, random: () => number): number {
  return exponentialBackoff(attempt - 1, { initialMs: backoffMs, jitter: DIAL_BACKOFF_JITTER, random })
}

export async function dialWithRetry (dial: (attempt: number) => Promise<Connection>, init: DialRetryInit): Promise<Connection> {
  const random = init.random ?? Math.random
  let lastError: Error = new Error('no dial attempted')
  for (let attempt = 1; attempt <= Math.max(1, init.attempts); attempt++) {
    init.signal?.throwIfAborted()
    if (attempt > 1) await sleep(backoffDelay(attempt, init.backoffMs, random), init.signal)
    try {
      const conn = await dial(attempt)
      init.onAttempt?.(attempt)
      return conn
    } catch (err: any) {
      lastError = err
      init.onAttempt?.(attempt, err)
      if (init.signal?.aborted === true || isPeerGoneError(err)) throw err
    }
  }
  throw lastError
}
