/**
 * One named error per condition. Callers test `err.name`, never the message.
 */

/** Why a relay could not be reached, for `RelayDialError`. */
export interface RelayDialFailure {
  /**
   * - `'bad-address'`: not a multiaddr, or no `/p2p/<relay peer ID>` at its end
   * - `'unreachable'`: no WebSocket could be opened (nothing listens there, or no route; browsers do not tell which)
   * - `'wrong-peer'`: a relay answered, with another peer ID than the address names
   * - `'refused'`: the relay closed the connection (a limit, or shutting down)
   * - `'timeout'`: no answer within `reservationTimeout`
   */
  reason: 'bad-address' | 'unreachable' | 'wrong-peer' | 'refused' | 'timeout'
  /** What happened, in plain words. */
  message: string
  /** The relay multiaddr it concerns. */
  multiaddr: string
}

/** No configured relay could be reached: `reason` says why (the most telling one when several failed). */
export class RelayDialError extends Error {
  static name = 'RelayDialError'
  name = 'RelayDialError'
  readonly reason: RelayDialFailure['reason']
  /** Each relay's failure. */
  readonly failures: RelayDialFailure[]
  constructor (reason: RelayDialFailure['reason'], message: string, options: { cause?: unknown, failures?: RelayDialFailure[] } = {}) {
    super(message, { cause: options.cause })
    this.reason = reason
    this.failures = options.failures ?? []
  }
}

/** `createRoomNode` was called without a single relay multiaddr. */
export class NoRelaysError extends Error {
  static name = 'NoRelaysError'
  name = 'NoRelaysError'
}

/** A room name is empty, too long, or not a string. */
export class InvalidRoomNameError extends Error {
  static name = 'InvalidRoomNameError'
  name = 'InvalidRoomNameError'
}

/** `publish` was given more than `maxMessageBytes`. */
export class MessageTooLargeError extends Error {
  static name = 'MessageTooLargeError'
  name = 'MessageTooLargeError'
}

/** The room was left, or its node stopped, before the call. */
export class RoomClosedError extends Error {
  static name = 'RoomClosedError'
  name = 'RoomClosedError'
}

/** `publish` or `send` exceeded the room's rate limit (a token bucket of `messagesPerSecond` and `burst`); retry later. */
export class RateLimitedError extends Error {
  static name = 'RateLimitedError'
  name = 'RateLimitedError'
  /** How long until a message would be accepted, in ms. */
  retryAfterMs: number
  constructor (message: string, retryAfterMs: number) {
    super(message)
    this.retryAfterMs = retryAfterMs
  }
}

/** Only the room's host may do this: `publish` in a `'one-way'` room, or `handOffHost`. */
export class NotHostError extends Error {
  static name = 'NotHostError'
  name = 'NotHostError'
}

/** The call does not fit the room's session type: `publish` in a `'pairwise'` room, `send` in any other. */
export class SessionTypeError extends Error {
  static name = 'SessionTypeError'
  name = 'SessionTypeError'
}

/** The peer named is not a member of the room, or is not reachable over a direct connection yet. */
export class PeerNotFoundError extends Error {
  static name = 'PeerNotFoundError'
  name = 'PeerNotFoundError'
}

/** `joinRoom` options are invalid: an unknown session type, an empty secret, a non-positive limit. */
export class InvalidRoomOptionsError extends Error {
  static name = 'InvalidRoomOptionsError'
  name = 'InvalidRoomOptionsError'
}

/** `iceServersUrl` did not answer `{ iceServers: RTCIceServer[] }`: unreachable, an HTTP error, or another body. */
export class IceServersFetchError extends Error {
  static name = 'IceServersFetchError'
  name = 'IceServersFetchError'
}

/** The `identity` option is not `'tab'`, `'persistent'` or `'ephemeral'`. */
export class InvalidIdentityError extends Error {
  static name = 'InvalidIdentityError'
  name = 'InvalidIdentityError'
}

// --- files (src/files/) --------------------------------------------------------------------------

/** The receiver refused a file larger than its `maxFileBytes` (`limit`, in bytes); nothing was sent. */
export class FileTooLargeError extends Error {
  static name = 'FileTooLargeError'
  name = 'FileTooLargeError'
  /** The receiver's limit, in bytes. */
  readonly limit: number
  constructor (message: string, limit: number) {
    super(message)
    this.limit = limit
  }
}

/** The receiver holds as many offers as it accepts (`maxPendingFiles`) and refused another one. */
export class TooManyFilesError extends Error {
  static name = 'TooManyFilesError'
  name = 'TooManyFilesError'
}

/** The receiver rejected the file (`incoming.reject()`). */
export class FileRejectedError extends Error {
  static name = 'FileRejectedError'
  name = 'FileRejectedError'
}

/** The transfer was cancelled, by this side (`by: 'local'`) or the other (`'remote'`). */
export class FileCancelledError extends Error {
  static name = 'FileCancelledError'
  name = 'FileCancelledError'
  readonly by: 'local' | 'remote'
  constructor (message: string, by: 'local' | 'remote') {
    super(message)
    this.by = by
  }
}

/**
 * The bytes received do not hash to the file's SHA-256, or its manifest does not match its offer:
 * the file is never delivered and its kept chunks are removed.
 */
export class FileIntegrityError extends Error {
  static name = 'FileIntegrityError'
  name = 'FileIntegrityError'
}

/** No member that has the file is left in the room to fetch it from; kept chunks stay for a later resume. */
export class FileUnavailableError extends Error {
  static name = 'FileUnavailableError'
  name = 'FileUnavailableError'
}

/** Kept chunks could not be written or read (storage full or blocked); `cause` has the storage's error. */
export class FileStorageError extends Error {
  static name = 'FileStorageError'
  name = 'FileStorageError'
}

/**
 * A media call was given something it cannot use: not a `MediaStream`, a stream without tracks,
 * `metadata` that is not JSON or over 4096 bytes, a `replaceTrack` whose old track this room does
 * not send or whose new track is of another kind, or a browser without `RTCPeerConnection`.
 */
export class InvalidMediaError extends Error {
  static name = 'InvalidMediaError'
  name = 'InvalidMediaError'
}

/**
 * Why a connection was closed by this node or relay: it went without one of its two gossipsub
 * streams (pubsub-streams.ts). Seen only as the reason of a `connection:close`; a tab dials its
 * relay again at once.
 */
export class PubSubStreamLostError extends Error {
  static name = 'PubSubStreamLostError'
  name = 'PubSubStreamLostError'
}
