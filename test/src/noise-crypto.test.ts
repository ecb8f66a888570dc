/**
 * Noise's crypto for browsers (src/noise-crypto.ts): keys from the Montgomery ladder, checked
 * against noise's own JavaScript X25519 (noble's Edwards tables). Real handshakes with them
 * (browser to relay, browser to browser) run in every browser test.
 */
import { pureJsCrypto } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { describe, expect, it } from 'vitest'
import { noiseCrypto } from '../../src/noise-crypto.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('noise crypto', () => {
  it('computes the public keys noise itself would, for fresh and seeded key pairs', () => {
    const crypto = noiseCrypto(pureJsCrypto)
    expect(crypto).not.toBe(pureJsCrypto)
    const seen = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const pair = crypto.generateX25519KeyPair()
      expect(pair.privateKey).toHaveLength(32)
      expect(hex(pair.publicKey)).toBe(hex(pureJsCrypto.generateX25519KeyPairFromSeed(pair.privateKey).publicKey))
      seen.add(hex(pair.privateKey))
    }
    expect(seen.size).toBe(20)
    const seed = new Uint8Array(32).fill(7)
    expect(hex(crypto.generateX25519KeyPairFromSeed(seed).publicKey)).toBe(hex(pureJsCrypto.generateX25519KeyPairFromSeed(seed).publicKey))
  })

  it('matches RFC 7748 section 6.1 (Alice and Bob), and agrees a shared secret with noise\'s own keys', () => {
    const crypto = noiseCrypto(pureJsCrypto)
    const alice = crypto.generateX25519KeyPairFromSeed(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'))
    expect(hex(alice.publicKey)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    const bob = crypto.generateX25519KeyPairFromSeed(Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex'))
    expect(hex(bob.publicKey)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    expect(hex(crypto.generateX25519SharedKey(alice.privateKey, bob.publicKey))).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
    const ours = crypto.generateX25519KeyPair()
    const theirs = pureJsCrypto.generateX25519KeyPair()
    expect(hex(crypto.generateX25519SharedKey(ours.privateKey, theirs.publicKey))).toBe(hex(pureJsCrypto.generateX25519SharedKey(theirs.privateKey, ours.publicKey)))
  })

  it('leaves noise\'s crypto as it is where it is not noise\'s JavaScript (Node\'s native crypto)', () => {
    const native: ICryptoInterface = { ...pureJsCrypto, generateX25519KeyPair: () => pureJsCrypto.generateX25519KeyPair() }
    expect(noiseCrypto(native)).toBe(native)
    // in Node (these tests), noise's default is native
    expect(noiseCrypto()).toBe(defaultCrypto)
  })
})
