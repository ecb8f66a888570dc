/**
 * The public shapes of files in rooms: `room.sendFile`, `room.shareFile`, and the `file` and
 * `file:offer` events. Re-exported by src/index.ts.
 */
import type { TypedEventTarget } from 'main-event'

/** How far a transfer got. */
export interface FileProgress {
  /**
   * Receiving: bytes received and verified (kept chunks found on accepting count too). Sending:
   * bytes of the file handed to the transport at least once (a chunk sent again counts once).
   */
  bytes: number
  /** The file's size, in bytes. */
  total: number
  /** Rate over the last 2 s, in bytes per second. */
  bytesPerSecond: number
}

/**
 * - `'offered'`: waiting for the receiver to accept (sending), or for us to (receiving)
 * - `'sending'` / `'receiving'`: chunks are moving
 * - `'resuming'`: the direct connection dropped or the other side went away (a reload): waiting
 *   for it to come back, then continuing from the chunks already verified
 * - `'done'`: delivered and verified; `'failed'`, `'cancelled'`, `'rejected'`: ended without it
 */
export type FileTransferState = 'offered' | 'sending' | 'receiving' | 'resuming' | 'done' | 'failed' | 'cancelled' | 'rejected'

export interface FileTransferEvents {
  /**
   * More bytes were sent or verified.
   *
   * @example transfer.addEventListener('progress', (e) => { bar.value = e.detail.bytes / e.detail.total })
   */
  progress: CustomEvent<FileProgress>
  /**
   * The transfer's state changed.
   *
   * @example transfer.addEventListener('state', (e) => { label.textContent = e.detail.state })
   */
  state: CustomEvent<{ state: FileTransferState }>
}

export interface SendFileOptions {
  /** The name the receiver sees, at most 1024 UTF-8 bytes. @default the `File`'s name, else 'file' */
  name?: string
  /** The media type the receiver sees, at most 255 bytes. @default the blob's `type` */
  type?: string
}

/** A file we are sending to one member (`room.sendFile`). */
export interface FileTransfer extends TypedEventTarget<FileTransferEvents> {
  /** 32 hex digits naming this transfer on both sides (`IncomingFile.id`). */
  readonly id: string
  /** The receiver's peer ID. */
  readonly to: string
  readonly name: string
  readonly type: string
  /** In bytes. */
  readonly size: number
  readonly state: FileTransferState
  /** Bytes of the file sent at least once, in bytes. */
  readonly bytes: number
  /** Every chunk byte handed to the transport, chunks sent again included, in bytes. */
  readonly sentBytes: number
  /**
   * Resolves once the receiver verified the whole file against its SHA-256 (hex), which it
   * computed itself.
   *
   * @throws FileRejectedError the receiver rejected it
   * @throws FileTooLargeError it is over the receiver's `maxFileBytes` (`limit` says how much that is)
   * @throws TooManyFilesError the receiver holds `maxPendingFiles` offers already
   * @throws FileCancelledError `cancel()` on either side (`by`)
   * @throws FileIntegrityError the receiver's bytes did not hash to the file's SHA-256
   * @throws PeerNotFoundError the receiver left the room and did not come back within `fileResumeWindow`
   * @throws RoomClosedError the room was left
   */
  readonly done: Promise<{ sha256: string }>
  /** Stops the transfer on both sides; `done` rejects with `FileCancelledError`. Idempotent. */
  cancel(): void
}

/** What we are receiving, or may fetch. */
export interface FileDownload extends TypedEventTarget<FileTransferEvents> {
  readonly name: string
  readonly type: string
  /** In bytes. */
  readonly size: number
  /** SHA-256 of the whole file, hex, as its sender announced it: what the bytes are verified against. */
  readonly sha256: string
  readonly state: FileTransferState
  /** Bytes received and verified so far, kept chunks included. */
  readonly bytes: number
  /** Bytes found already verified and kept when the transfer started: what a resume saved. */
  readonly keptBytes: number
  /** Chunks that failed verification and were fetched again. */
  readonly badChunks: number
  /** Bytes received and verified from each member, by peer ID. */
  readonly bySource: Readonly<Record<string, number>>
  /** Stops receiving and removes the kept chunks; the sender's `done` rejects with `FileCancelledError`. Idempotent. */
  cancel(): void
}

/** A file a member sends us (the room's `file` event). */
export interface IncomingFile extends FileDownload {
  /** The transfer's ID (`FileTransfer.id` at the sender). */
  readonly id: string
  /** The sender's peer ID. */
  readonly from: string
  /**
   * Receives the file and resolves with it once every byte was verified: a `File` whose bytes
   * stay in storage (OPFS, else IndexedDB) rather than memory, kept while this page lives.
   * Continues from the chunks kept by an earlier attempt (a reload). Calling it again returns the
   * same promise.
   *
   * @throws FileIntegrityError the bytes did not hash to `sha256` (nothing is delivered)
   * @throws FileUnavailableError the sender left the room (kept chunks stay for a later resume)
   * @throws FileCancelledError `cancel()` here or at the sender (`by`)
   * @throws FileStorageError storage is full or unavailable
   * @throws RoomClosedError the room was left
   */
  accept(): Promise<File>
  /** Refuses the file: nothing is received; the sender's `done` rejects with `FileRejectedError`. */
  reject(): void
}

/** A file members share with the room (the room's `file:offer` event). */
export interface FileOffer extends FileDownload {
  /** The file's SHA-256, hex: the same file shared by several members is one offer. */
  readonly id: string
  /** The member whose offer arrived first. */
  readonly from: string
  /** Members that have the whole file now: the sources of `fetch()`. */
  holders(): string[]
  /**
   * Fetches the file from every holder at once, each asked for different chunks, verifies every
   * chunk and the whole, and resolves with the file (as `IncomingFile.accept`). A holder that
   * leaves hands its chunks to the others. Once delivered, we hold it too and serve it to others.
   * Calling it again returns the same promise.
   *
   * @throws FileUnavailableError every holder left (kept chunks stay for a later resume)
   * @throws FileIntegrityError, FileCancelledError, FileStorageError, RoomClosedError as `accept`
   */
  fetch(): Promise<File>
}

/** A file we share with the room (`room.shareFile`). */
export interface SharedFile {
  /** The file's SHA-256, hex (`FileOffer.id` at the others). */
  readonly id: string
  readonly name: string
  readonly type: string
  /** In bytes. */
  readonly size: number
  /** Chunk bytes served to members, in bytes. */
  readonly servedBytes: number
  /** Stops offering it: new fetches no longer get chunks from us. */
  stop(): void
}

export interface RoomFileEvents {
  /**
   * A member sends us a file; nothing is received until `accept()`.
   *
   * @example room.addEventListener('file', async (e) => { save(await e.detail.accept()) })
   */
  file: CustomEvent<IncomingFile>
  /**
   * A member shares a file with the room; fetch it from every member that has it.
   *
   * @example room.addEventListener('file:offer', async (e) => { save(await e.detail.fetch()) })
   */
  'file:offer': CustomEvent<FileOffer>
}

/** The file methods of a room. */
export interface RoomFiles {
  /**
   * Sends `file` to one joined member over a direct stream, in chunks it verifies one by one.
   * The file is read slice by slice (never whole), after one pass to hash it.
   *
   * @throws PeerNotFoundError when `peerId` is not a joined member
   * @throws RoomClosedError after `leave()`
   * @throws TypeError when `file` is not a `Blob`, or `name`/`type` is too long
   */
  sendFile(peerId: string, file: Blob, options?: SendFileOptions): FileTransfer
  /**
   * Offers `file` to every member, now and joining later: each gets a `file:offer` and may fetch
   * it from us and every other member that has it. Resolves once the file was hashed and offered.
   *
   * @throws RoomClosedError after `leave()`
   * @throws TypeError as `sendFile`
   */
  shareFile(file: Blob, options?: SendFileOptions): Promise<SharedFile>
}
