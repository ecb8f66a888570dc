/**
 * Files between real Node room nodes (WebRTC through node-datachannel, a real relay process):
 * the protocol end to end, with chunks kept in memory (Node has neither OPFS nor IndexedDB).
 * Chromium, storage, resume and memory are in test/browser/files*.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { FILE_CHUNK_BYTES } from '../../src/constants.js'
import { joinedAll, nextEvent, roomOf, stopAll, uniqueRoom } from './helpers.js'
import type { FileProgress, IncomingFile, Room, RoomNode } from '../../src/index.js'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')

let members: Array<{ node: RoomNode, room: Room }> = []
afterEach(async () => {
  await stopAll(members)
  members = []
})

async function meet (n: number, label: string): Promise<Array<{ node: RoomNode, room: Room }>> {
  members = await roomOf(n, relayAddr, uniqueRoom(label))
  await Promise.all(members.map(async (m) => { await joinedAll(m.room, members.filter((o) => o !== m).map((o) => o.node.peerId)) }))
  return members
}

async function circuitBytes (): Promise<number> {
  const { transfer } = await (await fetch(`${relayHttp}/status`)).json()
  return transfer.circuit.sent + transfer.circuit.received
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('files between Node peers', () => {
  it('sends a file over the direct connection: the receiver gets the same bytes, verified, with progress', async () => {
    const [a, b] = await meet(2, 'file-send')
    const bytes = new Uint8Array(randomBytes(3 * FILE_CHUNK_BYTES + 1234))
    const before = await circuitBytes()

    const offered = nextEvent(b.room, 'file')
    const transfer = a.room.sendFile(b.node.peerId, new Blob([bytes]), { name: 'data.bin', type: 'application/octet-stream' })
    const sent: FileProgress[] = []
    transfer.addEventListener('progress', (e) => { sent.push(e.detail) })
    const incoming = await offered as IncomingFile
    expect(incoming).toMatchObject({ from: a.node.peerId, name: 'data.bin', type: 'application/octet-stream', size: bytes.byteLength, sha256: sha256(bytes), id: transfer.id })
    const received: FileProgress[] = []
    incoming.addEventListener('progress', (e) => { received.push(e.detail) })

    const file = await incoming.accept()
    const { sha256: confirmed } = await transfer.done
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(bytes)
    expect(file.name).toBe('data.bin')
    expect(confirmed).toBe(sha256(bytes))
    expect(received.at(-1)?.bytes).toBe(bytes.byteLength)
    expect(sent.at(-1)?.bytes).toBe(bytes.byteLength)
    expect(transfer.sentBytes).toBe(bytes.byteLength)
    expect(transfer.state).toBe('done')
    expect(incoming.state).toBe('done')
    expect(await circuitBytes()).toBe(before)
  })

  it('fetches a shared file from two holders at once', async () => {
    const [a, b, c] = await meet(3, 'file-share')
    const bytes = new Uint8Array(randomBytes(40 * FILE_CHUNK_BYTES))
    const offerAtC = nextEvent(c.room, 'file:offer')
    await a.room.shareFile(new Blob([bytes]), { name: 'shared.bin' })
    await b.room.shareFile(new Blob([bytes]), { name: 'shared.bin' })
    const offer = await offerAtC
    expect(offer.id).toBe(sha256(bytes))
    await expect.poll(() => offer.holders().sort()).toEqual([a.node.peerId, b.node.peerId].sort())

    const file = await offer.fetch()
    expect(sha256(new Uint8Array(await file.arrayBuffer()))).toBe(sha256(bytes))
    expect(offer.bySource[a.node.peerId]).toBeGreaterThan(0)
    expect(offer.bySource[b.node.peerId]).toBeGreaterThan(0)
    expect(offer.bySource[a.node.peerId] + offer.bySource[b.node.peerId]).toBe(bytes.byteLength)
  })

  it('continues after the direct connection drops, sending only what was missing', async () => {
    const [a, b] = await meet(2, 'file-heal')
    const bytes = new Uint8Array(randomBytes(40 * FILE_CHUNK_BYTES))
    const offered = nextEvent(b.room, 'file')
    const transfer = a.room.sendFile(b.node.peerId, new Blob([bytes]))
    let sentAtDrop: number | undefined
    transfer.addEventListener('progress', (e) => {
      if (sentAtDrop !== undefined || e.detail.bytes < 0.4 * e.detail.total) return
      sentAtDrop = transfer.sentBytes
      for (const conn of a.node.libp2p.getConnections(b.node.libp2p.peerId)) conn.abort(new Error('simulated network loss'))
    })
    const incoming = await offered
    const states: Array<{ state: string, bytes: number }> = []
    incoming.addEventListener('state', (e) => { states.push({ state: e.detail.state, bytes: incoming.bytes }) })
    const file = await incoming.accept()
    await transfer.done
    expect(sha256(new Uint8Array(await file.arrayBuffer()))).toBe(sha256(bytes))
    // it resumed: receiving, resuming, receiving again, done
    const resumedAt = states.findIndex((s, i) => s.state === 'receiving' && states[i - 1]?.state === 'resuming')
    expect(resumedAt).toBeGreaterThan(0)
    const verifiedBeforeResume = states[resumedAt].bytes
    const sentAfterDrop = transfer.sentBytes - (sentAtDrop as number)
    console.log(`drop at ${sentAtDrop} sent bytes; ${verifiedBeforeResume} verified before resuming; ${sentAfterDrop} sent after the drop`)
    expect(sentAfterDrop).toBeLessThanOrEqual(bytes.byteLength - verifiedBeforeResume + FILE_CHUNK_BYTES)
  })
})
