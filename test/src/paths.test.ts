import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { isDirect, isRelayed, pathOf } from '../../src/paths.js'
import type { Connection } from '@libp2p/interface'

const relayed = '/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooWRelay/p2p-circuit/p2p/12D3KooWPeer'
const conn = (init: Partial<Connection> & { addr: string }): Connection =>
  ({ status: 'open', remoteAddr: multiaddr(init.addr), ...init }) as unknown as Connection

describe('paths', () => {
  it('counts an open, unlimited /webrtc-muxed connection as direct even though the dialer keeps the circuit address', () => {
    const webrtc = conn({ addr: `${relayed.replace('/p2p-circuit/', '/p2p-circuit/webrtc/')}`, multiplexer: '/webrtc' })
    expect(isDirect(webrtc)).toBe(true)
    expect(isRelayed(webrtc)).toBe(false)
    expect(pathOf([webrtc])).toBe('direct')
  })

  it('counts a limited circuit connection as relayed', () => {
    const circuit = conn({ addr: relayed, multiplexer: '/yamux/1.0.0', limits: { bytes: 131072n, seconds: 120 } })
    expect(isDirect(circuit)).toBe(false)
    expect(isRelayed(circuit)).toBe(true)
    expect(pathOf([circuit])).toBe('relayed')
  })

  it('does not count a closing WebRTC connection as direct', () => {
    expect(isDirect(conn({ addr: '/webrtc/p2p/12D3KooWPeer', multiplexer: '/webrtc', status: 'closing' }))).toBe(false)
    expect(pathOf([])).toBe('relayed')
  })
})
