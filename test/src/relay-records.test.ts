/**
 * Relay records (src/relay-records.ts): the one check relays and browser nodes apply, with
 * examples of each verdict, and property-based tests (fast-check) of the decoder and the check
 * on random and mutated bytes: they never throw, and never hand out more than their bounds.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  decodeRelayRecord, encodeRelayRecord, federationProof, MAX_FEDERATION_KEYS, MAX_RECORD_ADDR_BYTES, MAX_RECORD_ADDRS,
  MAX_RECORD_BYTES, relayRecordOf, RelayTrust, verifyRelayRecord
} from '../../src/relay-records.js'
import type { PrivateKey } from '@libp2p/interface'

let relayKey: PrivateKey
let otherKey: PrivateKey
let federationKey: PrivateKey
let relayId: string
let valid: Uint8Array
let proven: Uint8Array

beforeAll(async () => {
  [relayKey, otherKey, federationKey] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
  relayId = peerIdFromPrivateKey(relayKey).toString()
  const addrs = [multiaddr('/ip4/192.0.2.1/tcp/443/tls/ws'), multiaddr(`/dns4/relay.example.com/tcp/443/wss/p2p/${relayId}`), multiaddr('/ip4/192.0.2.1/tcp/4001')]
  valid = encodeRelayRecord(relayRecordOf(relayKey.publicKey, addrs))
  proven = encodeRelayRecord(relayRecordOf(relayKey.publicKey, addrs, { key: federationKey.publicKey, proof: await federationProof(federationKey, relayId) }))
})

describe('relay record check', () => {
  it('trusts a configured relay\'s record, keeping only its WebSockets addresses', async () => {
    const verdict = await new RelayTrust({ peers: [relayId] }).verify(valid, relayKey.publicKey)
    expect(verdict.ok).toBe(true)
    expect(verdict.record?.trustedBy).toBe('configured')
    expect(verdict.record?.multiaddrs.map(String)).toEqual([`/ip4/192.0.2.1/tcp/443/tls/ws/p2p/${relayId}`, `/dns4/relay.example.com/tcp/443/wss/p2p/${relayId}`])
  })

  it('ignores a valid record of a relay nobody vouches for', async () => {
    const verdict = await new RelayTrust({ peers: [] }).verify(valid, relayKey.publicKey)
    expect(verdict).toMatchObject({ ok: false, reason: 'untrusted' })
  })

  it('rejects a record signed by another peer than the one it describes', async () => {
    expect(await new RelayTrust({ peers: [relayId] }).verify(valid, otherKey.publicKey)).toMatchObject({ ok: false, reason: 'not-signer' })
    expect(await new RelayTrust({ peers: [relayId] }).verify(valid, undefined)).toMatchObject({ ok: false, reason: 'not-signer' })
  })

  it('trusts a relay proving a trusted federation key, and rejects a proof for another relay', async () => {
    expect(await new RelayTrust({ federationKeys: [federationKey.publicKey] }).verify(proven, relayKey.publicKey)).toMatchObject({ ok: true, record: { trustedBy: 'federation' } })
    // the same proof copied into another relay's record proves nothing
    const stolen = encodeRelayRecord({ ...decodeRelayRecord(proven)!, publicKey: decodeRelayRecord(encodeRelayRecord(relayRecordOf(otherKey.publicKey, [])))!.publicKey, addrs: [] })
    expect(await new RelayTrust({ federationKeys: [federationKey.publicKey] }).verify(stolen, otherKey.publicKey)).toMatchObject({ ok: false, reason: 'bad-proof' })
  })

  it('learns the federation key a configured relay declares, and then trusts the relays proving it', async () => {
    const trust = new RelayTrust({ peers: [relayId] })
    const otherId = peerIdFromPrivateKey(otherKey).toString()
    const sibling = encodeRelayRecord(relayRecordOf(otherKey.publicKey, [multiaddr('/ip4/192.0.2.2/tcp/443/tls/ws')], { key: federationKey.publicKey, proof: await federationProof(federationKey, otherId) }))
    expect(await trust.verify(sibling, otherKey.publicKey)).toMatchObject({ ok: false, reason: 'untrusted' })
    expect(trust.trusts(otherId)).toBe(false)
    expect((await trust.verify(proven, relayKey.publicKey)).ok).toBe(true)
    expect(trust.federations()).toEqual([federationKey.publicKey.toString()])
    expect(await trust.verify(sibling, otherKey.publicKey)).toMatchObject({ ok: true, record: { peerId: otherId, trustedBy: 'federation' } })
    expect(trust.trusts(otherId)).toBe(true)
  })

  it('rejects oversized records, and records naming another peer in an address', async () => {
    expect(await verifyRelayRecord(new Uint8Array(MAX_RECORD_BYTES + 1), relayKey.publicKey, new Map())).toMatchObject({ ok: false, reason: 'oversized' })
    const otherId = peerIdFromPrivateKey(otherKey).toString()
    const lying = encodeRelayRecord(relayRecordOf(relayKey.publicKey, [multiaddr(`/ip4/192.0.2.1/tcp/443/ws/p2p/${otherId}`)]))
    expect(await verifyRelayRecord(lying, relayKey.publicKey, new Map())).toMatchObject({ ok: false, reason: 'malformed' })
  })

  it('decodes what pubsub peer discovery encodes (fields 1 and 2), skipping unknown fields', () => {
    const withUnknown = Uint8Array.from([...valid, 0x28, 0x01, 0x3a, 0x02, 0xaa, 0xbb])
    expect(decodeRelayRecord(withUnknown)?.addrs).toHaveLength(3)
    expect(decodeRelayRecord(Uint8Array.from([...valid, ...valid.subarray(0, 3)]))).toBeUndefined()
  })
})

/** Valid records mutated: bytes flipped, cut, inserted, spliced from another record. */
function mutated (): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.constantFrom(0, 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert', 'dup')), { maxLength: 8 }))
    .map(([which, edits]) => {
      let bytes = [...(which === 0 ? valid : proven)]
      for (const [at, byte, op] of edits) {
        const i = bytes.length === 0 ? 0 : at % bytes.length
        if (op === 'flip') bytes[i] = byte
        else if (op === 'cut') bytes = bytes.slice(0, i)
        else if (op === 'insert') bytes.splice(i, 0, byte)
        else bytes = [...bytes.slice(0, i), ...bytes.slice(i, i + 40), ...bytes.slice(i)]
      }
      return Uint8Array.from(bytes)
    })
}

const input = (): fc.Arbitrary<Uint8Array> => fc.oneof(fc.uint8Array({ maxLength: MAX_RECORD_BYTES + 64 }), mutated())

describe('relay record decoder and check, on random and mutated bytes', () => {
  it('decodeRelayRecord never throws, and hands out only bounded views of its input', () => {
    fc.assert(fc.property(input(), (data) => {
      const record = decodeRelayRecord(data)
      if (record === undefined) return
      expect(data.byteLength).toBeLessThanOrEqual(MAX_RECORD_BYTES)
      expect(record.addrs.length).toBeLessThanOrEqual(MAX_RECORD_ADDRS)
      for (const part of [record.publicKey, ...record.addrs, record.federationKey, record.federationProof]) {
        if (part === undefined) continue
        // a view of the input, never a copy
        expect(part.buffer).toBe(data.buffer)
        expect(part.byteLength).toBeLessThanOrEqual(data.byteLength)
      }
      for (const addr of record.addrs) expect(addr.byteLength).toBeLessThanOrEqual(MAX_RECORD_ADDR_BYTES)
    }), { numRuns: 2000 })
  })

  it('RelayTrust.verify never throws, never trusts what it was not told to, and learns at most MAX_FEDERATION_KEYS keys', async () => {
    const trust = new RelayTrust({ peers: [relayId] })
    await fc.assert(fc.asyncProperty(input(), fc.constantFrom('relay', 'other', 'none'), async (data, signer) => {
      const key = signer === 'relay' ? relayKey.publicKey : signer === 'other' ? otherKey.publicKey : undefined
      const verdict = await trust.verify(data, key)
      if (verdict.ok) {
        // only the configured relay signs records here: nothing else can be trusted
        expect(signer).toBe('relay')
        expect(verdict.record.peerId).toBe(relayId)
        expect(verdict.record.multiaddrs.length).toBeLessThanOrEqual(MAX_RECORD_ADDRS)
        for (const ma of verdict.record.multiaddrs) expect(ma.getComponents().some((c) => c.name === 'ws' || c.name === 'wss')).toBe(true)
      }
      expect(trust.federations().length).toBeLessThanOrEqual(MAX_FEDERATION_KEYS)
    }), { numRuns: 1000 })
  })
})
