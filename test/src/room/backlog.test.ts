import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { HISTORY_TIMEOUT_MS, MAX_HELD_PER_ROOM } from '../../../src/constants.js'
import { RoomMessages } from '../../../src/room-messages.js'
import { Backlog } from '../../../src/room/backlog.js'
import { Delivery } from '../../../src/room/delivery.js'
import { KIND_DATA, encodeHistoryRequest, encodeLabelled, roomTopics } from '../../../src/wire.js'
import { fakeTimers, silent } from './stubs.js'
import type { SessionType } from '../../../src/index.js'
import type { Delivery as Message } from '../../../src/room-messages.js'

const SELF = 'peer-self'
const BOB = 'peer-bob'
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

function roomMessages (type: SessionType): RoomMessages {
  return new RoomMessages({ topic: roomTopics('test', type).room, maxMessageBytes: 1024, messagesPerSecond: 50, burst: 100, historySize: 10, historyRequestsPerMinute: 10 })
}

/**
 * Our backlog and delivery in room `test`, on real `RoomMessages`, with the member we ask played
 * by `serve`: `delivered` is what the application saw, in order.
 */
function backlogOf (type: SessionType = 'broadcast', members: string[] = [BOB], historySize = 10): {
  backlog: Backlog
  messages: RoomMessages
  delivered: Array<[string, boolean, number]>
  requests: Array<{ peer: string, signal: AbortSignal, serve: (frames: Uint8Array[]) => void }>
} {
  const messages = roomMessages(type)
  const delivered: Array<[string, boolean, number]> = []
  const requests: Array<{ peer: string, signal: AbortSignal, serve: (frames: Uint8Array[]) => void }> = []
  const delivery = new Delivery({ room: 'test', messages, onMessage: (m) => { delivered.push([text(m.data), m.history, m.seq]) }, onGap: () => {} })
  const backlog = new Backlog({
    self: SELF,
    room: 'test',
    topic: roomTopics('test', type).room,
    type,
    historySize,
    maxMessageBytes: 1024,
    log: silent,
    messages,
    requestHistory: async (peer, _request, _limits, signal) => new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) })
      requests.push({ peer, signal, serve: resolve })
    }),
    deliver: (r) => { delivery.release(r) },
    isMember: (peer) => members.includes(peer)
  })
  backlog.start()
  return { backlog, messages, delivered, requests }
}

/** Bob, another member: encodes its messages, numbered from 1 in each test. */
let bob: RoomMessages
async function bobSays (words: string): Promise<Uint8Array> {
  return bob.encode(BOB, { kind: KIND_DATA, seq: bob.nextSeq(), rank: 1, settled: true }, new TextEncoder().encode(words))
}

/** Bob's message as the room hands it on once opened. */
async function live (messages: RoomMessages, raw: Uint8Array): Promise<Message> {
  const opened = await messages.open(BOB, raw, { pair: false })
  if (typeof opened === 'string') throw new Error(`dropped: ${opened}`)
  return { from: BOB, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }
}

beforeEach(() => {
  fakeTimers()
  bob = roomMessages('broadcast')
})
afterEach(() => { vi.useRealTimers() })

describe('room backlog', () => {
  it('delivers the backlog, in order and once, before a live message that arrived meanwhile', async () => {
    const { backlog, messages, delivered, requests } = backlogOf()
    const [old1, old2, live3] = [await bobSays('old 1'), await bobSays('old 2'), await bobSays('live 3')]
    backlog.memberJoined(BOB)
    expect(requests.map((r) => r.peer)).toEqual([BOB])
    backlog.receive(await live(messages, live3), false)
    expect(delivered).toEqual([])
    // the backlog holds a copy of the live message too: it is delivered once
    requests[0].serve([encodeLabelled(BOB, old1), encodeLabelled(BOB, old2), encodeLabelled(BOB, live3)])
    await vi.advanceTimersByTimeAsync(0)
    expect(delivered).toEqual([['old 1', true, 1], ['old 2', true, 2], ['live 3', true, 3]])
  })

  it('asks the sender of the first live message when no member joined yet, and asks once', async () => {
    const { backlog, messages, requests } = backlogOf()
    backlog.receive(await live(messages, await bobSays('live 1')), false)
    backlog.receive(await live(messages, await bobSays('live 2')), false)
    backlog.memberJoined(BOB)
    expect(requests.map((r) => r.peer)).toEqual([BOB])
  })

  it('asks a member whose hello says it holds no backlog for nothing, and delivers its live messages at once', async () => {
    const { backlog, messages, delivered, requests } = backlogOf()
    backlog.heard(BOB, true)
    backlog.memberJoined(BOB)
    backlog.receive(await live(messages, await bobSays('live 1')), false)
    expect(requests).toEqual([])
    expect(delivered).toEqual([['live 1', false, 1]])
  })

  it('asks a member whose latest frame says it holds messages, whatever an earlier one said', async () => {
    const { backlog, requests } = backlogOf()
    backlog.heard(BOB, true)
    backlog.heard(BOB, false)
    backlog.memberJoined(BOB)
    expect(requests.map((r) => r.peer)).toEqual([BOB])
  })

  it('delivers the first live message of a sender that held nothing before it at once', async () => {
    const { backlog, messages, delivered, requests } = backlogOf()
    const raw = await bobSays('live 1')
    const opened = await messages.open(BOB, raw, { pair: false })
    if (typeof opened === 'string') throw new Error(opened)
    expect(opened.noBacklog).toBe(true)
    backlog.heard(BOB, opened.noBacklog)
    backlog.receive({ from: BOB, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, false)
    expect(requests).toEqual([])
    expect(delivered).toEqual([['live 1', false, 1]])
  })

  it('delivers a live message at once when it keeps no backlog, even before a member joined', async () => {
    const { backlog, messages, delivered, requests } = backlogOf('broadcast', [BOB], 0)
    backlog.receive(await live(messages, await bobSays('live 1')), false)
    expect(requests).toEqual([])
    expect(delivered).toEqual([['live 1', false, 1]])
  })

  it('delivers live messages after HISTORY_TIMEOUT_MS when no backlog comes', async () => {
    const { backlog, messages, delivered } = backlogOf()
    backlog.memberJoined(BOB)
    backlog.receive(await live(messages, await bobSays('live 1')), false)
    await vi.advanceTimersByTimeAsync(HISTORY_TIMEOUT_MS - 1)
    expect(delivered).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(delivered).toEqual([['live 1', false, 1]])
  })

  it('stops waiting once more than MAX_HELD_PER_ROOM live messages are held, and drops a backlog that comes later', async () => {
    const { backlog, messages, delivered, requests } = backlogOf()
    const old = await bobSays('old')
    for (let i = 1; i <= MAX_HELD_PER_ROOM + 1; i++) backlog.receive(await live(messages, await bobSays(`live ${i}`)), false)
    expect(delivered).toHaveLength(MAX_HELD_PER_ROOM + 1)
    expect(requests[0].signal.aborted).toBe(true)
    requests[0].serve([encodeLabelled(BOB, old)])
    await vi.advanceTimersByTimeAsync(0)
    expect(delivered.filter(([, history]) => history)).toEqual([])
  })

  it('asks for nothing in a pairwise room and delivers at once', async () => {
    const { backlog, messages, delivered, requests } = backlogOf('pairwise')
    backlog.memberJoined(BOB)
    const pair = roomMessages('pairwise')
    const raw = await pair.encode(BOB, { kind: KIND_DATA, seq: pair.nextSeq(SELF), rank: 1, settled: true }, new TextEncoder().encode('to you'))
    const opened = await messages.open(BOB, raw, { pair: true })
    if (typeof opened === 'string') throw new Error(opened)
    backlog.receive({ from: BOB, seq: opened.seq, data: opened.body, history: false, raw: opened.raw, incarnation: opened.incarnation }, true)
    expect(requests).toEqual([])
    expect(delivered).toEqual([['to you', false, 1]])
  })

  it('delivers nothing of a fetch that ends after stop()', async () => {
    const { backlog, messages, delivered, requests } = backlogOf()
    backlog.receive(await live(messages, await bobSays('live 1')), false)
    backlog.stop()
    backlog.stop()
    expect(requests[0].signal.aborted).toBe(true)
    await vi.advanceTimersByTimeAsync(HISTORY_TIMEOUT_MS * 2)
    expect(delivered).toEqual([])
  })
})

describe('room backlog served', () => {
  it('serves a member the newest it asks for, and refuses a non-member, a malformed request and one over the quota', async () => {
    const { backlog, messages } = backlogOf('broadcast', [BOB])
    for (let i = 1; i <= 5; i++) messages.remember(SELF, await bobSays(`m${i}`))
    const topic = roomTopics('test', 'broadcast').room
    const served = Array.from({ length: 11 }, () => backlog.serve(BOB, encodeHistoryRequest(topic, 3)))
    expect(served.slice(0, 10).map((frames) => frames.length)).toEqual(Array(10).fill(3))
    expect(served[10]).toEqual([])
    expect(backlog.serve('peer-stranger', encodeHistoryRequest(topic, 3))).toEqual([])
    expect(backlog.serve(BOB, new Uint8Array([1, 2, 3]))).toEqual([])
    expect(messages.history).toMatchObject({ served: 10, refused: { rateLimited: 1, notMember: 1, malformed: 1 } })
    backlog.writeTimedOut(BOB)
    expect(messages.history.writeTimeouts).toBe(1)
  })

  it('serves nothing in a pairwise room', () => {
    const { backlog } = backlogOf('pairwise', [BOB])
    expect(backlog.serve(BOB, encodeHistoryRequest(roomTopics('test', 'pairwise').room, 3))).toEqual([])
  })
})
