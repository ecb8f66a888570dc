import { afterEach, describe, expect, it, vi } from 'vitest'
import { Presence } from '../../src/presence.js'

const HOUR = 3_600_000

describe('presence', () => {
  afterEach(() => { vi.useRealTimers() })

  it('finds a member silent once it was not heard for longer than the timeout', () => {
    let t = 0
    const p = new Presence({ timeout: 8_000, now: () => t })
    p.heard('a')
    p.heard('b')
    t = 5_000
    p.heard('b')
    t = 8_000
    expect(p.silent()).toEqual([])
    t = 8_001
    expect(p.silent()).toEqual(['a'])
    expect(p.sinceHeard('b')).toBe(3_001)
    p.forget('a')
    expect(p.silent()).toEqual([])
  })

  it('starts a member\'s clock once, when it joins, and not again', () => {
    let t = 0
    const p = new Presence({ timeout: 100, now: () => t })
    p.start('a')
    t = 60
    p.start('a')
    t = 101
    expect(p.silent()).toEqual(['a'])
  })

  it('checks often enough that a silent member goes within a sixteenth of the timeout after it', () => {
    expect(new Presence({ timeout: 8_000 }).checkEvery).toBe(500)
    expect(new Presence({ timeout: 1_000 }).checkEvery).toBe(250)
  })

  // the default clock, under fake timers: Date and performance.now() both move with time, but a
  // step of the system time (vi.setSystemTime) moves Date alone, as NTP or the user would
  for (const jump of [+HOUR, -HOUR]) {
    it(`evicts nobody, and keeps nobody longer, when the wall clock jumps ${jump > 0 ? 'forward' : 'back'} an hour`, () => {
      vi.useFakeTimers({ toFake: ['Date', 'performance'] })
      const p = new Presence({ timeout: 8_000 })
      p.heard('alive')
      p.heard('dead')
      vi.advanceTimersByTime(1_000)
      vi.setSystemTime(Date.now() + jump)
      expect(p.silent()).toEqual([])
      // the live member keeps talking; the dead one is gone 8 s after it was last heard, jump or not
      for (let s = 0; s < 8; s++) {
        vi.advanceTimersByTime(1_000)
        p.heard('alive')
      }
      expect(p.silent()).toEqual(['dead'])
    })
  }
})
