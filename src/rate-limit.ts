/**
 * Token-bucket rate limiting of room messages, one bucket per sender.
 *
 * The classic token bucket (as in RFC 2697's committed-burst bucket): a bucket holds at most
 * `burst` tokens, gains `rate` tokens per second, and each message costs one token. A sender
 * may therefore send `burst` messages at once and `rate` per second sustained; over any
 * interval of `t` seconds at most `burst + rate * t` messages pass.
 */

import { monotonicNow } from './clock.js'
import { DEFAULT_RATE_LIMIT_MAX_KEYS } from './constants.js'

// re-exported: callers of the rate limiter find its default beside it
export { DEFAULT_RATE_LIMIT_MAX_KEYS }

/**
 * Below this many tokens a bucket counts as holding enough: refill is computed in floating
 * point, so waiting exactly `wait(n)` ms may leave `n - 1e-12` tokens instead of `n`.
 */
const EPSILON = 1e-9

export interface TokenBucketInit {
  /** Tokens added per second; 0 means the bucket never refills. */
  rate: number
  /** Capacity in tokens: the most that can be taken at once after a quiet spell. */
  burst: number
  /** Clock in ms; defaults to `performance.now()`. Tests inject a fake one. */
  now?: () => number
}

export interface RateLimiterInit extends TokenBucketInit {
  /** Most keys tracked at once; the least recently used key is forgotten beyond it. @default 1024 */
  maxKeys?: number
}

function checkInit (init: TokenBucketInit): void {
  if (!Number.isFinite(init.rate) || init.rate < 0) throw new RangeError(`rate must be a finite number >= 0, got ${init.rate}`)
  if (!Number.isFinite(init.burst) || init.burst <= 0) throw new RangeError(`burst must be a finite number > 0, got ${init.burst}`)
}

/**
 * One bucket. Tokens are refilled lazily on each call from the time elapsed, so an idle bucket
 * costs no timer. It starts full: a newcomer may send its first `burst` messages at once.
 * Throws `RangeError` if `rate` is negative or `burst` not positive.
 */
export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  readonly #now: () => number
  #tokens: number
  #last: number

  constructor (init: TokenBucketInit) {
    checkInit(init)
    this.#rate = init.rate
    this.#burst = init.burst
    this.#now = init.now ?? monotonicNow
    this.#tokens = init.burst
    this.#last = this.#now()
  }

  /** Tokens available now (fractional), never more than `burst`. */
  get tokens (): number {
    this.#refill()
    return this.#tokens
  }

  /** Takes `n` tokens (default 1) and returns true if that many are available; otherwise takes none. */
  take (n = 1): boolean {
    this.#refill()
    if (this.#tokens + EPSILON < n) return false
    this.#tokens = Math.max(0, this.#tokens - n)
    return true
  }

  /**
   * Ms until `n` tokens (default 1) will be available: 0 if they are now, `Infinity` if never
   * (`n` exceeds `burst`, or `rate` is 0 and the bucket holds too few).
   */
  wait (n = 1): number {
    this.#refill()
    if (this.#tokens + EPSILON >= n) return 0
    if (n > this.#burst || this.#rate === 0) return Infinity
    return Math.ceil((n - this.#tokens) * 1000 / this.#rate)
  }

  #refill (): void {
    const now = this.#now()
    // a clock that steps back must not drain the bucket, nor let the next step refill twice
    const elapsed = Math.max(0, now - this.#last)
    this.#last = Math.max(this.#last, now)
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate / 1000)
  }
}

/**
 * One token bucket per key (a sender's peer ID), all with the same rate and burst.
 *
 * Memory is bounded by `maxKeys`: beyond it the least recently used key is forgotten, and comes
 * back with a full bucket. That is lossless for keys idle long enough to have refilled, and
 * the price of the bound for the rest: a sender rotating through more than `maxKeys` identities
 * gets `burst` extra messages per rotation, no worse than being that many senders.
 * Throws `RangeError` on a bad rate, burst or `maxKeys` (a positive integer).
 */
export class RateLimiter {
  readonly #init: TokenBucketInit
  readonly #maxKeys: number
  // a Map iterates in insertion order; re-inserting on use keeps the least recently used first
  readonly #buckets = new Map<string, TokenBucket>()

  constructor (init: RateLimiterInit) {
    checkInit(init)
    const maxKeys = init.maxKeys ?? DEFAULT_RATE_LIMIT_MAX_KEYS
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be an integer >= 1, got ${maxKeys}`)
    this.#init = { rate: init.rate, burst: init.burst, now: init.now }
    this.#maxKeys = maxKeys
  }

  /** Keys tracked now, at most `maxKeys`. */
  get size (): number {
    return this.#buckets.size
  }

  /** Takes `n` tokens (default 1) from `key`'s bucket; true if it had them. */
  take (key: string, n = 1): boolean {
    let bucket = this.#buckets.get(key)
    if (bucket == null) {
      bucket = new TokenBucket(this.#init)
    } else {
      this.#buckets.delete(key)
    }
    this.#buckets.set(key, bucket)
    if (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value as string
      this.#buckets.delete(oldest)
    }
    return bucket.take(n)
  }

  /** Forgets `key` (the sender left); it starts with a full bucket if seen again. */
  delete (key: string): void {
    this.#buckets.delete(key)
  }
}
