/**
 * Files in one room: what we send (`sendFile`), what members send us (`file` events), what we
 * share and what members share (`shareFile`, `file:offer`). Only joined members count: a request
 * from anyone else is refused, so a private room's files reach only members whose messages
 * authenticated. Membership and connection changes come from the room and the node's direct links.
 */
import { FILE_CHUNK_BYTES, MAX_FILE_NAME_BYTES, MAX_FILE_OFFERS, MAX_FILE_TYPE_BYTES } from '../constants.js'
import { PeerNotFoundError, RoomClosedError } from '../errors.js'
import { describeBlob } from './manifest.js'
import { FileOfferImpl, IncomingFileImpl, OFFER_ATTEMPTS, OutgoingTransfer, SharedFileImpl, offerRetryDelay } from './transfers.js'
import { ID_BYTES, OP_OFFER, STATUS_OK, STATUS_TOO_LARGE, STATUS_TOO_MANY, STATUS_UNKNOWN, toHex, validOfferNumbers } from './wire.js'
import type { FetchContext } from './fetcher.js'
import type { Manifest } from './manifest.js'
import type { Servable } from './server.js'
import type { TransferHost } from './transfers.js'
import type { FileTransfer, RoomFileEvents, SendFileOptions, SharedFile } from './types.js'
import type { FileOfferInfo, NoticeKind, StatusCode } from './wire.js'
import type { RoomPeer } from '../index.js'

/** What a room's files need of the room. */
export interface FileRoom {
  /** The room's key: the label of every file request. */
  readonly topics: { room: string }
  readonly name: string
  peers(): RoomPeer[]
  addEventListener(type: 'peer:join' | 'peer:leave', listener: (evt: CustomEvent<{ peerId: string }>) => void): void
  removeEventListener(type: 'peer:join' | 'peer:leave', listener: (evt: CustomEvent<{ peerId: string }>) => void): void
  safeDispatchEvent(type: keyof RoomFileEvents, init: { detail: RoomFileEvents[keyof RoomFileEvents]['detail'] }): boolean
}

/** What a room's files need of the node (service.ts). */
export interface FileNode {
  readonly maxFileBytes: number
  readonly maxPendingFiles: number
  readonly resumeWindow: number
  log: (fmt: string, ...args: unknown[]) => void
  fetchContext: (label: string, holders: () => string[]) => FetchContext
  isDirect: (peer: string) => boolean
  /** One request, one status frame back. */
  exchange: (peer: string, request: import('./wire.js').FileRequest, signal?: AbortSignal) => Promise<{ code: StatusCode, value: number }>
  /** Tells `peer` about a transfer, once it is reachable, for `resumeWindow`. */
  notice: (peer: string, label: string, id: Uint8Array, kind: NoticeKind, sha256?: Uint8Array) => void
  onClose: (session: RoomFileSession) => void
}

/** Offers we keep answers for after they ended (a sender offers again after we rejoin). */
const ENDED_KEPT = 256

export class RoomFileSession {
  private readonly room: FileRoom
  private readonly node: FileNode
  private readonly members = new Set<string>()
  private readonly outgoing = new Map<string, OutgoingTransfer>()
  private readonly incoming = new Map<string, IncomingFileImpl>()
  private readonly offers = new Map<string, FileOfferImpl>()
  private readonly shares = new Map<string, SharedFileImpl>()
  private readonly host: TransferHost
  private closed = false

  constructor (room: FileRoom, node: FileNode) {
    this.room = room
    this.node = node
    for (const p of room.peers()) if (p.path === 'direct') this.members.add(p.peerId)
    room.addEventListener('peer:join', this.onJoin)
    room.addEventListener('peer:leave', this.onLeave)
    this.host = {
      fetchContext: (holders) => node.fetchContext(this.label, holders),
      isMember: (peer) => this.members.has(peer),
      notice: (peer, id, kind, sha256) => { node.notice(peer, this.label, id, kind, sha256) },
      holds: (file, manifest) => { this.hold(file, manifest, file.name, file.type) },
      resumeWindow: node.resumeWindow,
      log: node.log
    }
  }

  get label (): string {
    return this.room.topics.room
  }

  isMember (peer: string): boolean {
    return this.members.has(peer)
  }

  // --- the room's API -------------------------------------------------------------------------

  sendFile (peerId: string, file: Blob, options: SendFileOptions = {}): FileTransfer {
    this.assertOpen()
    const { name, type } = describe(file, options)
    if (!this.members.has(peerId)) throw new PeerNotFoundError(`${peerId} is not a joined member of room "${this.room.name}"`)
    const id = crypto.getRandomValues(new Uint8Array(ID_BYTES))
    const transfer: OutgoingTransfer = new OutgoingTransfer({
      host: this.host,
      id,
      to: peerId,
      blob: file,
      name,
      type,
      describe: async (signal) => describeBlob(file, FILE_CHUNK_BYTES, signal),
      offer: async (info, signal) => this.node.exchange(peerId, { op: OP_OFFER, label: this.label, offer: info }, signal),
      isDirect: () => this.node.isDirect(peerId),
      onEnd: () => { this.outgoing.delete(transfer.id) }
    })
    this.outgoing.set(transfer.id, transfer)
    void transfer.start()
    return transfer
  }

  async shareFile (file: Blob, options: SendFileOptions = {}): Promise<SharedFile> {
    this.assertOpen()
    const { name, type } = describe(file, options)
    const manifest = await describeBlob(file, FILE_CHUNK_BYTES)
    this.assertOpen()
    return this.hold(file, manifest, name, type)
  }

  /** Serves `file` to the room and offers it to every member. */
  private hold (file: Blob, manifest: Manifest, name: string, type: string): SharedFileImpl {
    const id = toHex(manifest.sha256)
    const existing = this.shares.get(id)
    if (existing !== undefined && !existing.stopped) return existing
    const share: SharedFileImpl = new SharedFileImpl(file, manifest, name, type, () => {
      if (this.shares.get(id) === share) this.shares.delete(id)
    })
    this.shares.set(id, share)
    for (const peer of this.members) void this.offerShare(peer, share)
    return share
  }

  /**
   * Offers a shared file to `peer`. A member that does not count us as joined yet (its `peer:join`
   * for us may come after ours for it) answers "unknown": asked again, a few times, over seconds.
   */
  private async offerShare (peer: string, share: SharedFileImpl): Promise<void> {
    const offer = share.info(crypto.getRandomValues(new Uint8Array(ID_BYTES)))
    for (let attempt = 0; attempt < OFFER_ATTEMPTS; attempt++) {
      if (share.stopped || this.closed || !this.members.has(peer) || !this.node.isDirect(peer)) return
      try {
        const { code } = await this.node.exchange(peer, { op: OP_OFFER, label: this.label, offer })
        if (code !== STATUS_UNKNOWN) return
      } catch (err) {
        this.node.log('offering shared file %s to %s failed - %e', share.id, peer, err)
        return
      }
      await new Promise((resolve) => setTimeout(resolve, offerRetryDelay(attempt)))
    }
  }

  // --- requests from members (service.ts routes them here) ------------------------------------

  /** A member offers us a file: `send` becomes a `file` event, `share` a `file:offer` (or a new holder). */
  onOffer (from: string, info: FileOfferInfo): { code: StatusCode, value: number } {
    if (this.closed || !this.members.has(from)) return { code: STATUS_UNKNOWN, value: 0 }
    if (info.size > this.node.maxFileBytes || !validOfferNumbers(info.size, info.chunkSize)) {
      this.node.log('refusing %s from %s: %d bytes is over our limit of %d', info.name, from, info.size, this.node.maxFileBytes)
      return { code: STATUS_TOO_LARGE, value: this.node.maxFileBytes }
    }
    if (info.kind === 'send') return this.onSendOffer(from, info)
    const id = toHex(info.sha256)
    if (this.shares.has(id)) return { code: STATUS_OK, value: 0 }
    const known = this.offers.get(id)
    if (known !== undefined) {
      if (known.sameFile(info)) known.addHolder(from)
      return { code: STATUS_OK, value: 0 }
    }
    if (this.offers.size >= MAX_FILE_OFFERS) {
      const oldest = [...this.offers.values()].find((o) => o.state === 'offered')
      if (oldest === undefined) return { code: STATUS_TOO_MANY, value: 0 }
      this.offers.delete(oldest.id)
    }
    const offer = new FileOfferImpl(this.host, from, info)
    this.offers.set(id, offer)
    this.room.safeDispatchEvent('file:offer', { detail: offer })
    return { code: STATUS_OK, value: 0 }
  }

  private onSendOffer (from: string, info: FileOfferInfo): { code: StatusCode, value: number } {
    const id = toHex(info.id)
    const known = this.incoming.get(id)
    if (known !== undefined) {
      if (known.from !== from) return { code: STATUS_UNKNOWN, value: 0 }
      known.reoffered()
      return { code: STATUS_OK, value: 0 }
    }
    const pending = [...this.incoming.values()].filter((f) => f.pending).length
    if (pending >= this.node.maxPendingFiles) return { code: STATUS_TOO_MANY, value: this.node.maxPendingFiles }
    const incoming = new IncomingFileImpl(this.host, from, info, () => { this.trimEnded() })
    this.incoming.set(id, incoming)
    this.room.safeDispatchEvent('file', { detail: incoming })
    return { code: STATUS_OK, value: 0 }
  }

  /** A member tells us how a transfer ended on its side. */
  onNotice (from: string, id: Uint8Array, kind: NoticeKind, sha256: Uint8Array): StatusCode {
    const hex = toHex(id)
    const out = this.outgoing.get(hex)
    if (out !== undefined && out.to === from) {
      out.onNotice(kind, sha256)
      return STATUS_OK
    }
    const inc = this.incoming.get(hex)
    if (inc !== undefined && inc.from === from) {
      inc.remoteCancel()
      return STATUS_OK
    }
    return STATUS_UNKNOWN
  }

  /** What `from` may fetch of file `sha256`: a transfer to it, or a file we share. */
  servableFor (from: string, sha256: Uint8Array): Servable | undefined {
    if (this.closed || !this.members.has(from)) return undefined
    const id = toHex(sha256)
    for (const t of this.outgoing.values()) {
      if (t.to === from && t.manifest !== undefined && toHex(t.manifest.sha256) === id) return t.servable()
    }
    return this.shares.get(id)?.servable()
  }

  /** Outgoing transfers, by ID (fault injection in tests reaches them here). */
  transfers (): Map<string, OutgoingTransfer> {
    return this.outgoing
  }

  // --- membership and connections ----------------------------------------------------------

  private readonly onJoin = (evt: CustomEvent<{ peerId: string }>): void => {
    const peer = evt.detail.peerId
    this.members.add(peer)
    for (const t of this.outgoing.values()) if (t.to === peer) t.onJoin()
    for (const share of this.shares.values()) void this.offerShare(peer, share)
    this.sourcesChanged()
  }

  private readonly onLeave = (evt: CustomEvent<{ peerId: string }>): void => {
    const peer = evt.detail.peerId
    this.members.delete(peer)
    for (const t of this.outgoing.values()) if (t.to === peer) t.onLeave()
    for (const o of this.offers.values()) o.removeHolder(peer)
    this.sourcesChanged()
  }

  /** A direct connection opened (healed) or dropped (service.ts forwards the node's events). */
  onDirect (peer: string): void {
    if (!this.members.has(peer)) return
    for (const t of this.outgoing.values()) if (t.to === peer) t.onDirect()
    this.sourcesChanged()
  }

  onDrop (peer: string): void {
    for (const t of this.outgoing.values()) if (t.to === peer) t.onDrop()
    this.sourcesChanged()
  }

  private sourcesChanged (): void {
    for (const f of this.incoming.values()) f.sourcesChanged()
    for (const o of this.offers.values()) o.sourcesChanged()
  }

  /** Forgets ended incoming files beyond the last `ENDED_KEPT`. */
  private trimEnded (): void {
    const ended = [...this.incoming.values()].filter((f) => f.ended)
    for (const f of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT))) this.incoming.delete(f.id)
  }

  /** The room was left: every transfer ends with `RoomClosedError`. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.room.removeEventListener('peer:join', this.onJoin)
    this.room.removeEventListener('peer:leave', this.onLeave)
    const reason = new RoomClosedError(`room "${this.room.name}" was left`)
    for (const t of [...this.outgoing.values()]) t.stop(reason)
    for (const f of this.incoming.values()) f.stop(reason)
    for (const o of this.offers.values()) o.stop(reason)
    for (const s of this.shares.values()) s.stop()
    this.members.clear()
    this.node.onClose(this)
  }

  private assertOpen (): void {
    if (this.closed) throw new RoomClosedError(`room "${this.room.name}" was left`)
  }
}

/** The name and type a file is offered under, checked against the wire's bounds. */
function describe (file: Blob, options: SendFileOptions): { name: string, type: string } {
  if (!(file instanceof Blob)) throw new TypeError('a file must be a Blob or a File')
  const name = options.name ?? (file as File).name ?? 'file'
  const type = options.type ?? file.type
  const encoder = new TextEncoder()
  if (typeof name !== 'string' || encoder.encode(name).byteLength > MAX_FILE_NAME_BYTES) throw new TypeError(`a file name is a string of at most ${MAX_FILE_NAME_BYTES} UTF-8 bytes`)
  if (typeof type !== 'string' || encoder.encode(type).byteLength > MAX_FILE_TYPE_BYTES) throw new TypeError(`a media type is a string of at most ${MAX_FILE_TYPE_BYTES} bytes`)
  return { name, type }
}
