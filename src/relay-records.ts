/**
 * Relay records: how the relays of a federation, and the browser nodes using them, learn relays,
 * and the one check both apply before they dial or reserve on anything a record names.
 *
 * Every relay publishes its record on `RELAYS_TOPIC` (gossipsub, signed by the relay's key like
 * every gossipsub message). Its wire format extends libp2p pubsub peer discovery's `Peer` message
 * (so fields 1 and 2 read the same):
 *
 * ```protobuf
 * message RelayRecord {
 *   bytes publicKey = 1;          // the relay's public key (libp2p protobuf encoding)
 *   repeated bytes addrs = 2;     // its WebSockets multiaddrs (binary), at most MAX_RECORD_ADDRS
 *   bytes federationKey = 3;      // optional: the federation's Ed25519 public key (protobuf)
 *   bytes federationProof = 4;    // with it: that key's signature of FEDERATION_PROOF_PREFIX + the relay's peer ID (multihash bytes)
 * }
 * ```
 *
 * **Trust.** A record is *valid* when it decodes within its bounds and describes the peer that
 * signed the message carrying it (nobody publishes addresses in another relay's name). It is
 * *trusted* when its relay is one the verifier was configured with (a relay's `--peer`s, a
 * browser node's `relays`), or when it carries a valid proof from a federation key the verifier
 * trusts: its own (a relay's `--federation-key`), or one declared, with a valid proof, in the
 * record of a configured relay. So a relay federates, and a browser node dials and reserves, only
 * on relays its operator or app named, and on those that a named relay's federation vouches for.
 * Anyone else claiming the relay protocol (a client, a room member over WebRTC) is not a relay.
 */
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Largest record accepted, in bytes (a key, a proof and a handful of multiaddrs). */
export const MAX_RECORD_BYTES = 4096

/** Most multiaddrs one record may list; a record with more is invalid. */
export const MAX_RECORD_ADDRS = 16

/** Largest multiaddr in a record, in bytes. */
export const MAX_RECORD_ADDR_BYTES = 256

/** Federation keys a verifier learns from its configured relays' records at most. */
export const MAX_FEDERATION_KEYS = 16

/** Relays proven by a trusted federation that a verifier remembers at most. */
export const MAX_PROVEN_RELAYS = 256

/** What a federation key signs, followed by the relay's peer ID (multihash bytes). */
export const FEDERATION_PROOF_PREFIX = 'p2p-rooms relay federation v1\n'

/** A decoded record, before any check. */
export interface RelayRecord {
  publicKey: Uint8Array
  addrs: Uint8Array[]
  federationKey?: Uint8Array
  federationProof?: Uint8Array
}

/** A record that passed `verifyRelayRecord`. */
export interface VerifiedRelayRecord {
  /** The relay's peer ID. */
  peerId: string
  /** Its WebSockets multiaddrs (no circuit addresses), each ending in `/p2p/<peerId>`. */
  multiaddrs: Multiaddr[]
  /** The federation it proved membership of (the key's `toString()`), if any. */
  federation?: string
  /** Why it is trusted: configured, or proven by a trusted federation key. */
  trustedBy?: 'configured' | 'federation'
}

/** Why a record was not accepted. */
export type RecordRejection =
  | 'oversized' // more than MAX_RECORD_BYTES
  | 'malformed' // not a RelayRecord within its bounds, a bad key or multiaddr
  | 'not-signer' // it describes another peer than the one that signed the message
  | 'bad-proof' // a federation proof that does not verify
  | 'untrusted' // valid, but neither configured nor proven by a trusted federation

export type RecordVerdict =
  | { ok: true, record: VerifiedRelayRecord }
  | { ok: false, reason: RecordRejection, record?: VerifiedRelayRecord }

export interface RelayTrustInit {
  /** Peer IDs of the configured relays (`--peer`, `relays`). */
  peers?: Iterable<string>
  /** Federation keys trusted from the start (a relay's own). */
  federationKeys?: Iterable<PublicKey>
}

/**
 * What a verifier trusts: its configured relays and federation keys, and the keys its configured
 * relays' records declare (at most `MAX_FEDERATION_KEYS`). One per relay and per browser node.
 */
export class RelayTrust {
  private readonly peers: Set<string>
  private readonly keys = new Map<string, PublicKey>()
  /** relays whose records proved them, by peer ID */
  private readonly proven = new Set<string>()

  constructor (init: RelayTrustInit = {}) {
    this.peers = new Set(init.peers ?? [])
    for (const key of init.federationKeys ?? []) this.keys.set(key.toString(), key)
  }

  /** Whether `peerId` is a configured relay or one a trusted federation proved (a record seen). */
  trusts (peerId: string): boolean {
    return this.peers.has(peerId) || this.proven.has(peerId)
  }

  /** Whether `peerId` was configured. */
  isConfigured (peerId: string): boolean {
    return this.peers.has(peerId)
  }

  /** The federation keys trusted now, by `toString()`. */
  federations (): string[] {
    return [...this.keys.keys()]
  }

  /**
   * Verifies a record that arrived in a message signed by `signer` (gossipsub's `msg.key`),
   * learning the federation key a configured relay declares. Never throws.
   */
  async verify (data: Uint8Array, signer: PublicKey | undefined): Promise<RecordVerdict> {
    const verdict = await verifyRelayRecord(data, signer, this.keys)
    if (verdict.record === undefined) return verdict
    const record = verdict.record
    if (this.peers.has(record.peerId)) {
      // a configured relay vouches for its federation (the key it proved membership of): that
      // key becomes trusted, and with it every relay proving it
      if (record.federation !== undefined && !this.keys.has(record.federation) && this.keys.size < MAX_FEDERATION_KEYS) {
        const decoded = decodeRelayRecord(data)
        if (decoded?.federationKey !== undefined) this.keys.set(record.federation, publicKeyFromProtobuf(decoded.federationKey))
      }
      record.trustedBy = 'configured'
      return { ok: true, record }
    }
    if (verdict.ok && (this.proven.size < MAX_PROVEN_RELAYS || this.proven.has(record.peerId))) this.proven.add(record.peerId)
    return verdict
  }
}

/**
 * The one check of a relay record, used alike by relays (federation) and browser nodes
 * (relays.ts): bounds, the signer, the federation proof against `federationKeys`. Never throws;
 * a record trusted only by configuration comes back `untrusted` for `RelayTrust` to decide.
 */
export async function verifyRelayRecord (data: Uint8Array, signer: PublicKey | undefined, federationKeys: ReadonlyMap<string, PublicKey>): Promise<RecordVerdict> {
  if (!(data instanceof Uint8Array)) return { ok: false, reason: 'malformed' }
  if (data.byteLength > MAX_RECORD_BYTES) return { ok: false, reason: 'oversized' }
  const decoded = decodeRelayRecord(data)
  if (decoded === undefined) return { ok: false, reason: 'malformed' }
  let key: PublicKey
  let peerId: string
  try {
    key = publicKeyFromProtobuf(decoded.publicKey)
    peerId = peerIdFromPublicKey(key).toString()
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (signer === undefined || !key.equals(signer)) return { ok: false, reason: 'not-signer' }
  const multiaddrs: Multiaddr[] = []
  for (const bytes of decoded.addrs) {
    const ma = relayMultiaddr(bytes, peerId)
    if (ma === null) return { ok: false, reason: 'malformed' }
    if (ma !== undefined) multiaddrs.push(ma)
  }
  const record: VerifiedRelayRecord = { peerId, multiaddrs }
  if (decoded.federationKey === undefined) return { ok: false, reason: 'untrusted', record }
  const federation = await provenFederationKey(decoded, peerId)
  if (federation === undefined) return { ok: false, reason: 'bad-proof', record }
  record.federation = federation.toString()
  if (!federationKeys.has(federation.toString())) return { ok: false, reason: 'untrusted', record }
  record.trustedBy = 'federation'
  return { ok: true, record }
}

/** The record's federation key when its proof for `peerId` verifies; undefined otherwise. */
async function provenFederationKey (decoded: RelayRecord, peerId: string): Promise<PublicKey | undefined> {
  if (decoded.federationKey === undefined || decoded.federationProof === undefined) return undefined
  try {
    const key = publicKeyFromProtobuf(decoded.federationKey)
    if (key.type !== 'Ed25519') return undefined
    const ok = await key.verify(proofMessage(peerId), decoded.federationProof)
    return ok ? key : undefined
  } catch {
    return undefined
  }
}

/**
 * A record's multiaddr as a relay is dialed: WebSockets only (a browser reaches nothing else, a
 * circuit address would be a relay behind a relay), ending in `/p2p/<peerId>`. Undefined for an
 * address that is fine but not dialable so (skipped), null for one that is not a multiaddr or
 * names another peer (the record is invalid).
 */
function relayMultiaddr (bytes: Uint8Array, peerId: string): Multiaddr | undefined | null {
  let ma: Multiaddr
  try {
    ma = multiaddr(bytes)
    ma.toString()
  } catch {
    return null
  }
  const named = ma.getComponents().filter((c) => c.name === 'p2p').map((c) => c.value)
  if (named.some((id) => id !== peerId)) return null
  return relayDialAddr(ma, peerId)
}

/**
 * `ma` as a relay is dialed, ending in `/p2p/<peerId>`, or undefined when it is no WebSockets
 * address or goes through a circuit: a browser reaches nothing else, and a circuit address would
 * be a relay behind a relay. Records (`relayMultiaddr`) and a browser node's relay set
 * (relays.ts) both keep only these.
 */
export function relayDialAddr (ma: Multiaddr, peerId: string): Multiaddr | undefined {
  const components = ma.getComponents()
  if (components.some((c) => c.name === 'p2p-circuit')) return undefined
  if (!components.some((c) => c.name === 'ws' || c.name === 'wss')) return undefined
  return withPeerId(ma, peerId)
}

/** `ma` ending in `/p2p/<peerId>`: as it is when it names a peer already. */
export function withPeerId (ma: Multiaddr, peerId: string): Multiaddr {
  return ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${peerId}`)
}

/** The peer ID a multiaddr ends in (its last `/p2p/` component), if any. */
export function peerIdOf (ma: Multiaddr): string | undefined {
  return ma.getComponents().filter((c) => c.name === 'p2p').pop()?.value
}

function proofMessage (peerId: string): Uint8Array {
  const prefix = new TextEncoder().encode(FEDERATION_PROOF_PREFIX)
  const id = peerIdFromString(peerId).toMultihash().bytes
  const out = new Uint8Array(prefix.byteLength + id.byteLength)
  out.set(prefix)
  out.set(id, prefix.byteLength)
  return out
}

/**
 * A federation key's proof that `peerId` belongs to its federation: what a relay started with
 * `--federation-key` puts in its record.
 */
export async function federationProof (federationKey: PrivateKey, peerId: string): Promise<Uint8Array> {
  return federationKey.sign(proofMessage(peerId))
}

/** Encodes a record (the relay's own). */
export function encodeRelayRecord (record: RelayRecord): Uint8Array {
  const parts: number[] = []
  const field = (tag: number, value: Uint8Array): void => {
    parts.push((tag << 3) | 2, ...varint(value.byteLength), ...value)
  }
  field(1, record.publicKey)
  for (const addr of record.addrs) field(2, addr)
  if (record.federationKey !== undefined) field(3, record.federationKey)
  if (record.federationProof !== undefined) field(4, record.federationProof)
  return Uint8Array.from(parts)
}

/** The record of `key` with `addrs` and, when given, its federation key and proof. */
export function relayRecordOf (key: PublicKey, addrs: Multiaddr[], federation?: { key: PublicKey, proof: Uint8Array }): RelayRecord {
  return {
    publicKey: publicKeyToProtobuf(key),
    addrs: addrs.slice(0, MAX_RECORD_ADDRS).map((ma) => ma.bytes),
    federationKey: federation === undefined ? undefined : publicKeyToProtobuf(federation.key),
    federationProof: federation?.proof
  }
}

function varint (n: number): number[] {
  const out: number[] = []
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80)
  out.push(n)
  return out
}

/**
 * Decodes a record, or undefined when `data` is not one within the bounds above (unknown fields
 * are skipped, as protobuf wants; a repeated singular field is invalid). Never throws, allocates
 * only subarrays of `data`.
 */
export function decodeRelayRecord (data: Uint8Array): RelayRecord | undefined {
  if (data.byteLength > MAX_RECORD_BYTES) return undefined
  let offset = 0
  const readVarint = (): number | undefined => {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (offset >= data.byteLength) return undefined
      const b = data[offset++]
      value += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return value
    }
    return undefined
  }
  let publicKey: Uint8Array | undefined
  let federationKey: Uint8Array | undefined
  let federationProof: Uint8Array | undefined
  const addrs: Uint8Array[] = []
  while (offset < data.byteLength) {
    const key = readVarint()
    if (key === undefined) return undefined
    const tag = Math.floor(key / 8)
    const wire = key & 7
    if (wire === 0) {
      if (readVarint() === undefined) return undefined
      continue
    }
    if (wire === 1 || wire === 5) {
      offset += wire === 1 ? 8 : 4
      if (offset > data.byteLength) return undefined
      continue
    }
    if (wire !== 2) return undefined
    const length = readVarint()
    if (length === undefined || length > data.byteLength - offset) return undefined
    const value = data.subarray(offset, offset + length)
    offset += length
    if (tag === 1) {
      if (publicKey !== undefined) return undefined
      publicKey = value
    } else if (tag === 2) {
      if (addrs.length >= MAX_RECORD_ADDRS || value.byteLength > MAX_RECORD_ADDR_BYTES) return undefined
      addrs.push(value)
    } else if (tag === 3) {
      if (federationKey !== undefined) return undefined
      federationKey = value
    } else if (tag === 4) {
      if (federationProof !== undefined) return undefined
      federationProof = value
    }
  }
  if (publicKey === undefined || publicKey.byteLength === 0) return undefined
  return { publicKey, addrs, federationKey, federationProof }
}
