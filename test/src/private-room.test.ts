import { hkdfSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { deriveRoomSecrets, open, seal } from '../../src/private-room.js'

const SECRET = 'correct horse battery staple'
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (data: Uint8Array | undefined): string | undefined => data == null ? undefined : new TextDecoder().decode(data)

describe('private room secrets', () => {
  it('derives the topic ID and key that RFC 5869 HKDF-SHA-256 gives, as cross-checked by node:crypto', async () => {
    const { topicId, key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const topic = Buffer.from(hkdfSync('sha256', SECRET, 'p2p-rooms/1', 'topic\0chat\0lobby', 16)).toString('hex')
    expect(topicId).toBe(topic)
    // pinned, so a change in the derivation (which splits rooms across versions) fails loudly
    expect(topicId).toBe('b408d343df214ad058ecaa4667f823b4')

    // the key is not extractable: show it equals HKDF's output by opening with an imported copy
    const raw = new Uint8Array(hkdfSync('sha256', SECRET, 'p2p-rooms/1', 'key\0chat\0lobby', 32))
    const reference = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt'])
    const aad = bytes('from 12D3KooW… seq 1')
    expect(text(await open(reference, await seal(key, bytes('hello'), aad), aad))).toBe('hello')
  })

  it('gives the same topic ID and a working key to every member with the same name, type and secret', async () => {
    const alice = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const bob = await deriveRoomSecrets('lobby', 'chat', bytes(SECRET))
    expect(bob.topicId).toBe(alice.topicId)
    expect(alice.topicId).toMatch(/^[0-9a-f]{32}$/)
    const aad = bytes('aad')
    expect(text(await open(bob.key, await seal(alice.key, bytes('hi bob'), aad), aad))).toBe('hi bob')
  })

  it('gives a different topic ID and key when the secret, name or type differs', async () => {
    const base = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const others = await Promise.all([
      deriveRoomSecrets('lobby', 'chat', `${SECRET}!`),
      deriveRoomSecrets('lobby2', 'chat', SECRET),
      deriveRoomSecrets('lobby', 'broadcast', SECRET),
      // the NUL separators keep these apart from 'lobby'/'chat'
      deriveRoomSecrets('chat\0lobby', '', SECRET)
    ])
    const aad = bytes('aad')
    const sealed = await seal(base.key, bytes('secret'), aad)
    for (const other of others) {
      expect(other.topicId).not.toBe(base.topicId)
      expect(await open(other.key, sealed, aad)).toBeUndefined()
    }
    expect(new Set(others.map(o => o.topicId)).size).toBe(others.length)
  })

  it('reveals neither the room name nor the secret in the topic ID', async () => {
    const name = 'abcdef'
    const { topicId } = await deriveRoomSecrets(name, 'chat', 'abc')
    expect(topicId).not.toContain(name)
    expect(topicId).not.toContain(Buffer.from(name).toString('hex'))
    expect(topicId).not.toContain(Buffer.from('abc').toString('hex'))
  })

  it('makes a non-extractable AES-GCM-256 key usable only to encrypt and decrypt', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    expect(key.extractable).toBe(false)
    expect(key.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 })
    expect([...key.usages].sort()).toEqual(['decrypt', 'encrypt'])
    await expect(crypto.subtle.exportKey('raw', key)).rejects.toThrow()
  })

  it('throws a TypeError for an empty secret or a session type with a NUL', async () => {
    await expect(deriveRoomSecrets('lobby', 'chat', '')).rejects.toThrow(TypeError)
    await expect(deriveRoomSecrets('lobby', 'chat', new Uint8Array())).rejects.toThrow(TypeError)
    await expect(deriveRoomSecrets('lobby', 'ch\0at', SECRET)).rejects.toThrow(TypeError)
  })
})

describe('private room sealing', () => {
  const aad = bytes('sender 12D3KooWAlice seq 7')

  it('round-trips, 28 bytes longer than the plaintext: 12 of IV, 16 of tag', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    expect(sealed.byteLength).toBe(5 + 28)
    expect(text(await open(key, sealed, aad))).toBe('hello')
    expect(await open(key, await seal(key, new Uint8Array(), aad), aad)).toEqual(new Uint8Array())
  })

  it('does not show the plaintext in the sealed bytes', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('attack at dawn'), aad)
    expect(Buffer.from(sealed).includes(Buffer.from('attack at dawn'))).toBe(false)
  })

  it('uses a fresh IV for every seal, so equal messages do not look equal', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const ivs = new Set<string>()
    for (let i = 0; i < 50; i++) {
      const sealed = await seal(key, bytes('same'), aad)
      ivs.add(Buffer.from(sealed.subarray(0, 12)).toString('hex'))
    }
    expect(ivs.size).toBe(50)
  })

  it('fails to open with the wrong key or the wrong aad', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const wrong = await deriveRoomSecrets('lobby', 'chat', 'guess')
    const sealed = await seal(key, bytes('hello'), aad)
    expect(await open(wrong.key, sealed, aad)).toBeUndefined()
    expect(await open(key, sealed, bytes('sender 12D3KooWAlice seq 8'))).toBeUndefined()
    expect(await open(key, sealed, new Uint8Array())).toBeUndefined()
  })

  it('fails to open after any single bit of IV, ciphertext or tag is flipped', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    for (let i = 0; i < sealed.byteLength; i++) {
      const tampered = sealed.slice()
      tampered[i] ^= 1 << (i % 8)
      expect(await open(key, tampered, aad)).toBeUndefined()
    }
  })

  it('fails to open truncated or too-short input', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
    const sealed = await seal(key, bytes('hello'), aad)
    expect(await open(key, sealed.subarray(0, sealed.byteLength - 1), aad)).toBeUndefined()
    expect(await open(key, sealed.subarray(0, 28), aad)).toBeUndefined()
    expect(await open(key, sealed.subarray(0, 27), aad)).toBeUndefined()
    expect(await open(key, new Uint8Array(), aad)).toBeUndefined()
  })

  it('opens bytes that sit at an offset inside a larger buffer, as a decoded wire message does', async () => {
    const { key } = await deriveRoomSecrets('lobby', 'chat', SECRET)
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
