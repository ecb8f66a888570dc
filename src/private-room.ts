/**
 * Keys of a private room: members share a secret out of band; everything else comes from it.
 *
 * From the secret, HKDF-SHA-256 (RFC 5869) derives two independent values: a topic ID that
 * replaces the room name on the wire (so the relay and strangers learn neither name nor
 * secret), and an AES-GCM-256 key (NIST SP 800-38D) that seals every message. Only WebCrypto
 * (`globalThis.crypto.subtle`), present in browsers and Node 20, so no crypto code of our own.
 */

/** HKDF salt (RFC 5869 §3.1): fixed per protocol version, so keys of a future version differ. */
const SALT = new TextEncoder().encode('p2p-rooms/1')

/** Bits of the topic ID: enough that two rooms never share a topic by chance. */
const TOPIC_ID_BITS = 128

/** AES-GCM IV, in bytes: 96 bits is the length GCM is designed for (SP 800-38D §8.2). */
const IV_BYTES = 12

/** AES-GCM authentication tag, in bytes: the full 128 bits. */
const TAG_BYTES = 16

export interface RoomSecrets {
  /** 32 lowercase hex chars replacing the room name in topics: reveals neither name nor secret. */
  topicId: string
  /** AES-GCM-256 key for `seal` and `open`; not extractable. */
  key: CryptoKey
}

/**
 * WebCrypto takes only views of an `ArrayBuffer`, not of a `SharedArrayBuffer`; copy in the
 * rare case the caller's bytes live in one.
 */
function bufferSource (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes)
}

function hkdfParams (purpose: 'topic' | 'key', type: string, name: string): HkdfParams {
  // `type` holds no NUL, so the first NUL after it ends it and `name` may contain anything
  return { name: 'HKDF', hash: 'SHA-256', salt: SALT, info: new TextEncoder().encode(`${purpose}\0${type}\0${name}`) }
}

function toHex (bytes: Uint8Array): string {
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/**
 * Derives a private room's topic ID and key from its shared secret (the HKDF input keying
 * material; a string is UTF-8 encoded), with HKDF-SHA-256, salt `p2p-rooms/1`, and info
 * `topic\0<type>\0<name>` or `key\0<type>\0<name>`: the room name and session type are bound
 * in, so one secret reused for two rooms gives unrelated topics and keys.
 * Throws `TypeError` if `secret` is empty or `type` contains a NUL character.
 */
export async function deriveRoomSecrets (name: string, type: string, secret: string | Uint8Array): Promise<RoomSecrets> {
  const ikm = typeof secret === 'string' ? new TextEncoder().encode(secret) : bufferSource(secret)
  if (ikm.byteLength === 0) throw new TypeError('a private room needs a non-empty secret')
  if (type.includes('\0')) throw new TypeError('a session type must not contain a NUL character')

  const master = await globalThis.crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits', 'deriveKey'])
  const [topicBits, key] = await Promise.all([
    globalThis.crypto.subtle.deriveBits(hkdfParams('topic', type, name), master, TOPIC_ID_BITS),
    globalThis.crypto.subtle.deriveKey(hkdfParams('key', type, name), master, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
  ])
  return { topicId: toHex(new Uint8Array(topicBits)), key }
}

/**
 * Encrypts and authenticates `plaintext` with AES-GCM: returns random 96-bit IV || ciphertext ||
 * 128-bit tag (28 bytes longer than `plaintext`). `aad` (e.g. sender and seq) is authenticated,
 * not encrypted, and must be given again to `open`.
 * Random IVs are safe for up to 2^32 seals per key (SP 800-38D §8.3), far beyond a room's life.
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
