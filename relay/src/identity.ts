/**
 * The relay's identity: its private key, kept in a file so that its peer ID, and with it every
 * multiaddr handed to browsers, stays the same across restarts. The file holds the key as
 * libp2p's protobuf encoding (`privateKeyToProtobuf`), is created on first start with mode 0600,
 * and is refused when group or others may read it, or when it is not a key.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { InsecureIdentityFileError, InvalidIdentityFileError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

export interface Identity {
  privateKey: PrivateKey
  /** The file the key was read from or written to. */
  path: string
  /** True when this call generated the key and wrote the file. */
  created: boolean
}

/** Reads the key in `path`, or generates an Ed25519 key and writes it there when there is no file. */
export async function loadOrCreateIdentity (path: string): Promise<Identity> {
  const existing = await readIdentity(path)
  if (existing !== undefined) return { privateKey: existing, path, created: false }
  const privateKey = await generateKeyPair('Ed25519')
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    // 'wx': two relays started at once on one file must not each write their own key
    await writeFile(path, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  } catch (err: any) {
    if (err?.code === 'EEXIST') return loadOrCreateIdentity(path)
    throw new InvalidIdentityFileError(`cannot write the identity file ${path}: ${err?.message ?? err}`)
  }
  return { privateKey, path, created: true }
}

async function readIdentity (path: string): Promise<PrivateKey | undefined> {
  let info
  try {
    info = await stat(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT') return undefined
    throw new InvalidIdentityFileError(`cannot read the identity file ${path}: ${err?.message ?? err}`)
  }
  if (!info.isFile()) throw new InvalidIdentityFileError(`the identity file ${path} is not a regular file`)
  // Windows has no such mode bits
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    throw new InsecureIdentityFileError(`the identity file ${path} is accessible by group or others (mode ${mode}); it holds the relay's private key: run chmod 600 ${path}`)
  }
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err: any) {
    throw new InvalidIdentityFileError(`the identity file ${path} is not a libp2p private key (protobuf, as privateKeyToProtobuf writes it): ${err?.message ?? err}`)
  }
}
