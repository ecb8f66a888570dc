/**
 * The media part of the public API (re-exported by src/index.ts): what a room's `addStream`,
 * `removeStream` and `replaceTrack` take, the `stream` / `stream:end` events, and the per-member
 * media stats in `room.stats()`.
 */

export interface AddStreamOptions {
  /**
   * Any JSON value (a name, `{ kind: 'screen' }`), at most 4096 bytes as JSON; receivers get a
   * copy in their `stream` event. @default undefined
   */
  metadata?: unknown
  /**
   * Peer ID of the one joined member to send the stream to; required in a `'pairwise'` room.
   * Without it, every member receives it, members who join later too. @default undefined
   */
  to?: string
}

export interface RoomStreamDetail {
  /** The member sending it. */
  peerId: string
  /** Its tracks as they arrive; the same object until `stream:end`, whatever `replaceTrack` the sender does. */
  stream: MediaStream
  /** The sender's `metadata`, if it gave any. */
  metadata?: unknown
}

export interface RoomMediaEvents {
  /**
   * A member's stream arrived: its tracks are in `stream` (a `<video>`'s `srcObject`). In a
   * `'one-way'` room only the host's streams arrive; in a private room only members who proved
   * the secret can send one.
   *
   * @example room.addEventListener('stream', (e) => { tileOf(e.detail.peerId).srcObject = e.detail.stream })
   */
  stream: CustomEvent<RoomStreamDetail>
  /**
   * A stream ended: its sender removed it, left the room, or (in a `'one-way'` room) is no
   * longer the host. Its tracks are ended.
   *
   * @example room.addEventListener('stream:end', (e) => { removeTile(e.detail.peerId, e.detail.stream) })
   */
  'stream:end': CustomEvent<{ peerId: string, stream: MediaStream }>
}

/**
 * Media between us and one member, from its media RTCPeerConnection's stats (read every second;
 * bitrates are over the last second).
 */
export interface MediaPeerStats {
  /** RTP payload received from it, in bits per second. */
  bitrateIn: number
  /** RTP payload sent to it, in bits per second. */
  bitrateOut: number
  /** Packets lost on their way to us, since the connection started. */
  packetsLost: number
  /** Video frames we decoded from it, since the connection started. */
  framesDecoded: number
  /** Round-trip time of the selected ICE candidate pair, in ms. */
  rttMs?: number
  /** Local type of the selected ICE candidate pair: `'host'`, `'srflx'`, `'prflx'` or `'relay'` (TURN). */
  candidateType?: RTCIceCandidateType
  /** Streams we send it, and streams it sends us that we accepted. */
  streamsOut: number
  streamsIn: number
  /**
   * Its stream announcements we refused: a non-host's in a `'one-way'` room, or over 16 streams.
   * We do not receive them (the SDP says so), so they add nothing to `bitrateIn`.
   */
  refused: number
}

export interface RoomMedia {
  /**
   * Sends `stream`'s tracks to every joined member (and those who join later), or to `to` only,
   * over a media RTCPeerConnection per member, signalled over our direct connection to it. The
   * node's ICE servers and `iceTransportPolicy` apply. Adding the same stream again does nothing.
   * Tracks added to `stream` afterwards are not sent: use `replaceTrack`, or remove and add it.
   *
   * @throws NotHostError in a `'one-way'` room when we are not the host (a newcomer waits until it knows, as `publish`)
   * @throws SessionTypeError in a `'pairwise'` room without `to`
   * @throws PeerNotFoundError when `to` is not a joined member
   * @throws InvalidMediaError for a stream without tracks or `metadata` that is not JSON of at most 4096 bytes
   * @throws RoomClosedError after `leave()`
   */
  addStream(stream: MediaStream, options?: AddStreamOptions): Promise<void>
  /** Stops sending `stream`; its receivers get `stream:end`. Does nothing for a stream not sent. */
  removeStream(stream: MediaStream): Promise<void>
  /**
   * Sends `newTrack` instead of `oldTrack` (camera ↔ screen) to every member it went to, without
   * renegotiating: receivers keep their `MediaStream` and get no new `stream` event.
   *
   * @throws InvalidMediaError when `oldTrack` is not in a stream this room sends, or `newTrack` is of another kind
   * @throws RoomClosedError after `leave()`
   */
  replaceTrack(oldTrack: MediaStreamTrack, newTrack: MediaStreamTrack): Promise<void>
}
