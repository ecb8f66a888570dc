/**
 * Noise's X25519 key pairs made by Web Crypto, where the browser has X25519 (Chromium 133+,
 * Firefox 130+, Safari 17+) and noise would otherwise make them in JavaScript.
 *
 * In a browser @chainsafe/libp2p-noise runs @noble/curves, whose X25519 public key is a base-point
 * multiplication: the first one of a page builds noble's base-point tables, 70 ms of a 2-tab
 * meeting's path (a CPU profile of the meeting bench: the static key, made while the node is
 * created, before the first byte goes to the relay), and every handshake makes an ephemeral key
 * pair. Web Crypto makes the same keys (RFC 7748) in native code, off the main thread, but only
 * asynchronously, while noise asks for them synchronously (`ICryptoInterface`). So the static key
 * is made before the node, and ephemeral key pairs are made ahead, a few at a time: each is handed
 * out once and forgotten (a handshake's ephemeral key must never be reused), and the pool is
 * refilled in the background. An empty pool falls back to noise's own JavaScript, as does
 * everything else (the Diffie-Hellman itself, ChaCha20-Poly1305, SHA-256, which Web Crypto either
 * lacks or offers only asynchronously).
 */
import { pureJsCrypto } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { equals } from 'uint8arrays/equals'
import { fromString } from 'uint8arrays/from-string'
import { NOISE_EPHEMERAL_KEYS_AHEAD } from './constants.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

interface KeyPair {
  publicKey: Uint8Array
  privateKey: Uint8Array
}

export interface NoiseKeys {
  /** noise's `crypto` option */
  crypto: ICryptoInterface
  /** noise's `staticNoiseKey` option, when Web Crypto made it */
  staticNoiseKey?: Uint8Array
  /** Ephemeral key pairs made ahead and not yet handed out. */
  readonly ahead: number
}

/**
 * noise's options for this environment: where noise computes X25519 in JavaScript and Web Crypto
 * has X25519, its static key and ephemeral keys come from Web Crypto; otherwise (Node's native
 * crypto, a browser without X25519) noise's own crypto, unchanged.
 *
 * @param base - noise's crypto for this environment. @default defaultCrypto of @chainsafe/libp2p-noise
 * @param subtle - Web Crypto. @default globalThis.crypto.subtle
 * @param keysAhead - ephemeral key pairs kept made ahead. @default NOISE_EPHEMERAL_KEYS_AHEAD
 */
export async function noiseKeys (base: ICryptoInterface = defaultCrypto, subtle: SubtleCrypto | undefined = globalThis.crypto?.subtle, keysAhead = NOISE_EPHEMERAL_KEYS_AHEAD): Promise<NoiseKeys> {
  const unchanged: NoiseKeys = { crypto: base, ahead: 0 }
  if (base.generateX25519KeyPair !== pureJsCrypto.generateX25519KeyPair || subtle === undefined) return unchanged
  let staticKey: KeyPair
  try {
    staticKey = await webCryptoKeyPair(subtle)
  } catch {
    // no X25519 in this Web Crypto
    return unchanged
  }
  const pool: KeyPair[] = []
  let filling = false
  const fill = (): void => {
    if (filling || pool.length >= keysAhead) return
    filling = true
    webCryptoKeyPair(subtle).then((pair) => {
      pool.push(pair)
      filling = false
      fill()
    }, () => {
      // Web Crypto stopped making keys: noise's own JavaScript makes them from now on
    })
  }
  fill()
  const crypto: ICryptoInterface = {
    ...base,
    generateX25519KeyPair: () => {
      const pair = pool.shift()
      fill()
      return pair ?? base.generateX25519KeyPair()
    },
    generateX25519KeyPairFromSeed: (seed) => equals(seed, staticKey.privateKey)
      ? { publicKey: staticKey.publicKey, privateKey: staticKey.privateKey }
      : base.generateX25519KeyPairFromSeed(seed)
  }
  return { crypto, staticNoiseKey: staticKey.privateKey, get ahead () { return pool.length } }
}

/** An X25519 key pair as noise holds one: the 32-byte private key (RFC 7748 scalar, unclamped) and public key. */
async function webCryptoKeyPair (subtle: SubtleCrypto): Promise<KeyPair> {
  const pair = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']) as CryptoKeyPair
  const { d, x } = await subtle.exportKey('jwk', pair.privateKey)
  const privateKey = fromString(d ?? '', 'base64url')
  const publicKey = fromString(x ?? '', 'base64url')
  if (privateKey.length !== 32 || publicKey.length !== 32) throw new Error('unexpected X25519 JWK')
  return { privateKey, publicKey }
}
