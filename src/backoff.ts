/**
 * The one exponential backoff of the project, and the one abortable wait: the direct WebRTC dial (dialer.ts), the browser's
 * relay redials (relays.ts) and the relay's federation redials (relay/src/federation.ts) each
 * wait `initialMs * 2^(failures - 1)`, capped at `maxMs`, times a random jitter factor.
 *
 * It lives in the library and is exported as `p2p-rooms/backoff` because the relay package
 * already depends on the library (for `p2p-rooms/constants`, `p2p-rooms/relay-records`, …) and
 * never the other way round; it is browser- and Node-safe (no built-ins).
 */

export interface BackoffInit {
  /** Wait after the first failure, in ms; doubled for each further one. */
  initialMs: number
  /** Longest wait before jitter, in ms. @default Infinity */
  maxMs?: number
  /**
   * The wait is multiplied by a factor drawn uniformly from `[jitter[0], jitter[1])`, so that many
   * peers retrying the same thing spread out. @default [1, 1] (no jitter)
   */
  jitter?: readonly [number, number]
  /** Source of randomness in [0, 1). @default Math.random */
  random?: () => number
}

/**
 * How long to wait after `failures` consecutive failures (1 or more), in ms:
 * `min(initialMs * 2^(failures - 1), maxMs) * factor`, `factor` in `[jitter[0], jitter[1])`.
 */
export function backoffDelay (failures: number, init: BackoffInit): number {
  const [low, high] = init.jitter ?? [1, 1]
  const factor = low === high ? low : low + (init.random ?? Math.random)() * (high - low)
  return Math.min(init.initialMs * 2 ** (Math.max(1, failures) - 1), init.maxMs ?? Infinity) * factor
}

/** Resolves after `ms`; rejects with the signal's reason as soon as `signal` aborts (clearing the timer). */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms)
    function done (): void {
      signal?.removeEventListener('abort', abort)
      resolve()
    }
    function abort (): void {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', abort, { once: true })
  })
}
