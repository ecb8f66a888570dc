/**
 * Which private key (hence which peer ID) a room node uses: one per browser tab by default, one per
 * browser profile on request, a fresh one, or the caller's.
 *
 * Two live nodes must never share a peer ID: the relay keeps one reservation per peer ID and peers
 * key their connections by it, so the second node would silently take over the first's traffic.
 * Stored keys get copied, though: "Duplicate tab" and `window.open` copy sessionStorage, and every
 * tab of a profile sees the same IndexedDB. So a stored key is used only while this page holds a
 * Web Lock named after its peer ID; whoever cannot get the lock uses a fresh key instead.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyFromRaw, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { concat } from 'uint8arrays/concat'
import { fromString } from 'uint8arrays/from-string'
import {
  IDENTITY_KINDS, IDENTITY_LOCK_PREFIX, IDENTITY_LOCK_WAIT_MS, PERSISTENT_IDENTITY_DB, PERSISTENT_IDENTITY_KEY,
  PERSISTENT_IDENTITY_STORE, TAB_IDENTITY_STORAGE_KEY
} from './constants.js'
import { InvalidIdentityError } from './errors.js'
import type { IdentityKind, RoomNodeIdentity } from './index.js'
import type { PrivateKey } from '@libp2p/interface'

const KINDS: readonly IdentityKind[] = IDENTITY_KINDS

/** The browser APIs identities are kept with; each is absent in Node and in some browser contexts. */
export interface IdentityEnvironment {
  sessionStorage?: Storage
  indexedDB?: IDBFactory
  locks?: LockManager
}

export interface ResolvedIdentity {
  privateKey: PrivateKey
  identity: RoomNodeIdentity
  /** Lets another page use this key again (releases the Web Lock). Idempotent. */
  release: () => void
}

/**
 * Picks the node's key. A caller's `supplied` key wins over `kind`; a stored key held by another
 * page, or storage this environment lacks, falls back to a fresh per-tab key, then to an
 * ephemeral one. The result says which was used.
 *
 * @throws InvalidIdentityError when `kind` is not `'tab'`, `'persistent'` or `'ephemeral'`
 */
export async function resolveIdentity (kind: IdentityKind, supplied?: PrivateKey, env: IdentityEnvironment = browserEnvironment(), lockWaitMs = IDENTITY_LOCK_WAIT_MS): Promise<ResolvedIdentity> {
  if (!KINDS.includes(kind)) throw new InvalidIdentityError(`identity must be one of ${KINDS.map((k) => `'${k}'`).join(', ')}, not ${JSON.stringify(kind)}`)
  // the caller chose this key, and may mean to reuse it (e.g. one device, one identity)
  if (supplied !== undefined) return unlocked(supplied, 'supplied', false)
  if (kind === 'persistent') {
    const persistent = await persistentIdentity(env, lockWaitMs)
    if (persistent !== undefined) return persistent
  }
  if (kind !== 'ephemeral') {
    const tab = await tabIdentity(env, lockWaitMs)
    if (tab !== undefined) return tab
  }
  return unlocked(await generateIdentityKey(), 'ephemeral', false)
}

/**
 * A fresh Ed25519 key, made by the browser's Web Crypto (`crypto.subtle.generateKey`, native code)
 * where it supports Ed25519 (Chromium 137+, Firefox 129+, Safari 17+, Node 20), else by
 * `generateKeyPair('Ed25519')` of @libp2p/crypto. The latter runs @noble/curves in JavaScript: on
 * the first call of a page it builds its base-point tables, 60 ms on the critical path of every
 * new tab's first meeting here and 150 ms with six tabs starting together (a CPU profile of the
 * meeting bench), while the key is the same kind either way (RFC 8032: a 32-byte seed and its
 * public key). Signing and verifying already use Web Crypto where it has Ed25519
 * (@libp2p/crypto's `hashAndSign`), so a tab then never runs noble's Ed25519 at all.
 */
export async function generateIdentityKey (subtle: SubtleCrypto | undefined = globalThis.crypto?.subtle): Promise<PrivateKey> {
  if (subtle !== undefined) {
    try {
      const pair = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair
      const { d, x } = await subtle.exportKey('jwk', pair.privateKey)
      const seed = fromString(d ?? '', 'base64url')
      const publicKey = fromString(x ?? '', 'base64url')
      // @libp2p/crypto's raw Ed25519 private key: the seed, then its public key
      if (seed.length === 32 && publicKey.length === 32) return privateKeyFromRaw(concat([seed, publicKey], 64))
    } catch {
      // no Ed25519 in this Web Crypto (older browsers): noble below
    }
  }
  // no Web Crypto at all (insecure contexts), or no Ed25519 in it
  return generateKeyPair('Ed25519')
}

/** The peer ID's Web Lock name. */
export function identityLockName (peerId: string): string {
  return `${IDENTITY_LOCK_PREFIX}${peerId}`
}

/**
 * This tab's key from sessionStorage, or a fresh one stored there. A copied key whose lock another
 * tab holds is replaced, so the copy's later reloads keep the copy's own new key.
 */
async function tabIdentity (env: IdentityEnvironment, lockWaitMs: number): Promise<ResolvedIdentity | undefined> {
  const { sessionStorage: storage, locks } = env
  // without locks a copied key cannot be told from our own: a fresh key is the only safe one
  if (storage === undefined || locks === undefined) return undefined
  const stored = decodeKey(readStorage(storage))
  if (stored !== undefined) {
    const held = await locked(locks, stored, 'tab', true, lockWaitMs)
    if (held !== undefined) return held
  }
  const fresh = await generateIdentityKey()
  const held = lockFresh(locks, fresh, 'tab')
  if (!writeStorage(storage, encodeKey(fresh))) {
    // not kept for the next reload: say so
    held.identity.kind = 'ephemeral'
  }
  return held
}

/** The profile's key from IndexedDB (created on first use), unless another tab is using it. */
async function persistentIdentity (env: IdentityEnvironment, lockWaitMs: number): Promise<ResolvedIdentity | undefined> {
  const { indexedDB: idb, locks } = env
  if (idb === undefined || locks === undefined) return undefined
  const candidate = await generateIdentityKey()
  let kept: { key: PrivateKey, restored: boolean }
  try {
    kept = await loadOrStore(idb, candidate)
  } catch {
    // IndexedDB refused (storage disabled, quota, private mode): no persistent key to be had
    return undefined
  }
  return locked(locks, kept.key, 'persistent', kept.restored, lockWaitMs)
}

/**
 * Reads the stored key, or stores `candidate` if there is none, in one readwrite transaction:
 * IndexedDB runs those one at a time, so two tabs starting together agree on a single key.
 */
async function loadOrStore (idb: IDBFactory, candidate: PrivateKey): Promise<{ key: PrivateKey, restored: boolean }> {
  const db = await request(openDatabase(idb))
  try {
    const tx = db.transaction(PERSISTENT_IDENTITY_STORE, 'readwrite')
    const store = tx.objectStore(PERSISTENT_IDENTITY_STORE)
    const committed = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => { resolve() }
      tx.onabort = tx.onerror = () => { reject(tx.error ?? new Error('IndexedDB transaction aborted')) }
    })
    const existing = decodeKey(await request(store.get(PERSISTENT_IDENTITY_KEY)))
    if (existing === undefined) store.put(privateKeyToProtobuf(candidate), PERSISTENT_IDENTITY_KEY)
    await committed
    return existing !== undefined ? { key: existing, restored: true } : { key: candidate, restored: false }
  } finally {
    db.close()
  }
}

function openDatabase (idb: IDBFactory): IDBOpenDBRequest {
  const open = idb.open(PERSISTENT_IDENTITY_DB, 1)
  open.onupgradeneeded = () => { open.result.createObjectStore(PERSISTENT_IDENTITY_STORE) }
  return open
}

async function request<T> (req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new Error('IndexedDB request failed')) }
  })
}

/**
 * Takes the key's Web Lock, waiting at most `waitMs`: the page a reload replaces releases its lock
 * as it unloads, shortly after the new page may already ask for it.
 */
async function locked (locks: LockManager, key: PrivateKey, kind: RoomNodeIdentity['kind'], restored: boolean, waitMs: number): Promise<ResolvedIdentity | undefined> {
  const { peerId, granted, release } = requestLock(locks, key, waitMs > 0 ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true })
  if (!await granted) return undefined
  return { privateKey: key, identity: { kind, peerId, restored }, release }
}

/**
 * Holds the Web Lock of a key made this instant, without waiting for it to be granted. Nobody can
 * hold the lock of a key that did not exist, so the grant is certain, and waiting for it cost
 * every new tab 25-90 ms before it could reach its relay (the request is a round trip to the
 * browser process, which is busy while tabs start). The request is made before the key is written
 * to storage, so a tab that copies it later (a duplicated tab) asks after us and finds it taken.
 */
function lockFresh (locks: LockManager, key: PrivateKey, kind: RoomNodeIdentity['kind']): ResolvedIdentity {
  const { peerId, release } = requestLock(locks, key, { ifAvailable: true })
  return { privateKey: key, identity: { kind, peerId, restored: false }, release }
}

/** Asks for `key`'s Web Lock now, held until `release()`; `granted` says whether it was. */
function requestLock (locks: LockManager, key: PrivateKey, options: LockOptions): { peerId: string, granted: Promise<boolean>, release: () => void } {
  const peerId = peerIdFromPrivateKey(key).toString()
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const granted = new Promise<boolean>((resolve) => {
    locks.request(identityLockName(peerId), options, async (lock) => {
      resolve(lock !== null)
      if (lock !== null) await held
    }).catch(() => { resolve(false) })
  })
  return { peerId, granted, release }
}

function unlocked (key: PrivateKey, kind: RoomNodeIdentity['kind'], restored: boolean): ResolvedIdentity {
  return { privateKey: key, identity: { kind, peerId: peerIdFromPrivateKey(key).toString(), restored }, release: () => {} }
}

/** The globals, each guarded: sessionStorage throws in sandboxed frames and with storage blocked. */
function browserEnvironment (): IdentityEnvironment {
  const g = globalThis as { sessionStorage?: Storage, indexedDB?: IDBFactory, navigator?: Navigator }
  let sessionStorage: Storage | undefined
  try { sessionStorage = g.sessionStorage ?? undefined } catch {}
  let indexedDB: IDBFactory | undefined
  try { indexedDB = g.indexedDB ?? undefined } catch {}
  // Web Locks exist only in secure contexts (https, localhost)
  return { sessionStorage, indexedDB, locks: g.navigator?.locks ?? undefined }
}

function readStorage (storage: Storage): string | null {
  try { return storage.getItem(TAB_IDENTITY_STORAGE_KEY) } catch { return null }
}

function writeStorage (storage: Storage, value: string): boolean {
  try {
    storage.setItem(TAB_IDENTITY_STORAGE_KEY, value)
    return true
  } catch {
    return false
  }
}

/** The key's libp2p protobuf encoding, base64 for sessionStorage (strings only). */
function encodeKey (key: PrivateKey): string {
  return btoa(String.fromCharCode(...privateKeyToProtobuf(key)))
}

/** A stored key (base64 text or protobuf bytes); anything unreadable counts as none. */
function decodeKey (stored: unknown): PrivateKey | undefined {
  try {
    if (typeof stored === 'string') return privateKeyFromProtobuf(Uint8Array.from(atob(stored), (c) => c.charCodeAt(0)))
    if (stored instanceof Uint8Array) return privateKeyFromProtobuf(stored)
  } catch {}
  return undefined
}
