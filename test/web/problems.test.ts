import { describe, expect, it } from 'vitest'
import { hostPort, relayFailure, relayProblem } from '../../web/src/problems.js'

const relay = '/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooWDmMJDryrrEXWd1ibd224r2bDiaVqmShZmW4x2PFfcnbD'
const named = (name: string, message: string, extra: object = {}): Error => Object.assign(new Error(message), { name }, extra)

describe('demo relay problems', () => {
  it('reads the library\'s RelayDialError reasons', () => {
    for (const reason of ['bad-address', 'unreachable', 'wrong-peer', 'refused', 'timeout']) {
      expect(relayFailure(named('RelayDialError', 'x', { reason }))).toBe(reason)
    }
  })

  it('reads today\'s ReservationTimeoutError and parser errors for what they are', () => {
    expect(relayFailure(named('ReservationTimeoutError', 'no relay could be dialed: Error: [object Event]'))).toBe('unreachable')
    expect(relayFailure(named('ReservationTimeoutError', 'no relay reservation within 15000 ms'))).toBe('timeout')
    expect(relayFailure(named('ReservationTimeoutError', 'no relay could be dialed: Error: Incorrect length'))).toBe('bad-address')
    expect(relayFailure(named('InvalidMultiaddrError', 'String multiaddr must start with "/"'))).toBe('bad-address')
  })

  it('says what happened in plain words, with the address and an action, and never "[object Event]"', () => {
    const p = relayProblem(named('ReservationTimeoutError', 'no relay could be dialed: Error: [object Event]'), [relay], true)
    expect(p.title).toBe('Can\'t reach the relay')
    expect(p.text).toContain('127.0.0.1:9090')
    expect(p.text).not.toContain('[object Event]')
    expect(p.actions).toEqual(['retry', 'default-relay'])
    expect(relayProblem(named('RelayDialError', 'x', { reason: 'unreachable' }), [relay], false).actions).toEqual(['retry'])
    expect(hostPort('/ip6/::1/tcp/9/ws')).toBe('[::1]:9')
  })
})
