/**
 * Noise's crypto for browsers: @chainsafe/libp2p-noise's own JavaScript (@noble), except how an
 * X25519 public key is computed.
 *
 * noble's `x25519.getPublicKey` multiplies the base point on the equivalent Edwards curve with
 * cached tables: three times faster than the Montgomery ladder once the tables exist, but the first
 * call of a page builds them, and that was 70 ms of CPU on a new tab's path to its relay (a CPU
 * profile of the meeting bench: noise makes its static key while the node is created, before the
 * first byte goes to the relay). A tab makes few keys, its static key and one ephemeral key per
 * handshake (one with its relay, two per peer: the circuit that signals WebRTC, then the WebRTC
 * connection), so the tables rarely pay back: here a key costs one ladder, the same that each
 * handshake's Diffie-Hellman already runs (3 ms the first time, 2 ms after, in Node; the tables:
 * 31 ms, then 0.5 ms). Same keys either way (RFC 7748: the public key is X25519(k, 9)).
 */
import { pureJsCrypto } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { x25519 } from '@noble/curves/ed25519.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

/**
 * noise's `crypto` option for this environment: where noise runs X25519 in JavaScript (browsers),
 * its own crypto with public keys computed by the Montgomery ladder; elsewhere (Node's native
 * crypto) noise's own, unchanged.
 *
 * @param base - noise's crypto for this environment. @default defaultCrypto of @chainsafe/libp2p-noise
 */
export function noiseCrypto (base: ICryptoInterface = defaultCrypto): ICryptoInterface {
  if (base.generateX25519KeyPair !== pureJsCrypto.generateX25519KeyPair) return base
  const publicKeyOf = (privateKey: Uint8Array): Uint8Array => x25519.scalarMult(privateKey, x25519.GuBytes)
  return {
    ...base,
    generateX25519KeyPair: () => {
      const privateKey = x25519.utils.randomSecretKey()
      return { privateKey, publicKey: publicKeyOf(privateKey) }
    },
    generateX25519KeyPairFromSeed: (seed) => ({ privateKey: seed, publicKey: publicKeyOf(seed) })
  }
}
