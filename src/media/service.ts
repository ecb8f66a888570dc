/**
 * The node's media service: registers `MEDIA_PROTOCOL` once for every room, over direct
 * connections only (src/streams.ts refuses a relay's circuit and anything not our WebRTC
 * connection), decodes each signalling frame (wire.ts) and routes it to the room its label names.
 * A frame that does not decode is dropped and logged; it never reaches a room, nor ends the stream.
 */
import { MAX_MEDIA_FRAME_BYTES, MEDIA_PROTOCOL } from '../constants.js'
import { decodeLabelled, encodeLabelled } from '../wire.js'
import { RoomMediaSession } from './room-media.js'
import { decodeSignal, encodeSignal } from './wire.js'
import type { MediaRoom } from './room-media.js'
import type { ComponentLogger, Logger, Startable } from '@libp2p/interface'

/** What the media service needs of the node: narrow, so tests can stub it. */
export interface MediaServiceComponents {
  logger: ComponentLogger
  /** Registers `onFrame` for every frame of `MEDIA_PROTOCOL` on direct connections; resolves with its undo. */
  serve: (protocol: string, onFrame: (from: string, frame: Uint8Array) => void, opts: { maxFrameBytes: number }) => Promise<() => Promise<void>>
  /** Sends one frame to `peer` on its `MEDIA_PROTOCOL` stream over our direct connection. */
  send: (peer: string, frame: Uint8Array) => Promise<void>
}

export interface MediaServiceInit {
  /** The node's ICE servers, those fetched from `iceServersUrl` included. */
  iceServers: RTCIceServer[]
  iceTransportPolicy?: RTCIceTransportPolicy
}

export class MediaService implements Startable {
  private readonly components: MediaServiceComponents
  private readonly config: RTCConfiguration
  private readonly log: Logger
  private readonly rooms = new Map<string, RoomMediaSession>()
  private unserve?: () => Promise<void>
  private started = false
  /** signalling frames dropped because they did not decode */
  malformed = 0

  constructor (components: MediaServiceComponents, init: MediaServiceInit) {
    this.components = components
    this.config = { iceServers: init.iceServers, ...(init.iceTransportPolicy !== undefined ? { iceTransportPolicy: init.iceTransportPolicy } : {}) }
    this.log = components.logger.forComponent('p2p-rooms:media')
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.unserve = await this.components.serve(MEDIA_PROTOCOL, this.onFrame, { maxFrameBytes: MAX_MEDIA_FRAME_BYTES })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    for (const session of [...this.rooms.values()]) session.close()
    await this.unserve?.().catch(() => {})
  }

  /** The media of `room`, until `close()`. */
  attach (room: MediaRoom): RoomMediaSession {
    const session = new RoomMediaSession(room, {
      config: this.config,
      send: async (peer, label, msg) => { await this.components.send(peer, encodeLabelled(label, encodeSignal(msg))) },
      log: (fmt, ...args) => { this.log(fmt, ...args) },
      onClose: (s) => { if (this.rooms.get(s.label) === s) this.rooms.delete(s.label) }
    })
    this.rooms.set(session.label, session)
    return session
  }

  private readonly onFrame = (from: string, frame: Uint8Array): void => {
    const labelled = decodeLabelled(frame)
    const session = labelled === undefined ? undefined : this.rooms.get(labelled.label)
    if (labelled === undefined || session === undefined) {
      this.log('dropping a media frame from %s for no room of ours', from)
      return
    }
    let msg
    try {
      msg = decodeSignal(labelled.rest)
    } catch (err) {
      this.malformed++
      this.log('dropping a malformed media frame from %s - %e', from, err)
      return
    }
    session.onSignal(from, msg)
  }
}
