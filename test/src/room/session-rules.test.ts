import { describe, expect, it } from 'vitest'
import { RoomMessages } from '../../../src/room-messages.js'
import {
  acceptsHandoff, assertMayHandOff, assertMayPublish, assertPublishes, assertSends, historySizeOf, refuseData, waitsForHost
} from '../../../src/room/session-rules.js'
import { KIND_DATA, KIND_HEARTBEAT, roomTopics } from '../../../src/wire.js'

const HOST = 'peer-host'
const OTHER = 'peer-other'

/** A member's messages in room `test` of `type`, as it would encode them. */
function messages (type: 'broadcast' | 'one-way' | 'pairwise'): RoomMessages {
  return new RoomMessages({ topic: roomTopics('test', type).room, maxMessageBytes: 1024, messagesPerSecond: 50, burst: 100, historySize: 10, historyRequestsPerMinute: 10 })
}

describe('room one-way', () => {
  it('drops a message published by a non-host, before it costs a token or a sequence number', async () => {
    const sender = messages('one-way')
    const receiver = messages('one-way')
    const raw = await sender.encode(OTHER, { kind: KIND_DATA, seq: sender.nextSeq(), rank: 2, settled: true }, new TextEncoder().encode('not the host'))
    expect(await receiver.open(OTHER, raw, { rateKey: OTHER, pair: false, refuseData: refuseData('one-way', OTHER, HOST) })).toBe('notHost')
    expect(receiver.counters.dropped.notHost).toBe(1)
    expect(receiver.counters.received).toBe(0)
  })

  it('takes a message published by the host', async () => {
    const sender = messages('one-way')
    const receiver = messages('one-way')
    const raw = await sender.encode(HOST, { kind: KIND_DATA, seq: sender.nextSeq(), rank: 1, settled: true }, new TextEncoder().encode('from the host'))
    const opened = await receiver.open(HOST, raw, { rateKey: HOST, pair: false, refuseData: refuseData('one-way', HOST, HOST) })
    expect(typeof opened).toBe('object')
  })

  it('takes a non-host\'s heartbeat: only data is the host\'s alone', async () => {
    const sender = messages('one-way')
    const receiver = messages('one-way')
    const raw = await sender.encode(OTHER, { kind: KIND_HEARTBEAT, seq: 0, rank: 2, settled: true }, new Uint8Array(0))
    expect(typeof await receiver.open(OTHER, raw, { rateKey: OTHER, pair: false, refuseData: refuseData('one-way', OTHER, HOST) })).toBe('object')
  })

  it('refuses our own publish with NotHostError unless we are the host, and waits for the host to be known', () => {
    expect(() => { assertMayPublish('one-way', OTHER, HOST, 'test') }).toThrow(expect.objectContaining({ name: 'NotHostError' }))
    expect(() => { assertMayPublish('one-way', HOST, HOST, 'test') }).not.toThrow()
    expect(waitsForHost('one-way')).toBe(true)
  })
})

describe('room broadcast', () => {
  it('takes data from anyone, and lets anyone publish without waiting for the host', () => {
    expect(refuseData('broadcast', OTHER, HOST)).toBeUndefined()
    expect(() => { assertMayPublish('broadcast', OTHER, HOST, 'test') }).not.toThrow()
    expect(waitsForHost('broadcast')).toBe(false)
  })

  it('refuses send(peerId, data) with SessionTypeError', () => {
    expect(() => { assertSends('broadcast', 'test') }).toThrow(expect.objectContaining({ name: 'SessionTypeError' }))
    expect(() => { assertSends('one-way', 'test') }).toThrow(expect.objectContaining({ name: 'SessionTypeError' }))
  })
})

describe('room pairwise', () => {
  it('refuses publish with SessionTypeError and allows send', () => {
    expect(() => { assertPublishes('pairwise', 'test') }).toThrow(expect.objectContaining({ name: 'SessionTypeError' }))
    expect(() => { assertSends('pairwise', 'test') }).not.toThrow()
  })

  it('keeps no backlog, whatever historySize says', () => {
    expect(historySizeOf('pairwise', 100)).toBe(0)
    expect(historySizeOf('broadcast', 100)).toBe(100)
    expect(historySizeOf('one-way', 7)).toBe(7)
  })
})

describe('room handoff rule', () => {
  it('accepts a handoff only from the host, and lets only the host hand off', () => {
    expect(acceptsHandoff(HOST, HOST)).toBe(true)
    expect(acceptsHandoff(OTHER, HOST)).toBe(false)
    expect(() => { assertMayHandOff(OTHER, HOST, 'test') }).toThrow(expect.objectContaining({ name: 'NotHostError' }))
    expect(() => { assertMayHandOff(HOST, HOST, 'test') }).not.toThrow()
  })
})
