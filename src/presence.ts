/**
 * Presence of a room's members: when each was last heard, on a monotonic clock, and which have
 * been silent for longer than the timeout.
 *
 * Two choices keep the bound honest. The clock is `performance.now()`, not `Date.now()`: a wall
 * clock that jumps (NTP, the user, a laptop waking) must neither evict every member at once (a
 * step forward) nor keep a dead one for the length of the step (a step back). And only what a
 * member sends us itself counts: a copy of its message forwarded by another member (gossipsub
 * re-sends, and answers IWANT from a cache of the last seconds) proves it was alive when it sent
 * it, not that it is alive now. Pure: no timers, the clock is injected.
 */

import { monotonicNow } from './clock.js'
import { MIN_PRESENCE_CHECK_MS, PRESENCE_CHECKS_PER_TIMEOUT } from './constants.js'

export interface PresenceInit {
  /** A member not heard from for longer than this is silent, in ms. */
  timeout: number
  /** Monotonic clock in ms; defaults to `performance.now()`. Tests inject a fake one. */
  now?: () => number
}

export class Presence {
  readonly timeout: number
  readonly #now: () => number
  readonly #last = new Map<string, number>()

  constructor (init: PresenceInit) {
    this.timeout = init.timeout
    this.#now = init.now ?? monotonicNow
  }

  /**
   * How often to look for silent members, in ms: a sixteenth of the timeout
   * (`PRESENCE_CHECKS_PER_TIMEOUT`, at least `MIN_PRESENCE_CHECK_MS`), so a member is dropped at
   * most `timeout` + 1/16 of it after it was last heard.
   */
  get checkEvery (): number {
    return Math.max(MIN_PRESENCE_CHECK_MS, this.timeout / PRESENCE_CHECKS_PER_TIMEOUT)
  }

  /** `peer` sent us a message itself, just now. */
  heard (peer: string): void {
    this.#last.set(peer, this.#now())
  }

  /** Starts the clock for `peer` (it became a member) unless it is running already. */
  start (peer: string): void {
    if (!this.#last.has(peer)) this.heard(peer)
  }

  forget (peer: string): void {
    this.#last.delete(peer)
  }

  /** Ms since `peer` was last heard, or undefined if it is not tracked. */
  sinceHeard (peer: string): number | undefined {
    const last = this.#last.get(peer)
    return last === undefined ? undefined : this.#now() - last
  }

  /** Tracked members not heard for longer than the timeout. */
  silent (): string[] {
    const now = this.#now()
    const out: string[] = []
    for (const [peer, last] of this.#last) {
      if (now - last > this.timeout) out.push(peer)
    }
    return out
  }
}
