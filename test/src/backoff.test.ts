/**
 * The one backoff (src/backoff.ts) that the direct dial, the relay set and the relay federation share.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { backoffDelay, sleep } from '../../src/backoff.js'

afterEach(() => { vi.useRealTimers() })

describe('backoffDelay', () => {
  it('doubles from initialMs with each failure, up to maxMs', () => {
    const waits = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, { initialMs: 1_000, maxMs: 30_000 }))
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000])
  })

  it('multiplies the wait by a factor drawn from the jitter range', () => {
    const init = { initialMs: 100, jitter: [0.5, 1.5] as const }
    expect(backoffDelay(1, { ...init, random: () => 0 })).toBe(50)
    expect(backoffDelay(1, { ...init, random: () => 0.5 })).toBe(100)
    expect(backoffDelay(3, { ...init, random: () => 0.999 })).toBeCloseTo(599.6)
  })

  it('applies the jitter after the cap, so a capped wait still spreads', () => {
    expect(backoffDelay(10, { initialMs: 1_000, maxMs: 2_000, jitter: [1, 1.2], random: () => 0.5 })).toBeCloseTo(2_200)
  })
})

describe('sleep', () => {
  it('resolves after its time', async () => {
    vi.useFakeTimers()
    let done = false
    const slept = sleep(1_000).then(() => { done = true })
    await vi.advanceTimersByTimeAsync(999)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await slept
    expect(done).toBe(true)
  })

  it('rejects with the abort reason at once when its signal aborts', async () => {
    vi.useFakeTimers()
    const controller = new AbortController()
    const slept = sleep(60_000, controller.signal)
    controller.abort(new Error('stopping'))
    await expect(slept).rejects.toThrow('stopping')
    expect(vi.getTimerCount()).toBe(0)
  })
})
