import { describe, expect, it } from 'vitest'
import { backoffDelay, dialWithRetry, isPeerGoneError } from '../../src/dialer.js'
import type { Connection } from '@libp2p/interface'

const conn = {} as Connection
const noReservation = (): Error => new Error('failed to connect via relay with status NO_RESERVATION')

describe('dialWithRetry', () => {
  it('retries failed dials until one succeeds, reporting each attempt', async () => {
    const seen: Array<[number, string | undefined]> = []
    let calls = 0
    const result = await dialWithRetry(async () => {
      if (++calls < 3) throw new Error('TimeoutError')
      return conn
    }, { attempts: 5, backoffMs: 1, onAttempt: (n, err) => seen.push([n, err?.message]) })
    expect(result).toBe(conn)
    expect(seen).toEqual([[1, 'TimeoutError'], [2, 'TimeoutError'], [3, undefined]])
  })

  it('gives up after the configured number of attempts with the last error', async () => {
    let calls = 0
    await expect(dialWithRetry(async () => { throw new Error(`fail ${++calls}`) }, { attempts: 3, backoffMs: 1 })).rejects.toThrow('fail 3')
    expect(calls).toBe(3)
  })

  it('stops at once when the relay says the peer holds no reservation', async () => {
    let calls = 0
    await expect(dialWithRetry(async () => { calls++; throw noReservation() }, { attempts: 5, backoffMs: 1 })).rejects.toThrow('NO_RESERVATION')
    expect(calls).toBe(1)
  })

  it('stops when aborted during the backoff', async () => {
    const controller = new AbortController()
    const dialing = dialWithRetry(async () => {
      controller.abort(new Error('room left'))
      throw new Error('first attempt failed')
    }, { attempts: 5, backoffMs: 60_000, signal: controller.signal })
    await expect(dialing).rejects.toThrow()
    expect(controller.signal.aborted).toBe(true)
  })
})

describe('backoffDelay', () => {
  it('doubles per attempt within a ±50% jitter', () => {
    expect(backoffDelay(2, 100, () => 0)).toBe(50)
    expect(backoffDelay(2, 100, () => 0.999)).toBeCloseTo(149.9)
    expect(backoffDelay(4, 100, () => 0.5)).toBe(400)
  })
})

describe('isPeerGoneError', () => {
  it('finds NO_RESERVATION in nested AggregateError and cause chains', () => {
    expect(isPeerGoneError(noReservation())).toBe(true)
    expect(isPeerGoneError(new AggregateError([new Error('x'), noReservation()]))).toBe(true)
    expect(isPeerGoneError(new Error('wrapped', { cause: noReservation() }))).toBe(true)
    expect(isPeerGoneError(new Error('TimeoutError'))).toBe(false)
    expect(isPeerGoneError(undefined)).toBe(false)
  })

  it('survives a cause cycle', () => {
    const a = new Error('a') as Error & { cause?: unknown }
    a.cause = a
    expect(isPeerGoneError(a)).toBe(false)
  })
})
