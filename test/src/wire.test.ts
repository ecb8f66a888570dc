import { describe, expect, it } from 'vitest'
import { MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCEMENT_BYTES } from '../../src/constants.js'
import { KIND_DATA, decodeAnnouncement, decodeRoomMessage, encodeAnnouncement, encodeRoomMessage, roomTopics } from '../../src/wire.js'

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
  it('prefixes the payload with version and kind, and strips them again', () => {
    const bytes = encodeRoomMessage(KIND_DATA, new Uint8Array([7, 8]))
    expect([...bytes]).toEqual([1, KIND_DATA, 7, 8])
    expect([...(decodeRoomMessage(bytes)?.payload ?? [])]).toEqual([7, 8])
  })

  it('rejects unknown versions and kinds, and truncated input', () => {
    expect(decodeRoomMessage(new Uint8Array([2, KIND_DATA, 1]))).toBeUndefined()
    expect(decodeRoomMessage(new Uint8Array([1, 9, 1]))).toBeUndefined()
    expect(decodeRoomMessage(new Uint8Array([1]))).toBeUndefined()
  })

  it('gives a room distinct discovery and data topics', () => {
    const t = roomTopics('lobby')
    expect(t.discovery).not.toBe(t.room)
    expect(t.discovery.endsWith('/lobby') && t.room.endsWith('/lobby')).toBe(true)
  })
})
