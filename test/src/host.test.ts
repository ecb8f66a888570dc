import { describe, expect, it } from 'vitest'
import { electHost, handoffRank } from '../../src/host.js'

describe('host rule', () => {
  it('elects the member with the lowest rank', () => {
    expect(electHost([{ peerId: 'b', rank: 20 }, { peerId: 'a', rank: 30 }, { peerId: 'c', rank: 10 }])).toBe('c')
  })

  it('breaks a tie by the smaller peer ID', () => {
    expect(electHost([{ peerId: 'b', rank: 5 }, { peerId: 'a', rank: 5 }])).toBe('a')
  })

  it('agrees whatever order the members are seen in', () => {
    const members = Array.from({ length: 8 }, (_, i) => ({ peerId: `p${(i * 5) % 8}`, rank: 100 + (i % 3) }))
    const hosts = new Set(Array.from({ length: 20 }, () => electHost([...members].sort(() => Math.random() - 0.5))))
    expect(hosts.size).toBe(1)
  })

  it('elects nobody among no members', () => {
    expect(electHost([])).toBeUndefined()
  })

  it('hands off with a rank below every member, so the new host wins the rule', () => {
    const members = [{ peerId: 'host', rank: 1 }, { peerId: 'x', rank: 2 }, { peerId: 'y', rank: 3 }]
    const rank = handoffRank(members)
    expect(electHost([...members.filter((m) => m.peerId !== 'y'), { peerId: 'y', rank }])).toBe('y')
  })
})
