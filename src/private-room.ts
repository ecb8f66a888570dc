/**
 * Keys of a private room: members share a secret out of band; everything else comes from it.
 *
 * 1. **Stretching.** PBKDF2-HMAC-SHA-256 (RFC 8018 §5.2) turns the secret into a 256-bit master
 *    secret, salted with the room's session type and name, at `PRIVATE_ROOM_KDF_ITERATIONS`
 *    (600,000: OWASP's Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA256). The topic ID
 *    is public (the relay and every peer that shares a connection see it), so whoever sees it can
 *    test guesses of the secret offline: each guess now costs those 600,000 iterations instead
 *    of one HKDF. The salt makes every room's guesses separate work: no table serves two rooms.
 *    A secret from `createRoomSecret()` (128 random bits) is out of reach of guessing at any cost.
 * 2. **Expansion.** HKDF-SHA-256 (RFC 5869) derives from the master secret a 128-bit topic ID,
 *    which replaces the room name on the wire, and for each sender session an AES-GCM-256 key
 *    (NIST SP 800-38D) bound to the sender's peer ID and incarnation.
 *
 * Per-sender keys keep AES-GCM's random-nonce bound (at most 2^32 messages under one key, so two
 * random 96-bit IVs collide with probability below 2^-32, SP 800-38D §8.3) per sender session
 * instead of for the whole room over its whole life: the room key never changes (it is a
 * function of name, type and secret), but at the fastest a sender may send (`messagesPerSecond`,
 * 50 by default) one session would need 2.7 years to use up its key's share.
 *
 * Only WebCrypto (`globalThis.crypto.subtle`), present in browsers and Node 20: no crypto code of our own.
 */
import { PRIVATE_ROOM_KDF_ITERATIONS } from './constants.js'

/** HKDF salt (RFC 5869 §3.1): fixed per protocol version, so keys of another version differ. */
const HKDF_SALT = new TextEncoder().encode('p2p-rooms/3')

/** Prefix of the PBKDF2 salt, before the session type and the room name. */
const PBKDF2_SALT_PREFIX = 'p2p-rooms/3/private-room'

/** Bits of the topic ID: enough that two rooms never share a topic by chance. */
const TOPIC_ID_BITS = 128

/** Bits of the master secret PBKDF2 produces: SHA-256's output, no more (RFC 8018 §5.2 recomputes every block). */
const MASTER_BITS = 256

/** AES-GCM IV, in bytes: 96 bits is the length GCM is designed for (SP 800-38D §8.2). */
const IV_BYTES = 12

/** AES-GCM authentication tag, in bytes: the full 128 bits. */
const TAG_BYTES = 16

/** Bytes `seal` adds to a plaintext: the IV and the tag. */
export const SEALED_OVERHEAD_BYTES = IV_BYTES + TAG_BYTES

/** Random bytes in a secret from `createRoomSecret`: 128 bits. */
const ROOM_SECRET_BYTES = 16

export interface RoomSecrets {
  /** 32 lowercase hex chars replacing the room name in topics: reveals neither name nor secret. */
  topicId: string
  /** HKDF key from which each sender's AES-GCM key is derived (`senderKey`); not extractable. */
  master: CryptoKey
}

/**
 * WebCrypto takes only views of an `ArrayBuffer`, not of a `SharedArrayBuffer`; copy in the
 * rare case the caller's bytes live in one.
 */
function bufferSource (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes)
}

function hkdfParams (info: string): HkdfParams {
  return { name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info: new TextEncoder().encode(info) }
}

function toHex (bytes: Uint8Array): string {
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/**
 * A new secret for a private room: 128 random bits (`crypto.getRandomValues`), base64url without
 * padding (22 characters, safe in a URL fragment). For apps that can hand members a link: such a
 * secret cannot be guessed, whatever the key derivation costs.
 */
export function createRoomSecret (): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(ROOM_SECRET_BYTES))
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * Derives a private room's topic ID and master key from its shared secret (a string is UTF-8
 * encoded): PBKDF2-HMAC-SHA-256 with salt `p2p-rooms/3/private-room\0<type>\0<name>` and
 * `iterations` (600,000 by default; the parameter is for tests), then HKDF-SHA-256 with info
 * `topic`. The name and session type are bound in, so one secret reused for two rooms gives
 * unrelated topics and keys. Takes about as long as 600,000 HMAC-SHA-256 computations (see README).
 * Throws `TypeError` if `secret` is empty or `type` contains a NUL character.
 */
export async function deriveRoomSecrets (name: string, type: string, secret: string | Uint8Array, iterations = PRIVATE_ROOM_KDF_ITERATIONS): Promise<RoomSecrets> {
  const password = typeof secret === 'string' ? new TextEncoder().encode(secret) : bufferSource(secret)
  if (password.byteLength === 0) throw new TypeError('a private room needs a non-empty secret')
  if (type.includes('\0')) throw new TypeError('a session type must not contain a NUL character')

  const { subtle } = globalThis.crypto
  // `type` holds no NUL, so the first NUL after it ends it and `name` may contain anything
  const salt = new TextEncoder().encode(`${PBKDF2_SALT_PREFIX}\0${type}\0${name}`)
  const passwordKey = await subtle.importKey('raw', password, 'PBKDF2', false, ['deriveBits'])
  const stretched = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, passwordKey, MASTER_BITS)
  const master = await subtle.importKey('raw', stretched, 'HKDF', false, ['deriveBits', 'deriveKey'])
  const topicBits = await subtle.deriveBits(hkdfParams('topic'), master, TOPIC_ID_BITS)
  return { topicId: toHex(new Uint8Array(topicBits)), master }
}

/**
 * The AES-GCM-256 key of one sender session of a private room: HKDF-SHA-256 of the master key
 * with info `sender\0<peer ID>\0<incarnation>`. Every member can derive every sender's key (they
 * share the secret); what it separates is the nonce space of each session.
 */
export async function senderKey (master: CryptoKey, sender: string, incarnation: number): Promise<CryptoKey> {
  return globalThis.crypto.subtle.deriveKey(hkdfParams(`sender\0${sender}\0${incarnation}`), master, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
}

/**
 * Encrypts and authenticates `plaintext` with AES-GCM: returns random 96-bit IV || ciphertext ||
 * 128-bit tag (`SEALED_OVERHEAD_BYTES`, 28, longer than `plaintext`). `aad` (e.g. header and
 * sender) is authenticated, not encrypted, and must be given again to `open`.
 * Random IVs are safe for up to 2^32 seals per key (SP 800-38D §8.3): one key per sender session.
 */
export async function seal (key: CryptoKey, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES))
  const ciphertext = await globalThis.crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: bufferSource(aad), tagLength: TAG_BYTES * 8 },
    key,
    bufferSource(plaintext)
  )
  const sealed = new Uint8Array(IV_BYTES + ciphertext.byteLength)
  sealed.set(iv)
  sealed.set(new Uint8Array(ciphertext), IV_BYTES)
  return sealed
}

/**
 * Checks and decrypts what `seal` produced. Returns undefined when authentication fails: wrong
 * key, tampered bytes, wrong `aad`, or too short to hold an IV and a tag. Other failures (e.g.
 * `key` is not an AES-GCM decryption key) are programming errors and are thrown.
 */
export async function open (key: CryptoKey, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array | undefined> {
  if (sealed.byteLength < IV_BYTES + TAG_BYTES) return undefined
  try {
    const plaintext = await globalThis.crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: bufferSource(sealed.subarray(0, IV_BYTES)), additionalData: bufferSource(aad), tagLength: TAG_BYTES * 8 },
      key,
      bufferSource(sealed.subarray(IV_BYTES))
    )
    return new Uint8Array(plaintext)
  } catch (err) {
    // WebCrypto reports a failed tag check as OperationError, and nothing more specific
    if ((err as Error)?.name === 'OperationError') return undefined
    throw err
  }
}
