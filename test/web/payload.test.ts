import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_NAME_LENGTH } from '../../web/src/names.js'
import { PAYLOAD_APP, decodeMessage, encodeMessage, encodedBytes } from '../../web/src/payload.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const NOW = 1_750_000_000_000

describe('demo payload', () => {
  it('round-trips a chat message with its name and send time, and a profile', () => {
    const chat = { kind: 'chat' as const, text: 'hi\nthere', name: 'Ada', sentAt: NOW - 5000 }
    expect(decodeMessage(bytes(encodeMessage(chat)), NOW)).toEqual(chat)
    expect(decodeMessage(bytes(encodeMessage({ kind: 'profile', name: 'Ada' })), NOW)).toEqual({ kind: 'profile', name: 'Ada' })
    expect(encodedBytes(chat)).toBe(bytes(encodeMessage(chat)).byteLength)
  })

  it('shows what another client sent as plain text instead of dropping it', () => {
    expect(decodeMessage(bytes('hello from a plain client'), NOW)).toEqual({ kind: 'chat', text: 'hello from a plain client' })
    expect(decodeMessage(bytes('{"not":"ours"}'), NOW)).toEqual({ kind: 'chat', text: '{"not":"ours"}' })
    expect(decodeMessage(bytes('{broken json'), NOW)).toEqual({ kind: 'chat', text: '{broken json' })
    const unknownKind = JSON.stringify({ app: PAYLOAD_APP, v: 1, kind: 'file', text: 'x' })
    expect(decodeMessage(bytes(unknownKind), NOW)).toEqual({ kind: 'chat', text: unknownKind })
  })

  it('does not believe a send time from the future, a non-number or a negative one', () => {
    for (const sentAt of [NOW + 3_600_000, 'yesterday', -1, null, Number.NaN]) {
      const msg = decodeMessage(bytes(JSON.stringify({ app: PAYLOAD_APP, v: 1, kind: 'chat', text: 'x', sentAt })), NOW)
      expect(msg).toEqual({ kind: 'chat', text: 'x' })
    }
  })

  it('cleans names: no control or bidi characters, at most MAX_NAME_LENGTH characters', () => {
    const msg = decodeMessage(bytes(JSON.stringify({ app: PAYLOAD_APP, v: 1, kind: 'chat', text: 'x', name: '\u202eAda\u0000 \n Lovelace' + 'x'.repeat(100) })), NOW)
    expect(msg.name?.startsWith('Ada Lovelace')).toBe(true)
    expect([...(msg.name ?? '')].length).toBe(MAX_NAME_LENGTH)
    expect(decodeMessage(bytes(JSON.stringify({ app: PAYLOAD_APP, v: 1, kind: 'profile', name: '   ' })), NOW)).toEqual({ kind: 'profile' })
  })

  it('never throws on random or mutated bytes, and only ever returns a chat or profile of strings', () => {
    const valid = encodeMessage({ kind: 'chat', text: 'hello', name: 'Ada', sentAt: NOW })
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }),
      fc.string({ maxLength: 512 }).map(bytes),
      fc.tuple(fc.nat(valid.length), fc.string({ maxLength: 16 })).map(([i, s]) => bytes(valid.slice(0, i) + s + valid.slice(i + 1))),
      fc.record({ app: fc.constant(PAYLOAD_APP), v: fc.anything(), kind: fc.oneof(fc.constant('chat'), fc.constant('profile'), fc.anything()), text: fc.anything(), name: fc.anything(), sentAt: fc.anything() })
        .map((o) => bytes(JSON.stringify(o) ?? ''))
    )
    fc.assert(fc.property(input, (data) => {
      const msg = decodeMessage(data, NOW)
      expect(['chat', 'profile']).toContain(msg.kind)
      if (msg.kind === 'chat') expect(typeof msg.text).toBe('string')
      if (msg.name !== undefined) expect([...msg.name].length).toBeLessThanOrEqual(MAX_NAME_LENGTH)
      if (msg.kind === 'chat' && msg.sentAt !== undefined) expect(msg.sentAt).toBeLessThan(NOW + 5 * 60_000)
      // the text shown is never longer than what arrived
      if (msg.kind === 'chat') expect(bytes(msg.text).byteLength).toBeLessThanOrEqual(data.byteLength * 3)
    }), { numRuns: 2000 })
  })
})
