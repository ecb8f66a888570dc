/**
 * Noise's X25519 keys from Web Crypto (src/noise-keys.ts), with Node's Web Crypto, which has
 * X25519 as Chromium's does; every key is checked against noise's own JavaScript X25519. Real
 * handshakes with these keys (browser to relay, browser to browser) run in every browser test.
 */
import { pureJsCrypto } from '@chainsafe/libp2p-noise'
import { describe, expect, it, vi } from 'vitest'
import { noiseKeys } from '../../src/noise-keys.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Web Crypto that counts the X25519 key pairs it makes. */
function countingSubtle (): SubtleCrypto & { made: number } {
  const subtle = globalThis.crypto.subtle
  const counter = { made: 0 }
  return new Proxy(subtle, {
    get: (target, prop) => {
      if (prop === 'made') return counter.made
      if (prop === 'generateKey') return async (...args: Parameters<SubtleCrypto['generateKey']>) => { counter.made++; return target.generateKey(...args) }
      const value = Reflect.get(target, prop)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as SubtleCrypto & { made: number }
}

describe('noise keys', () => {
  it('makes the static key with Web Crypto, and noise derives from it the public key Web Crypto made', async () => {
    const subtle = countingSubtle()
    const keys = await noiseKeys(pureJsCrypto, subtle, 2)
    expect(keys.staticNoiseKey).toHaveLength(32)
    const seed = keys.staticNoiseKey ?? new Uint8Array()
    const pair = keys.crypto.generateX25519KeyPairFromSeed(seed)
    expect(hex(pair.publicKey)).toBe(hex(pureJsCrypto.generateX25519KeyPairFromSeed(seed).publicKey))
    // any other seed is noise's own business
    const other = new Uint8Array(32).fill(7)
    expect(hex(keys.crypto.generateX25519KeyPairFromSeed(other).publicKey)).toBe(hex(pureJsCrypto.generateX25519KeyPairFromSeed(other).publicKey))
  })

  it('hands out ephemeral key pairs made ahead, each once, and refills the pool', async () => {
    const subtle = countingSubtle()
    const keys = await noiseKeys(pureJsCrypto, subtle, 3)
    await vi.waitFor(() => { expect(keys.ahead).toBe(3) })
    const madeBefore = subtle.made
    const seen = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const pair = keys.crypto.generateX25519KeyPair()
      expect(hex(pair.publicKey)).toBe(hex(pureJsCrypto.generateX25519KeyPairFromSeed(pair.privateKey).publicKey))
      seen.add(hex(pair.privateKey))
    }
    expect(seen.size).toBe(3)
    await vi.waitFor(() => { expect(keys.ahead).toBe(3) })
    expect(subtle.made).toBe(madeBefore + 3)
    for (let i = 0; i < 3; i++) expect(seen.has(hex(keys.crypto.generateX25519KeyPair().privateKey))).toBe(false)
  })

  it('agrees a shared secret with a key noise made itself', async () => {
    const keys = await noiseKeys(pureJsCrypto, globalThis.crypto.subtle, 1)
    await vi.waitFor(() => { expect(keys.ahead).toBe(1) })
    const ours = keys.crypto.generateX25519KeyPair()
    const theirs = pureJsCrypto.generateX25519KeyPair()
    const a = keys.crypto.generateX25519SharedKey(ours.privateKey, theirs.publicKey)
    const b = pureJsCrypto.generateX25519SharedKey(theirs.privateKey, ours.publicKey)
    expect(hex(a)).toBe(hex(b))
  })

  it('falls back to noise\'s own JavaScript when no key pair is made ahead', async () => {
    const subtle = countingSubtle()
    const keys = await noiseKeys(pureJsCrypto, subtle, 0)
    const pair = keys.crypto.generateX25519KeyPair()
    expect(hex(pair.publicKey)).toBe(hex(pureJsCrypto.generateX25519KeyPairFromSeed(pair.privateKey).publicKey))
    // the static key only
    expect(subtle.made).toBe(1)
    expect(keys.ahead).toBe(0)
  })

  it('leaves noise as it is where its crypto is native or Web Crypto has no X25519', async () => {
    const native: ICryptoInterface = { ...pureJsCrypto, generateX25519KeyPair: () => pureJsCrypto.generateX25519KeyPair() }
    const unchanged = await noiseKeys(native, globalThis.crypto.subtle)
    expect(unchanged.crypto).toBe(native)
    expect(unchanged.staticNoiseKey).toBeUndefined()
    const noX25519 = { generateKey: async () => { throw new DOMException('Algorithm: Unrecognized name', 'NotSupportedError') } } as unknown as SubtleCrypto
    const without = await noiseKeys(pureJsCrypto, noX25519)
    expect(without.crypto).toBe(pureJsCrypto)
    expect(without.staticNoiseKey).toBeUndefined()
  })
})
