import { describe, expect, it } from 'vitest'
import { DEFAULT_RATE_LIMIT_MAX_KEYS, RateLimiter, TokenBucket } from '../../src/rate-limit.js'

/** A clock the test moves by hand, in ms. */
function fakeClock (start = 1_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

function takeAll (bucket: TokenBucket): number {
  let taken = 0
  while (bucket.take()) taken++
  return taken
}

describe('token bucket', () => {
  it('lets a full burst through at once, then refills at rate', () => {
    const clock = fakeClock()
    const bucket = new TokenBucket({ rate: 2, burst: 5, now: clock.now })
    expect(takeAll(bucket)).toBe(5)
    expect(bucket.take()).toBe(false)
    expect(bucket.wait()).toBe(500)

    clock.advance(499)
    expect(bucket.take()).toBe(false)
    clock.advance(1)
    expect(bucket.take()).toBe(true)
    expect(bucket.take()).toBe(false)

    clock.advance(1_000)
    expect(takeAll(bucket)).toBe(2)
  })

  it('accumulates fractional refills until a whole token is there', () => {
    const clock = fakeClock()
    const bucket = new TokenBucket({ rate: 3, burst: 1, now: clock.now })
    expect(bucket.take()).toBe(true)
    // 1/3 s in three steps that are not whole ms apart from the token's point of view
    clock.advance(111)
    expect(bucket.take()).toBe(false)
    clock.advance(111)
    expect(bucket.take()).toBe(false)
    expect(bucket.tokens).toBeCloseTo(0.666, 3)
    expect(bucket.wait()).toBe(Math.ceil((1 - 0.666) * 1000 / 3))
    clock.advance(bucket.wait())
    expect(bucket.take()).toBe(true)
  })

  it('is available after exactly wait() ms, despite floating-point refill', () => {
    const clock = fakeClock()
    const bucket = new TokenBucket({ rate: 7, burst: 3, now: clock.now })
    takeAll(bucket)
    for (let i = 0; i < 200; i++) {
      const wait = bucket.wait()
      expect(wait).toBeGreaterThan(0)
      clock.advance(wait)
      expect(bucket.take()).toBe(true)
    }
  })

  it('never holds more than burst, however long it idles', () => {
    const clock = fakeClock()
    const bucket = new TokenBucket({ rate: 100, burst: 4, now: clock.now })
    expect(bucket.tokens).toBe(4)
    clock.advance(3_600_000)
    expect(bucket.tokens).toBe(4)
    expect(takeAll(bucket)).toBe(4)
  })

  it('takes n tokens at once or none', () => {
    const clock = fakeClock()
    const bucket = new TokenBucket({ rate: 1, burst: 3, now: clock.now })
    expect(bucket.take(2)).toBe(true)
    expect(bucket.take(2)).toBe(false)
    expect(bucket.tokens).toBe(1)
    expect(bucket.wait(2)).toBe(1_000)
    expect(bucket.wait(4)).toBe(Infinity)
  })

  it('neither drains nor refills twice when the clock steps back', () => {
    const clock = fakeClock(10_000)
    const bucket = new TokenBucket({ rate: 1, burst: 2, now: clock.now })
    takeAll(bucket)
    clock.advance(-5_000)
    expect(bucket.tokens).toBe(0)
    clock.advance(5_000)
    expect(bucket.tokens).toBe(0)
    clock.advance(1_000)
    expect(bucket.tokens).toBe(1)
  })

  it('lets at most burst + rate * 10 of 10,000 attempts through over 10 s', () => {
    const clock = fakeClock()
    const rate = 20
    const burst = 50
    const bucket = new TokenBucket({ rate, burst, now: clock.now })
    let passed = 0
    // one attempt per ms, like a peer flooding as fast as it can
    for (let i = 0; i < 10_000; i++) {
      if (bucket.take()) passed++
      clock.advance(1)
    }
    expect(passed).toBeLessThanOrEqual(burst + rate * 10)
    // and the limit is not stricter than promised: the sustained rate does get through
    expect(passed).toBeGreaterThanOrEqual(burst + rate * 10 - 1)
  })

  it('never refills when rate is 0', () => {
    const clock = fakeClock()
    const bucket = new TokenBucket({ rate: 0, burst: 2, now: clock.now })
    expect(takeAll(bucket)).toBe(2)
    clock.advance(1e9)
    expect(bucket.take()).toBe(false)
    expect(bucket.wait()).toBe(Infinity)
  })

  it('rejects a negative rate and a burst that is not positive', () => {
    expect(() => new TokenBucket({ rate: -1, burst: 1 })).toThrow(RangeError)
    expect(() => new TokenBucket({ rate: 1, burst: 0 })).toThrow(RangeError)
    expect(() => new TokenBucket({ rate: Number.NaN, burst: 1 })).toThrow(RangeError)
  })

  it('uses a real monotonic clock when none is given', () => {
    const bucket = new TokenBucket({ rate: 1, burst: 1 })
    expect(bucket.take()).toBe(true)
    expect(bucket.take()).toBe(false)
    expect(bucket.wait()).toBeGreaterThan(0)
    expect(bucket.wait()).toBeLessThanOrEqual(1_000)
  })
})

describe('rate limiter', () => {
  it('gives every key its own bucket', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ rate: 1, burst: 2, now: clock.now })
    expect(limiter.take('a')).toBe(true)
    expect(limiter.take('a')).toBe(true)
    expect(limiter.take('a')).toBe(false)
    expect(limiter.take('b')).toBe(true)
    expect(limiter.size).toBe(2)
    clock.advance(1_000)
    expect(limiter.take('a')).toBe(true)
    expect(limiter.take('a')).toBe(false)
  })

  it('tracks at most maxKeys, forgetting the least recently used', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ rate: 0, burst: 1, maxKeys: 3, now: clock.now })
    for (const key of ['a', 'b', 'c']) expect(limiter.take(key)).toBe(true)
    // touching 'a' makes 'b' the least recently used
    expect(limiter.take('a')).toBe(false)
    expect(limiter.take('d')).toBe(true)
    expect(limiter.size).toBe(3)
    // 'a', 'c' and 'd' are still remembered as empty; 'b' was forgotten and starts full again
    expect(limiter.take('a')).toBe(false)
    expect(limiter.take('c')).toBe(false)
    expect(limiter.take('d')).toBe(false)
    expect(limiter.take('b')).toBe(true)
    expect(limiter.size).toBe(3)
  })

  it('stays within maxKeys under a flood of distinct keys', () => {
    const limiter = new RateLimiter({ rate: 1, burst: 1, now: () => 0 })
    for (let i = 0; i < DEFAULT_RATE_LIMIT_MAX_KEYS * 3; i++) limiter.take(`peer-${i}`)
    expect(limiter.size).toBe(DEFAULT_RATE_LIMIT_MAX_KEYS)
  })

  it('starts a deleted key over with a full bucket', () => {
    const limiter = new RateLimiter({ rate: 0, burst: 1, now: () => 0 })
    expect(limiter.take('a')).toBe(true)
    expect(limiter.take('a')).toBe(false)
    limiter.delete('a')
    expect(limiter.size).toBe(0)
    expect(limiter.take('a')).toBe(true)
  })

  it('rejects a maxKeys that is not a positive integer', () => {
    expect(() => new RateLimiter({ rate: 1, burst: 1, maxKeys: 0 })).toThrow(RangeError)
    expect(() => new RateLimiter({ rate: 1, burst: 1, maxKeys: 1.5 })).toThrow(RangeError)
  })
})
