/**
 * The identity choice with stubbed browser storage and Web Locks (Node has neither). The real
 * sessionStorage, IndexedDB and locks are exercised in Chromium by test/browser/identity.test.ts.
 */
import { createPrivateKey, createPublicKey, verify } from 'node:crypto'
import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { IDENTITY_LOCK_PREFIX, TAB_IDENTITY_STORAGE_KEY } from '../../src/constants.js'
import { generateIdentityKey, resolveIdentity } from '../../src/identity.js'
import type { IdentityEnvironment } from '../../src/identity.js'
import type { IdentityKind } from '../../src/index.js'

/** sessionStorage of one tab: a `Storage` over a Map. */
function memoryStorage (): Storage {
  const items = new Map<string, string>()
  return {
    get length () { return items.size },
    clear: () => { items.clear() },
    getItem: (k: string) => items.get(k) ?? null,
    key: (i: number) => [...items.keys()][i] ?? null,
    removeItem: (k: string) => { items.delete(k) },
    setItem: (k: string, v: string) => { items.set(k, String(v)) }
  }
}

/** The part of the Web Locks API identities use: exclusive locks, `ifAvailable`, `signal`. */
function memoryLocks (): LockManager & { held: Set<string> } {
  const held = new Set<string>()
  const queues = new Map<string, Array<() => void>>()
  const grantNext = (name: string): void => {
    const next = queues.get(name)?.shift()
    if (next !== undefined) next()
  }
  async function request (name: string, options: LockOptions, cb: (lock: Lock | null) => Promise<unknown>): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      held.add(name)
      try {
        return await cb({ name, mode: 'exclusive' })
      } finally {
        held.delete(name)
        grantNext(name)
      }
    }
    if (!held.has(name)) return run()
    if (options.ifAvailable === true) return cb(null)
    return new Promise((resolve, reject) => {
      const grant = (): void => { options.signal?.removeEventListener('abort', abort); run().then(resolve, reject) }
      const abort = (): void => {
        queues.set(name, (queues.get(name) ?? []).filter((g) => g !== grant))
        reject(options.signal?.reason)
      }
      options.signal?.addEventListener('abort', abort, { once: true })
      queues.set(name, [...(queues.get(name) ?? []), grant])
    })
  }
  return { held, request, query: async () => ({ held: [], pending: [] }) } as unknown as LockManager & { held: Set<string> }
}

/** One browser: locks shared by every tab; each tab its own sessionStorage. */
function browser (): { locks: ReturnType<typeof memoryLocks>, tab: (storage?: Storage) => IdentityEnvironment } {
  const locks = memoryLocks()
  return { locks, tab: (storage = memoryStorage()) => ({ sessionStorage: storage, locks }) }
}

/** A copy of a tab's sessionStorage, as "Duplicate tab" and `window.open` make. */
function copyOf (storage: Storage): Storage {
  const copy = memoryStorage()
  for (let i = 0; i < storage.length; i++) {
    const k = storage.key(i) as string
    copy.setItem(k, storage.getItem(k) as string)
  }
  return copy
}

const WAIT_MS = 100

describe('identity', () => {
  it('uses a fresh key each time where there is no storage or no Web Locks, and says so', async () => {
    const storage = memoryStorage()
    for (const env of [{}, { sessionStorage: storage }]) {
      const a = await resolveIdentity('tab', undefined, env, WAIT_MS)
      const b = await resolveIdentity('persistent', undefined, env, WAIT_MS)
      expect(a.identity.kind).toBe('ephemeral')
      expect(b.identity.kind).toBe('ephemeral')
      expect(a.identity.peerId).not.toBe(b.identity.peerId)
    }
    expect(storage.length).toBe(0)
  })

  it('uses a supplied key whatever the identity option says', async () => {
    const key = await generateKeyPair('Ed25519')
    const { locks, tab } = browser()
    const got = await resolveIdentity('persistent', key, tab(), WAIT_MS)
    expect(got.privateKey).toBe(key)
    expect(got.identity).toEqual({ kind: 'supplied', peerId: peerIdFromPrivateKey(key).toString(), restored: false })
    expect(locks.held.size).toBe(0)
  })

  it('rejects an unknown identity option', async () => {
    await expect(resolveIdentity('session' as IdentityKind, undefined, {}, WAIT_MS)).rejects.toHaveProperty('name', 'InvalidIdentityError')
  })

  it('keeps a tab key in its sessionStorage and restores it once released', async () => {
    const { locks, tab } = browser()
    const env = tab()
    const first = await resolveIdentity('tab', undefined, env, WAIT_MS)
    expect(first.identity).toMatchObject({ kind: 'tab', restored: false })
    expect(env.sessionStorage?.getItem(TAB_IDENTITY_STORAGE_KEY)).toBeTypeOf('string')
    expect(locks.held).toEqual(new Set([`${IDENTITY_LOCK_PREFIX}${first.identity.peerId}`]))
    first.release()
    first.release()
    const again = await resolveIdentity('tab', undefined, env, WAIT_MS)
    expect(again.identity).toEqual({ kind: 'tab', peerId: first.identity.peerId, restored: true })
    again.release()
  })

  it('does not wait for the lock of a fresh tab key, but asks for it before storing the key', async () => {
    // the lock manager is the browser process, busy while tabs start: its grant took 25-90 ms
    const order: string[] = []
    const storage = memoryStorage()
    const setItem = storage.setItem
    storage.setItem = (k, v) => { order.push('store'); setItem(k, v) }
    const silent = { request: async () => { order.push('lock'); return await new Promise(() => {}) }, query: async () => ({}) } as unknown as LockManager
    const resolved = await resolveIdentity('tab', undefined, { sessionStorage: storage, locks: silent })
    expect(resolved.identity.kind).toBe('tab')
    expect(order).toEqual(['lock', 'store'])
    expect(storage.getItem(TAB_IDENTITY_STORAGE_KEY)).not.toBeNull()
  })

  it('takes a stored key released within the wait, as after a reload', async () => {
    const { tab } = browser()
    const env = tab()
    const old = await resolveIdentity('tab', undefined, env, WAIT_MS)
    // the reloaded page asks while the old one still holds the lock; the old one unloads meanwhile
    const reloaded = resolveIdentity('tab', undefined, env, 10_000)
    queueMicrotask(old.release)
    expect((await reloaded).identity).toEqual({ kind: 'tab', peerId: old.identity.peerId, restored: true })
  })

  it('gives a tab whose sessionStorage was copied from a live tab its own key, and keeps that one', async () => {
    const { tab } = browser()
    const openerStorage = memoryStorage()
    const opener = await resolveIdentity('tab', undefined, tab(openerStorage), WAIT_MS)
    const copy = copyOf(openerStorage)
    const started = Date.now()
    const duplicate = await resolveIdentity('tab', undefined, tab(copy), WAIT_MS)
    expect(Date.now() - started).toBeLessThan(WAIT_MS + 2_000)
    expect(duplicate.identity).toMatchObject({ kind: 'tab', restored: false })
    expect(duplicate.identity.peerId).not.toBe(opener.identity.peerId)
    expect(copy.getItem(TAB_IDENTITY_STORAGE_KEY)).not.toBe(openerStorage.getItem(TAB_IDENTITY_STORAGE_KEY))
    duplicate.release()
    const reloaded = await resolveIdentity('tab', undefined, tab(copy), WAIT_MS)
    expect(reloaded.identity).toEqual({ kind: 'tab', peerId: duplicate.identity.peerId, restored: true })
  })

  it('replaces an unreadable stored key', async () => {
    const { tab } = browser()
    const storage = memoryStorage()
    storage.setItem(TAB_IDENTITY_STORAGE_KEY, 'not a key')
    const got = await resolveIdentity('tab', undefined, tab(storage), WAIT_MS)
    expect(got.identity).toMatchObject({ kind: 'tab', restored: false })
    expect(storage.getItem(TAB_IDENTITY_STORAGE_KEY)).not.toBe('not a key')
  })

  it('falls back to a tab key when there is no IndexedDB for a persistent one', async () => {
    const { tab } = browser()
    const got = await resolveIdentity('persistent', undefined, tab(), WAIT_MS)
    expect(got.identity).toMatchObject({ kind: 'tab', restored: false })
  })

  it('neither stores nor locks an ephemeral key', async () => {
    const { locks, tab } = browser()
    const env = tab()
    const a = await resolveIdentity('ephemeral', undefined, env, WAIT_MS)
    const b = await resolveIdentity('ephemeral', undefined, env, WAIT_MS)
    expect(a.identity.kind).toBe('ephemeral')
    expect(a.identity.peerId).not.toBe(b.identity.peerId)
    expect(env.sessionStorage?.length).toBe(0)
    expect(locks.held.size).toBe(0)
  })
})

describe('identity key generation', () => {
  /** The public key of a 32-byte Ed25519 seed, by Node's own crypto (PKCS #8 DER of RFC 8410). */
  function publicKeyOfSeed (seed: Uint8Array): Uint8Array {
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed])
    const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' })
    return Buffer.from(jwk.x ?? '', 'base64url')
  }

  it('makes the key with Web Crypto where it has Ed25519: seed and public key agree, and it signs', async () => {
    let generated = 0
    const subtle = new Proxy(globalThis.crypto.subtle, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop)
        if (prop === 'generateKey') return async (...args: Parameters<SubtleCrypto['generateKey']>) => { generated++; return target.generateKey(...args) }
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    const key = await generateIdentityKey(subtle)
    expect(generated).toBe(1)
    expect(key.type).toBe('Ed25519')
    const raw = key.raw
    expect(raw.length).toBe(64)
    expect(Buffer.from(raw.subarray(32))).toEqual(Buffer.from(publicKeyOfSeed(raw.subarray(0, 32))))
    expect(Buffer.from(key.publicKey.raw)).toEqual(Buffer.from(raw.subarray(32)))
    const msg = new TextEncoder().encode('a noise handshake payload')
    const sig = await key.sign(msg)
    // checked by Node's crypto against the public key alone, and by @libp2p/crypto
    const spki = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw.subarray(32)).toString('base64url') }, format: 'jwk' })
    expect(verify(null, msg, spki, sig)).toBe(true)
    expect(await publicKeyFromRaw(raw.subarray(32)).verify(msg, sig)).toBe(true)
    expect(peerIdFromPrivateKey(key).toString()).toMatch(/^12D3KooW/)
  })

  it('falls back to @libp2p/crypto where Web Crypto has no Ed25519', async () => {
    const subtle = { generateKey: async () => { throw new DOMException('Algorithm: Unrecognized name', 'NotSupportedError') } } as unknown as SubtleCrypto
    const key = await generateIdentityKey(subtle)
    expect(key.type).toBe('Ed25519')
    expect(Buffer.from(key.raw.subarray(32))).toEqual(Buffer.from(publicKeyOfSeed(key.raw.subarray(0, 32))))
  })
})
