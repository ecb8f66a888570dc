/**
 * The backlog: as a late joiner, the room's recent messages fetched from one member and delivered,
 * deduplicated and in order, before any live message that arrived meanwhile; as a member, the
 * newest of our mailbox served to a joiner that asks, within its quota.
 */
import { FRAME_OVERHEAD_BYTES, HISTORY_TIMEOUT_MS, MAX_HELD_BYTES_PER_ROOM, MAX_HELD_PER_ROOM } from '../constants.js'
import { RoomClosedError } from '../errors.js'
import { decodeHistoryRequest, encodeHistoryRequest, encodeLabelled } from '../wire.js'
import { historySizeOf, isPairwise } from './session-rules.js'
import type { SessionType } from '../index.js'
import type { Delivery, HistoryRefusal, RoomMessages } from '../room-messages.js'
import type { Release } from '../sequence.js'
import type { Logger, Startable } from '@libp2p/interface'

/** What the backlog needs of its room. */
export interface BacklogComponents {
  /** Our peer ID. */
  self: string
  /** The room's name, for logs. */
  room: string
  /** The room's key: the label of its frames and backlog requests. */
  topic: string
  type: SessionType
  /** Messages the room keeps and asks for. */
  historySize: number
  /** Largest message of the room, in bytes: bounds each backlog frame we take. */
  maxMessageBytes: number
  log: Logger
  messages: Pick<RoomMessages, 'order' | 'openBacklog' | 'admitHistoryRequest' | 'backlog' | 'history'>
  /** Asks `peer` for the backlog over a direct connection (the node's `HISTORY_PROTOCOL`). */
  requestHistory: (peer: string, request: Uint8Array, limits: { maxFrames: number, maxFrameBytes: number }, signal: AbortSignal) => Promise<Uint8Array[]>
  /** Hands ordered messages to the application (delivery.ts). */
  deliver: (r: Release<Delivery>) => void
  /** Whether `peer` is a member we know of: only members are served. */
  isMember: (peer: string) => boolean
}

type State = 'idle' | 'fetching' | 'done'

export class Backlog implements Startable {
  private readonly components: BacklogComponents
  private state: State = 'idle'
  private readonly abort = new AbortController()
  /** aborts a fetch we gave up waiting for */
  private fetch?: AbortController
  /** live data that arrived while the backlog was being fetched, delivered after it */
  private readonly held: Array<{ delivery: Delivery, pair: boolean }> = []
  private heldBytes = 0
  /** members whose latest frame said they hold no backlog, while we have not asked anyone yet */
  private readonly holdsNone = new Set<string>()
  private stopped = false

  constructor (components: BacklogComponents) {
    this.components = components
  }

  /** Nothing to start: a fetch begins when the first member joins or sends data. */
  start (): void {}

  /** Aborts a fetch under way and drops what it held. Idempotent. */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.held.length = 0
    this.heldBytes = 0
    this.holdsNone.clear()
    this.abort.abort(new RoomClosedError(`room "${this.components.room}" was left`))
  }

  /**
   * What a member's latest frame said of its backlog (`FLAG_NO_BACKLOG`), kept until we know
   * whom we fetch from: a member that holds none is not asked.
   */
  heard (peer: string, noBacklog: boolean): void {
    if (this.state !== 'idle' || isPairwise(this.components.type)) return
    if (noBacklog) this.holdsNone.add(peer)
    else this.holdsNone.delete(peer)
  }

  /** Live data: delivered now once the backlog is in (or in a pairwise room), else held until it is. */
  receive (delivery: Delivery, pair: boolean): void {
    if (!pair && this.state === 'idle') void this.fetchFrom(delivery.from)
    if (!pair && this.state !== 'done') {
      this.held.push({ delivery, pair })
      this.heldBytes += delivery.raw.byteLength + delivery.data.byteLength
      // a backlog is worth a short wait, not unbounded memory: past the room's bound, live
      // messages go out now and a backlog that comes later is dropped
      if (this.held.length > MAX_HELD_PER_ROOM || this.heldBytes > MAX_HELD_BYTES_PER_ROOM) this.giveUp()
      return
    }
    this.components.deliver(this.components.messages.order(delivery, pair))
  }

  /** A member joined: the first one we can reach directly is asked for the backlog. */
  memberJoined (peer: string): void {
    if (this.state === 'idle' && !isPairwise(this.components.type)) void this.fetchFrom(peer)
  }

  /**
   * Asks `peer` for the room's recent messages and delivers them, deduplicated and in order,
   * before any live message received meanwhile.
   */
  private async fetchFrom (peer: string): Promise<void> {
    const { type, historySize: size, maxMessageBytes, topic, self, room, log, messages } = this.components
    if (this.state !== 'idle' || isPairwise(type)) return
    const historySize = historySizeOf(type, size)
    // nothing to fetch: we keep no backlog, or the member said it holds none (its hello, or the
    // live message that made us ask), so what it holds comes to us live from now on
    const holdsNone = this.holdsNone.has(peer)
    this.holdsNone.clear()
    if (historySize <= 0 || holdsNone) {
      if (holdsNone) log('%s holds no backlog of %s: nothing to fetch', peer, room)
      this.state = 'done'
      this.releaseHeld()
      return
    }
    this.state = 'fetching'
    const fetch = this.fetch = new AbortController()
    const signal = AbortSignal.any([this.abort.signal, fetch.signal])
    // our own timer rather than AbortSignal.timeout: it is ours to clear, and fake timers drive it in tests
    const timeout = setTimeout(() => { fetch.abort(new DOMException(`no backlog within ${HISTORY_TIMEOUT_MS} ms`, 'TimeoutError')) }, HISTORY_TIMEOUT_MS)
    let frames: Uint8Array[] = []
    try {
      // what we take is bounded by our own room's limits, whatever the member serving it holds
      const limits = { maxFrames: historySize, maxFrameBytes: maxMessageBytes + FRAME_OVERHEAD_BYTES }
      frames = await this.components.requestHistory(peer, encodeHistoryRequest(topic, historySize), limits, signal)
    } catch (err) {
      if (this.stopped || this.state !== 'fetching') return
      log('no backlog from %s in %s - %e', peer, room, err)
    } finally {
      clearTimeout(timeout)
    }
    if (this.stopped || this.state !== 'fetching') return
    const backlog = await messages.openBacklog(self, frames)
    if (this.stopped || this.state !== 'fetching') return
    this.state = 'done'
    this.components.deliver({ deliver: backlog.map((item) => ({ from: item.from, seq: item.seq, item })), gaps: [] })
    // live messages are ordered as if there had been no backlog: only exact copies of a backlog
    // message are dropped, so a forged backlog cannot hold back anything a member sends
    this.releaseHeld()
    if (backlog.length > 0) log('delivered a backlog of %d messages from %s in %s', backlog.length, peer, room)
  }

  private giveUp (): void {
    if (this.state === 'done') return
    this.components.log('stopped waiting for a backlog in %s: %d live messages held', this.components.room, this.held.length)
    this.state = 'done'
    this.fetch?.abort()
    this.releaseHeld()
  }

  private releaseHeld (): void {
    this.heldBytes = 0
    const { deliver, messages } = this.components
    for (const { delivery, pair } of this.held.splice(0)) deliver(messages.order(delivery, pair))
  }

  /**
   * The backlog a member asked us for: the newest of our mailbox, as many as it takes, each
   * message labelled with its sender. A request that does not parse, from a non-member, or over
   * `historyRequestsPerMinute` is refused with an empty backlog and counted.
   */
  serve (from: string, request: Uint8Array): Uint8Array[] {
    const { messages, log, room, type, isMember } = this.components
    const req = decodeHistoryRequest(request)
    let refusal: HistoryRefusal | undefined
    if (req === undefined) refusal = 'malformed'
    // a member we know of: its request came over our direct connection (streams.ts), and it may
    // ask before it has heard us, so before we count it as joined
    else if (this.stopped || isPairwise(type) || !isMember(from)) refusal = 'notMember'
    else if (!messages.admitHistoryRequest(from)) refusal = 'rateLimited'
    if (refusal !== undefined || req === undefined) {
      messages.history.refused[refusal ?? 'malformed']++
      log('refused a backlog request from %s in %s (%s)', from, room, refusal)
      return []
    }
    messages.history.served++
    return messages.backlog(req.maxMessages).map(({ from: sender, raw }) => encodeLabelled(sender, raw))
  }

  /** A backlog response we were writing to `from` was aborted: it did not read it in time. */
  writeTimedOut (from: string): void {
    this.components.messages.history.writeTimeouts++
    this.components.log('a backlog response to %s in %s was not read in time', from, this.components.room)
  }
}
