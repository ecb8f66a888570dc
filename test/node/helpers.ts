/**
 * Helpers for tests with real Node room nodes: waiting on room events with a bound, never sleeping.
 */
import { createRoomNode } from '../../src/index.js'
import type { Room, RoomEvents, RoomNode, RoomNodeInit } from '../../src/index.js'

/** Resolves with the first event of `type` matching `pred`, or rejects after `timeoutMs`. */
export async function nextEvent<K extends keyof RoomEvents> (
  room: Room, type: K, pred: (detail: RoomEvents[K]['detail']) => boolean = () => true, timeoutMs = 30_000
): Promise<RoomEvents[K]['detail']> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      room.removeEventListener(type, listener)
      reject(new Error(`no ${String(type)} event within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (evt: RoomEvents[K]): void => {
      if (!pred(evt.detail)) return
      clearTimeout(timer)
      room.removeEventListener(type, listener)
      resolve(evt.detail)
    }
    room.addEventListener(type, listener)
  })
}

/** Resolves once `room` has emitted `peer:join` for every peer in `peers` (counting ones already joined). */
export async function joinedAll (room: Room, peers: string[], timeoutMs = 45_000): Promise<void> {
  const missing = new Set(peers.filter((p) => !room.peers().some((q) => q.peerId === p && q.path === 'direct')))
  if (missing.size === 0) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      room.removeEventListener('peer:join', listener)
      reject(new Error(`peers never joined: ${[...missing].join(', ')}`))
    }, timeoutMs)
    const listener = (evt: RoomEvents['peer:join']): void => {
      missing.delete(evt.detail.peerId)
      if (missing.size > 0) return
      clearTimeout(timer)
      room.removeEventListener('peer:join', listener)
      resolve()
    }
    room.addEventListener('peer:join', listener)
  })
}

/** Creates `n` room nodes on `relay` and joins each to `name`; `peer:join` listeners attach before joining. */
export async function roomOf (n: number, relay: string, name: string, init: RoomNodeInit = {}): Promise<Array<{ node: RoomNode, room: Room }>> {
  const nodes = await Promise.all(Array.from({ length: n }, async () => createRoomNode({ relays: [relay], ...init })))
  return Promise.all(nodes.map(async (node) => ({ node, room: await node.joinRoom(name) })))
}

export async function stopAll (members: Array<{ node: RoomNode }>): Promise<void> {
  await Promise.all(members.map(async ({ node }) => { await node.stop() }))
}

let counter = 0
/** A room name unique to this test run, so tests sharing the relay never meet. */
export function uniqueRoom (label: string): string {
  return `${label}-${process.pid}-${Date.now()}-${counter++}`
}
