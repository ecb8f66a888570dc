import { describe, expect, it } from 'vitest'
import { MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCEMENT_BYTES } from '../../src/constants.js'
import {
  FLAG_NO_BACKLOG, FLAG_SETTLED, KIND_DATA, KIND_HEARTBEAT, ROOM_HEADER_BYTES, decodeAnnouncement, decodeHandoff, decodeLabelled, decodeRoomMessage, encodeAnnouncement,
  decodeHistoryRequest, encodeHandoff, encodeHistoryRequest, encodeLabelled, encodeRoomMessage, roomTopics
} from '../../src/wire.js'

const self = '12D3KooWSelf'
const addr = `/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooWRelay/p2p-circuit/webrtc/p2p/${self}`
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))

describe('wire announcement', () => {
  it('round-trips an announcement and a leave', () => {
    expect(decodeAnnouncement(encodeAnnouncement({ v: 1, kind: 'announce', addrs: [addr] }), self)).toEqual({ v: 1, kind: 'announce', addrs: [addr] })
    expect(decodeAnnouncement(encodeAnnouncement({ v: 1, kind: 'leave' }), self)).toEqual({ v: 1, kind: 'leave' })
  })

  it('rejects addresses that are not the sender\'s own', () => {
    expect(decodeAnnouncement(encodeAnnouncement({ v: 1, kind: 'announce', addrs: [addr] }), '12D3KooWOther')).toBeUndefined()
  })

  it('rejects malformed, unversioned, empty, oversized and overlong announcements', () => {
    expect(decodeAnnouncement(new Uint8Array([0xff, 0xfe]), self)).toBeUndefined()
    expect(decodeAnnouncement(new TextEncoder().encode('{not json'), self)).toBeUndefined()
    expect(decodeAnnouncement(enc(null), self)).toBeUndefined()
    expect(decodeAnnouncement(enc({ v: 2, kind: 'announce', addrs: [addr] }), self)).toBeUndefined()
    expect(decodeAnnouncement(enc({ v: 1, kind: 'announce', addrs: [] }), self)).toBeUndefined()
    expect(decodeAnnouncement(enc({ v: 1, kind: 'announce', addrs: [42] }), self)).toBeUndefined()
    expect(decodeAnnouncement(enc({ v: 1, kind: 'announce', addrs: Array(MAX_ANNOUNCED_ADDRS + 1).fill(addr) }), self)).toBeUndefined()
    expect(decodeAnnouncement(new Uint8Array(MAX_ANNOUNCEMENT_BYTES + 1), self)).toBeUndefined()
  })
})

describe('wire room message', () => {
  it('carries version, kind, flags, seq, incarnation and rank before the body, and reads them back', () => {
    const bytes = encodeRoomMessage({ kind: KIND_DATA, seq: 7, incarnation: 0xdeadbeef, rank: 1_700_000_000_123.5, settled: true }, new Uint8Array([7, 8]))
    expect(bytes.byteLength).toBe(ROOM_HEADER_BYTES + 2)
    expect([...bytes.subarray(0, 11)]).toEqual([3, KIND_DATA, 1, 0, 0, 0, 7, 0xde, 0xad, 0xbe, 0xef])
    const decoded = decodeRoomMessage(bytes)
    expect(decoded).toMatchObject({ kind: KIND_DATA, seq: 7, incarnation: 0xdeadbeef, rank: 1_700_000_000_123.5, settled: true })
    expect(decodeRoomMessage(encodeRoomMessage({ kind: KIND_HEARTBEAT, seq: 0, incarnation: 1, rank: 1, settled: false }, new Uint8Array(0)))?.settled).toBe(false)
    expect(decoded?.noBacklog).toBe(false)
    const empty = encodeRoomMessage({ kind: KIND_HEARTBEAT, seq: 0, incarnation: 1, rank: 1, settled: true, noBacklog: true }, new Uint8Array(0))
    expect(empty[2]).toBe(FLAG_SETTLED | FLAG_NO_BACKLOG)
    expect(decodeRoomMessage(empty)).toMatchObject({ settled: true, noBacklog: true })
    expect([...(decoded?.body ?? [])]).toEqual([7, 8])
    expect([...(decoded?.header ?? [])]).toEqual([...bytes.subarray(0, ROOM_HEADER_BYTES)])
  })

  it('rejects unknown versions and kinds, truncated headers, data without a seq and control with one', () => {
    const h = { incarnation: 1, settled: false }
    const good = encodeRoomMessage({ ...h, kind: KIND_DATA, seq: 1, rank: 1 }, new Uint8Array(0))
    const other = good.slice()
    other[0] = 1
    expect(decodeRoomMessage(other)).toBeUndefined()
    const kind = good.slice()
    kind[1] = 9
    expect(decodeRoomMessage(kind)).toBeUndefined()
    expect(decodeRoomMessage(good.subarray(0, ROOM_HEADER_BYTES - 1))).toBeUndefined()
    // version 2, the header before incarnations, is another version
    const v2 = good.slice()
    v2[0] = 2
    expect(decodeRoomMessage(v2)).toBeUndefined()
    expect(decodeRoomMessage(encodeRoomMessage({ ...h, kind: KIND_DATA, seq: 0, rank: 1 }, new Uint8Array(0)))).toBeUndefined()
    expect(decodeRoomMessage(encodeRoomMessage({ ...h, kind: KIND_HEARTBEAT, seq: 3, rank: 1 }, new Uint8Array(0)))).toBeUndefined()
    expect(decodeRoomMessage(encodeRoomMessage({ ...h, kind: KIND_HEARTBEAT, seq: 0, rank: Number.NaN }, new Uint8Array(0)))).toBeUndefined()
  })

  it('round-trips a handoff and refuses a truncated one', () => {
    expect(decodeHandoff(encodeHandoff('12D3KooWpeer', 41.5))).toEqual({ to: '12D3KooWpeer', rank: 41.5 })
    expect(decodeHandoff(new Uint8Array(8))).toBeUndefined()
  })

  it('labels a frame with a room topic or sender, and reads it back', () => {
    const frame = encodeLabelled('/p2p-rooms/2/room/pairwise/x', new Uint8Array([1, 2, 3]))
    const back = decodeLabelled(frame)
    expect(back?.label).toBe('/p2p-rooms/2/room/pairwise/x')
    expect([...(back?.rest ?? [])]).toEqual([1, 2, 3])
    expect(decodeLabelled(frame.subarray(0, 4))).toBeUndefined()
  })

  it('asks for a backlog with the most messages the requester takes, and refuses anything else', () => {
    const req = encodeHistoryRequest('/p2p-rooms/2/room/broadcast/x', 100)
    expect(decodeHistoryRequest(req)).toEqual({ topic: '/p2p-rooms/2/room/broadcast/x', maxMessages: 100 })
    expect(decodeHistoryRequest(encodeHistoryRequest('t', 1e12))?.maxMessages).toBe(0xffffffff)
    // the request of version 2 carried nothing after the topic
    expect(decodeHistoryRequest(encodeLabelled('t', new Uint8Array(0)))).toBeUndefined()
    expect(decodeHistoryRequest(encodeLabelled('t', new Uint8Array(5)))).toBeUndefined()
    expect(decodeHistoryRequest(new Uint8Array([0xff]))).toBeUndefined()
  })

  it('gives a room distinct discovery and data topics, per session type', () => {
    const t = roomTopics('lobby', 'broadcast')
    expect(t.discovery).not.toBe(t.room)
    expect(t.discovery.endsWith('/broadcast/lobby') && t.room.endsWith('/broadcast/lobby')).toBe(true)
    expect(roomTopics('lobby', 'one-way').room).not.toBe(t.room)
  })

  it('names a private room by its topic ID alone', () => {
    const t = roomTopics('lobby', 'broadcast', 'ab'.repeat(16))
    expect(t.room).not.toContain('lobby')
    expect(t.room).not.toContain('broadcast')
    expect(t.room.endsWith(`/private/${'ab'.repeat(16)}`)).toBe(true)
  })
})
