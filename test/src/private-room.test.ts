import { hkdfSync, pbkdf2Sync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { PRIVATE_ROOM_KDF_ITERATIONS } from '../../src/constants.js'
import { createRoomSecret, deriveRoomSecrets, open, seal, senderKey } from '../../src/private-room.js'

const SECRET = 'correct horse battery staple'
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (data: Uint8Array | undefined): string | undefined => data == null ? undefined : new TextDecoder().decode(data)
/** Iterations for the tests that are not about the cost: the derivation is the same, only cheaper. */
const FAST = 1_000
const derive = async (name: string, type: string, secret: string | Uint8Array): ReturnType<typeof deriveRoomSecrets> => deriveRoomSecrets(name, type, secret, FAST)
/** A sender session's key, as a room member derives it. */
async function keyOf (name: string, type: string, secret: string, sender = '12D3KooWAlice', incarnation = 1): Promise<CryptoKey> {
  return senderKey((await derive(name, type, secret)).master, sender, incarnation)
}

describe('private room secrets', () => {
  it('stretches the secret with PBKDF2-HMAC-SHA-256 at 600,000 iterations, salted with type and name, as node:crypto computes it', async () => {
    expect(PRIVATE_ROOM_KDF_ITERATIONS).toBeGreaterThanOrEqual(600_000)
    const { topicId, master } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const stretched = pbkdf2Sync(SECRET, 'p2p-rooms/3/private-room\0chat\0lobby', PRIVATE_ROOM_KDF_ITERATIONS, 32, 'sha256')
    expect(topicId).toBe(Buffer.from(hkdfSync('sha256', stretched, 'p2p-rooms/3', 'topic', 16)).toString('hex'))
    // pinned, so a change in the derivation (which splits rooms across versions) fails loudly
    expect(topicId).toBe(PINNED_TOPIC_ID)

    // sender keys are not extractable: show one equals HKDF's output by opening with an imported copy
    const raw = new Uint8Array(hkdfSync('sha256', stretched, 'p2p-rooms/3', 'sender\u000012D3KooWAlice\u00007', 32))
    const reference = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt'])
    const aad = bytes('header and sender')
    expect(text(await open(reference, await seal(await senderKey(master, '12D3KooWAlice', 7), bytes('hello'), aad), aad))).toBe('hello')
  })

  it('gives the same topic ID and sender keys to every member with the same name, type and secret', async () => {
    const alice = await derive('lobby', 'chat', SECRET)
    const bob = await derive('lobby', 'chat', bytes(SECRET))
    expect(bob.topicId).toBe(alice.topicId)
    expect(alice.topicId).toMatch(/^[0-9a-f]{32}$/)
    const aad = bytes('aad')
    const sealed = await seal(await senderKey(alice.master, 'alice', 3), bytes('hi bob'), aad)
    expect(text(await open(await senderKey(bob.master, 'alice', 3), sealed, aad))).toBe('hi bob')
  })

  it('keys every sender session apart: another sender or incarnation cannot open it', async () => {
    const { master } = await derive('lobby', 'chat', SECRET)
    const aad = bytes('aad')
    const sealed = await seal(await senderKey(master, 'alice', 3), bytes('x'), aad)
    expect(await open(await senderKey(master, 'alice', 4), sealed, aad)).toBeUndefined()
    expect(await open(await senderKey(master, 'bob', 3), sealed, aad)).toBeUndefined()
  })

  it('gives a different topic ID and keys when the secret, name or type differs', async () => {
    const base = await derive('lobby', 'chat', SECRET)
    const others = await Promise.all([
      derive('lobby', 'chat', `${SECRET}!`),
      derive('lobby2', 'chat', SECRET),
      derive('lobby', 'broadcast', SECRET),
      // the NUL separators keep these apart from 'lobby'/'chat'
      derive('chat\0lobby', '', SECRET)
    ])
    const aad = bytes('aad')
    const sealed = await seal(await senderKey(base.master, 'alice', 1), bytes('secret'), aad)
    for (const other of others) {
      expect(other.topicId).not.toBe(base.topicId)
      expect(await open(await senderKey(other.master, 'alice', 1), sealed, aad)).toBeUndefined()
    }
    expect(new Set(others.map(o => o.topicId)).size).toBe(others.length)
  })

  it('reveals neither the room name nor the secret in the topic ID', async () => {
    const name = 'abcdef'
    const { topicId } = await derive(name, 'chat', 'abc')
    expect(topicId).not.toContain(name)
    expect(topicId).not.toContain(Buffer.from(name).toString('hex'))
    expect(topicId).not.toContain(Buffer.from('abc').toString('hex'))
  })

  it('makes non-extractable keys: a master usable only to derive, AES-GCM-256 sender keys only to encrypt and decrypt', async () => {
    const { master } = await derive('lobby', 'chat', SECRET)
    expect(master.extractable).toBe(false)
    expect(master.algorithm.name).toBe('HKDF')
    const key = await senderKey(master, 'alice', 1)
    expect(key.extractable).toBe(false)
    expect(key.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 })
    expect([...key.usages].sort()).toEqual(['decrypt', 'encrypt'])
    await expect(crypto.subtle.exportKey('raw', key)).rejects.toThrow()
  })

  it('throws a TypeError for an empty secret or a session type with a NUL', async () => {
    await expect(derive('lobby', 'chat', '')).rejects.toThrow(TypeError)
    await expect(derive('lobby', 'chat', new Uint8Array())).rejects.toThrow(TypeError)
    await expect(derive('lobby', 'ch\0at', SECRET)).rejects.toThrow(TypeError)
  })
})

describe('createRoomSecret', () => {
  it('returns 128 random bits as 22 base64url characters, new every time', () => {
    const secrets = Array.from({ length: 200 }, () => createRoomSecret())
    for (const s of secrets) {
      expect(s).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(Buffer.from(s, 'base64url').byteLength).toBe(16)
    }
    expect(new Set(secrets).size).toBe(secrets.length)
  })
})

describe('private room sealing', () => {
  const aad = bytes('sender 12D3KooWAlice seq 7')

  it('round-trips, 28 bytes longer than the plaintext: 12 of IV, 16 of tag', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    expect(sealed.byteLength).toBe(5 + 28)
    expect(text(await open(key, sealed, aad))).toBe('hello')
    expect(await open(key, await seal(key, new Uint8Array(), aad), aad)).toEqual(new Uint8Array())
  })

  it('does not show the plaintext in the sealed bytes', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('attack at dawn'), aad)
    expect(Buffer.from(sealed).includes(Buffer.from('attack at dawn'))).toBe(false)
  })

  it('uses a fresh IV for every seal, so equal messages do not look equal', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const ivs = new Set<string>()
    for (let i = 0; i < 50; i++) {
      const sealed = await seal(key, bytes('same'), aad)
      ivs.add(Buffer.from(sealed.subarray(0, 12)).toString('hex'))
    }
    expect(ivs.size).toBe(50)
  })

  it('fails to open with the wrong key or the wrong aad', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const wrong = await keyOf('lobby', 'chat', 'guess')
    const sealed = await seal(key, bytes('hello'), aad)
    expect(await open(wrong, sealed, aad)).toBeUndefined()
    expect(await open(key, sealed, bytes('sender 12D3KooWAlice seq 8'))).toBeUndefined()
    expect(await open(key, sealed, new Uint8Array())).toBeUndefined()
  })

  it('fails to open after any single bit of IV, ciphertext or tag is flipped', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    for (let i = 0; i < sealed.byteLength; i++) {
      const tampered = sealed.slice()
      tampered[i] ^= 1 << (i % 8)
      expect(await open(key, tampered, aad)).toBeUndefined()
    }
  })

  it('fails to open truncated or too-short input', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    expect(await open(key, sealed.subarray(0, sealed.byteLength - 1), aad)).toBeUndefined()
    expect(await open(key, sealed.subarray(0, 28), aad)).toBeUndefined()
    expect(await open(key, sealed.subarray(0, 27), aad)).toBeUndefined()
    expect(await open(key, new Uint8Array(), aad)).toBeUndefined()
  })

  it('opens bytes that sit at an offset inside a larger buffer, as a decoded wire message does', async () => {
    const key = await keyOf('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    const frame = new Uint8Array(sealed.byteLength + 10)
    frame.set(sealed, 7)
    expect(text(await open(key, frame.subarray(7, 7 + sealed.byteLength), aad))).toBe('hello')
  })

  it('throws, rather than reporting a forgery, when given a key that cannot decrypt', async () => {
    const hmac = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
    await expect(open(hmac, new Uint8Array(40), aad)).rejects.toThrow()
  })
})

/** The topic ID of ('lobby', 'chat', SECRET) at 600,000 iterations. */
const PINNED_TOPIC_ID = '2672a5d8fc8a886f4ddf2d8b9f35178e'
