/**
 * The relay's WebSocket opened while the node is made (src/ws-preconnect.ts), against the real
 * relay and a real `ws` server, with Node's own WebSocket: every socket made is counted by a
 * subclass installed as the global `WebSocket` for the test.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { createRoomNode } from '../../src/index.js'
import { PreconnectedSockets } from '../../src/ws-preconnect.js'
import type { RoomNode } from '../../src/index.js'

const relayAddr = inject('relayAddr')

const NativeWebSocket = globalThis.WebSocket
let made: WebSocket[] = []

beforeEach(() => {
  made = []
  globalThis.WebSocket = class extends NativeWebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      made.push(this)
    }
  }
})
afterEach(() => { globalThis.WebSocket = NativeWebSocket })

describe('the relay\'s WebSocket opened early', () => {
  let node: RoomNode | undefined
  afterEach(async () => { await node?.stop() })

  it('opens the relay\'s socket before making its node, and reaches the relay over that one socket', async () => {
    const starting = createRoomNode({ relays: [relayAddr] })
    // before createRoomNode's first await: the key and the node are not made yet
    expect(made).toHaveLength(1)
    node = await starting
    // @libp2p/websockets took it: a transport that opened its own would make it two
    expect(made).toHaveLength(1)
    const relayPeer = multiaddr(relayAddr).getComponents().at(-1)?.value
    expect(node.libp2p.getConnections().map((c) => c.remotePeer.toString())).toContain(relayPeer)
  })

  it('never hands out a socket whose server spoke first, that closed, or that could not connect', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise<void>((resolve) => { server.once('listening', resolve) })
    const port = (server.address() as { port: number }).port
    const sockets = new PreconnectedSockets({ ttl: 30_000 })
    try {
      // no libp2p listener speaks before the dialer: this one does
      server.once('connection', (ws) => { ws.send('hello') })
      const talker = multiaddr(`/ip4/127.0.0.1/tcp/${port}/ws`)
      sockets.open([talker])
      await new Promise((resolve) => { made[0].addEventListener('message', resolve, { once: true }) })
      expect(sockets.take(talker)).toBeUndefined()

      server.once('connection', (ws) => { ws.close() })
      // the same URI as the transport sees it, whatever follows the /ws
      const closing = multiaddr(`/ip4/127.0.0.1/tcp/${port}/ws/p2p/12D3KooWJzzSeffZ1ns3URKYMA2Ey4BCCafCxEVmyS3eVbkJjyjz`)
      sockets.open([closing])
      await new Promise((resolve) => { made[1].addEventListener('close', resolve, { once: true }) })
      expect(sockets.take(multiaddr(`/ip4/127.0.0.1/tcp/${port}/ws`))).toBeUndefined()

      // nothing listening: Node 20's WebSocket says so with `error` alone, still CONNECTING
      const dead = multiaddr('/ip4/127.0.0.1/tcp/9/ws')
      sockets.open([dead])
      await new Promise((resolve) => { made[2].addEventListener('error', resolve, { once: true }) })
      expect(sockets.take(dead)).toBeUndefined()
      expect(made).toHaveLength(3)
    } finally {
      sockets.close()
      await new Promise((resolve) => { server.close(resolve) })
    }
  })
})
