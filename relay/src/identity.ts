/**
 * The relay's identity: its private key, kept in a file so that its peer ID, and with it every
 * multiaddr handed to browsers, stays the same across restarts. The file holds the key as
 * libp2p's protobuf encoding (`privateKeyToProtobuf`), is created on first start with mode 0600,
 * and is refused when group or others may read it, or when it is not a key. The federation key
 * (`--federation-key`) is kept the same way.
 *
 * A running relay holds an exclusive lock on its identity file (proper-lockfile: a `<file>.lock`
 * directory whose mtime it refreshes every second): two relays on one key would be one peer ID
 * to the whole network. A relay killed with SIGKILL cannot remove its lock; the lock counts as
 * stale 5 s after its last refresh, and a relay started on that file waits that long for it
 * rather than refusing.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import lockfile from 'proper-lockfile'
import { IDENTITY_LOCK_RETRY_MS, IDENTITY_LOCK_STALE_MS, IDENTITY_LOCK_UPDATE_MS } from './constants.js'
import { IdentityInUseError, InsecureIdentityFileError, InvalidIdentityFileError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/**
 * Takes the exclusive lock on the identity file at `path` (which must exist), waiting up to
 * `IDENTITY_LOCK_STALE_MS` (plus a refresh) for a lock left by a dead relay to go stale. Resolves
 * with the function that releases it; `onCompromised` is called if the lock is lost while held
 * (its directory removed, or not refreshed in time).
 *
 * @throws IdentityInUseError when another live relay holds it
 */
export async function lockIdentity (path: string, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  try {
    return await lockfile.lock(path, {
      stale: IDENTITY_LOCK_STALE_MS,
      update: IDENTITY_LOCK_UPDATE_MS,
      retries: { retries: Math.ceil((IDENTITY_LOCK_STALE_MS + 2 * IDENTITY_LOCK_UPDATE_MS) / IDENTITY_LOCK_RETRY_MS), factor: 1, minTimeout: IDENTITY_LOCK_RETRY_MS, maxTimeout: IDENTITY_LOCK_RETRY_MS },
      onCompromised
    })
  } catch (err: any) {
    if (err?.code === 'ELOCKED') {
      throw new IdentityInUseError(`the identity file ${path} is in use by another running relay (it holds ${path}.lock); give this relay its own key with --identity <file>`)
    }
    throw new InvalidIdentityFileError(`cannot lock the identity file ${path}: ${err?.message ?? err}`)
  }
}

export interface Identity {
  privateKey: PrivateKey
  /** The file the key was read from or written to. */
  path: string
  /** True when this call generated the key and wrote the file. */
  created: boolean
}

/**
 * Reads the key in `path`, or generates an Ed25519 key and writes it there when there is no file;
 * `what` names the file in errors (`identity`, `federation key`).
 */
export async function loadOrCreateIdentity (path: string, what = 'identity'): Promise<Identity> {
  const existing = await readIdentity(path, what)
  if (existing !== undefined) return { privateKey: existing, path, created: false }
  const privateKey = await generateKeyPair('Ed25519')
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    // 'wx': two relays started at once on one file must not each write their own key
    await writeFile(path, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  } catch (err: any) {
    if (err?.code === 'EEXIST') return loadOrCreateIdentity(path, what)
    throw new InvalidIdentityFileError(`cannot write the ${what} file ${path}: ${err?.message ?? err}`)
  }
  return { privateKey, path, created: true }
}

async function readIdentity (path: string, what: string): Promise<PrivateKey | undefined> {
  let info
  try {
    info = await stat(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT') return undefined
    throw new InvalidIdentityFileError(`cannot read the ${what} file ${path}: ${err?.message ?? err}`)
  }
  if (!info.isFile()) throw new InvalidIdentityFileError(`the ${what} file ${path} is not a regular file`)
  // Windows has no such mode bits
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    throw new InsecureIdentityFileError(`the ${what} file ${path} is accessible by group or others (mode ${mode}); it holds a private key: run chmod 600 ${path}`)
  }
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err: any) {
    throw new InvalidIdentityFileError(`the ${what} file ${path} is not a libp2p private key (protobuf, as privateKeyToProtobuf writes it): ${err?.message ?? err}`)
  }
}
