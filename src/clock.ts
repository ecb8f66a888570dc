/**
 * The clock every duration in a room is measured on: `performance.now()`, monotonic, in ms. A
 * wall clock that jumps (NTP, the user, a laptop waking) must neither expire, settle nor refill
 * anything. Read at each call, so that fake timers replacing `performance` are seen.
 */
export const monotonicNow = (): number => globalThis.performance.now()
