/**
 * Membership: who is in the room as we see it. A peer is discovered through the relay (an
 * announcement) or by a frame it sent us; the node is asked for a direct connection to it
 * (direct.ts); we greet it over that connection; it joins (`peer:join`) once it is direct, our
 * hello reached its stream, and we heard from it. A member that is neither directly connected
 * nor re-announced within `peerTtl` expires; one the relay calls unreachable, or that left, is
 * removed. What the room does on each of these steps comes in through the `on*` components.
 */
import { monotonicNow } from '../clock.js'
import { HELLO_RETRY_MS } from '../constants.js'
import type { DirectLinkEvents, DirectLinks } from '../direct.js'
import type { LeaveReason, MeetingPhase, MeetingTimeline, RoomPeer } from '../index.js'
import type { PeerPath } from '../paths.js'
import type { Logger, Startable } from '@libp2p/interface'

/** What membership needs of its room and node. */
export interface MembershipComponents {
  /** The room's name, for logs. */
  room: string
  log: Logger
  /** The node's direct connections; the room wants and releases peers as `holder`. */
  links: Pick<DirectLinks, 'want' | 'release' | 'isDirect' | 'phases' | 'addEventListener' | 'removeEventListener'>
  /** Who wants the links (the room): the node closes a link no holder wants. */
  holder: unknown
  /** A member neither directly connected nor re-announced for this long expires, in ms. */
  peerTtl: number
  /** How often expiry is checked (and dials that gave up are retried), in ms. */
  checkEvery: number
  /** Our hello: a heartbeat frame, which carries our rank. */
  hello: () => Promise<Uint8Array>
  /** Sends a frame to `peer` over its direct connection; resolves once handed over. */
  sendFrame: (peer: string, frame: Uint8Array) => Promise<void>
  /** Whether we heard from `peer` (a valid frame over our direct connection to it). */
  heard: (peer: string) => boolean
  onDiscover: (peer: string) => void
  onJoin: (peer: string) => void
  /** After the member is forgotten, before its link is released. */
  onLeave: (peer: string, reason: LeaveReason) => void
  /** A joined member's path changed: its direct connection healed or dropped. */
  onUpdate: (peer: string, path: PeerPath) => void
  /** Monotonic clock in ms; defaults to `performance.now()`. */
  now?: () => number
}

export interface Member {
  peerId: string
  addrs: string[]
  /** its node's start time, from its announcement: who dials (direct.ts) */
  startedAt?: number
  /** last announcement, or direct connection, seen (monotonic ms): expiry of a member not yet joined */
  lastSeen: number
  joined: boolean
  /** a frame of ours reached its stream since its direct connection opened: a publish reaches it */
  reachable: boolean
  /** our hello (a heartbeat) to it is on its way */
  greeting: boolean
  /** room-side phases of meeting it, monotonic ms */
  phases: Partial<Record<MeetingPhase, number>>
}

export class Membership implements Startable {
  private readonly components: MembershipComponents
  private readonly now: () => number
  private readonly members = new Map<string, Member>()
  /** when the room was joined: the origin of every member's timeline */
  private readonly origin: number
  private expiryTimer?: ReturnType<typeof setInterval>
  private readonly retries = new Set<ReturnType<typeof setTimeout>>()
  private started = false
  private stopped = false

  constructor (components: MembershipComponents) {
    this.components = components
    this.now = components.now ?? monotonicNow
    this.origin = this.now()
  }

  /** Listens to the node's direct links and starts expiring members. Idempotent. */
  start (): void {
    if (this.started || this.stopped) return
    this.started = true
    const { links, checkEvery } = this.components
    links.addEventListener('peer:direct', this.onDirect)
    links.addEventListener('peer:drop', this.onDrop)
    links.addEventListener('peer:unreachable', this.onUnreachable)
    this.expiryTimer = setInterval(() => { this.expire() }, checkEvery)
  }

  /** Stops listening and expiring; the members stay listed until `releaseAll`. Idempotent. */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    const { links } = this.components
    links.removeEventListener('peer:direct', this.onDirect)
    links.removeEventListener('peer:drop', this.onDrop)
    links.removeEventListener('peer:unreachable', this.onUnreachable)
    clearInterval(this.expiryTimer)
    for (const t of this.retries) clearTimeout(t)
    this.retries.clear()
  }

  has (peer: string): boolean {
    return this.members.has(peer)
  }

  get (peer: string): Member | undefined {
    return this.members.get(peer)
  }

  /** Peer IDs of every member known. */
  keys (): IterableIterator<string> {
    return this.members.keys()
  }

  values (): IterableIterator<Member> {
    return this.members.values()
  }

  /** Whether `peer` joined (`peer:join`). */
  joined (peer: string): boolean {
    return this.members.get(peer)?.joined === true
  }

  /** Members that joined. */
  joinedMembers (): Member[] {
    return [...this.members.values()].filter((m) => m.joined)
  }

  /** Members we are directly connected to, joined or not. */
  directMembers (): Member[] {
    return [...this.members.values()].filter((m) => this.components.links.isDirect(m.peerId))
  }

  /** `'direct'` only for joined members: a peer listed as direct is one `publish` reaches. */
  pathOf (m: Member): PeerPath {
    return m.joined && m.reachable && this.components.links.isDirect(m.peerId) ? 'direct' : 'relayed'
  }

  peers (): RoomPeer[] {
    return [...this.members.values()].map((m) => ({ peerId: m.peerId, path: this.pathOf(m) }))
  }

  /** The member `peer`, discovered now if it is new (`peer:discover`). */
  touch (peer: string): Member {
    let m = this.members.get(peer)
    if (m === undefined) {
      m = { peerId: peer, addrs: [], lastSeen: this.now(), joined: false, reachable: false, greeting: false, phases: {} }
      this.members.set(peer, m)
      this.mark(m, 'discovered')
      this.components.log('discovered %s in %s', peer, this.components.room)
      // a member may reach us first (its frame over a connection another room opened): hold it
      this.components.links.want(peer, this.components.holder, { addrs: [] })
      this.components.onDiscover(peer)
    }
    m.lastSeen = this.now()
    return m
  }

  /** `peer` announced itself through the relay: we want a direct connection to it. */
  announced (peer: string, addrs: string[], startedAt: number | undefined): void {
    const m = this.touch(peer)
    m.addrs = addrs
    if (startedAt !== undefined) m.startedAt = startedAt
    this.want(m)
  }

  /** We heard from `peer` for the first time: it joins now if it is direct and our hello reached it. */
  maybeJoin (peer: string): void {
    const m = this.members.get(peer)
    if (m !== undefined) this.checkReady(m)
  }

  /** Greets `peer` unless a frame of ours reached it since its connection opened. */
  greetIfUnreached (peer: string): void {
    const m = this.members.get(peer)
    if (m !== undefined && !m.reachable) this.greet(m)
  }

  /** Records when `peer` first reached a room-side `phase` of meeting. */
  markPhase (peer: string, phase: MeetingPhase): void {
    const m = this.members.get(peer)
    if (m !== undefined) this.mark(m, phase)
  }

  /** Forgets `peer` (`onLeave`) and releases its link. */
  remove (peer: string, reason: LeaveReason): void {
    const m = this.members.get(peer)
    if (m === undefined) return
    this.members.delete(peer)
    this.components.log('%s left %s (%s)', peer, this.components.room, reason)
    this.components.onLeave(peer, reason)
    // the node closes the connection once no room wants the peer: a WebRTC peer that hung up is
    // noticed only when ICE consent fails, tens of seconds later, and until then its dead
    // connection would pass for a direct path
    this.components.links.release(peer, this.components.holder)
  }

  /** Forgets every member without a word and releases their links: the room was left. */
  releaseAll (): void {
    const former = [...this.members.keys()]
    this.members.clear()
    for (const peer of former) this.components.links.release(peer, this.components.holder)
  }

  /** Every phase of meeting `m`, the node's and the room's, in ms since we joined (0 if before). */
  timeline (m: Member): MeetingTimeline {
    const out: MeetingTimeline = {}
    for (const [phase, at] of Object.entries({ ...this.components.links.phases(m.peerId), ...m.phases })) {
      out[phase as MeetingPhase] = Math.max(0, Math.round(at - this.origin))
    }
    return out
  }

  /** Expires members neither direct nor re-announced within `peerTtl`, and retries dials that gave up. */
  private expire (): void {
    const now = this.now()
    for (const m of [...this.members.values()]) {
      if (this.components.links.isDirect(m.peerId)) {
        m.lastSeen = now
      } else if (now - m.lastSeen > this.components.peerTtl) {
        this.remove(m.peerId, 'timeout')
      } else {
        // retries a dial that gave up
        this.want(m)
      }
    }
  }

  /** Asks the node for a direct connection to `m`, and greets it if there is one already. */
  private want (m: Member): void {
    this.components.links.want(m.peerId, this.components.holder, { addrs: m.addrs, startedAt: m.startedAt })
    if (!m.reachable) this.greet(m)
  }

  /** `peer:join` once it is directly connected, our stream to it is open, and we heard from it. */
  private checkReady (m: Member): void {
    if (m.joined || !m.reachable || !this.components.links.isDirect(m.peerId)) return
    // a member is one we heard from: its rank counts for the host, and in a private room its
    // message proved it holds the secret
    if (!this.components.heard(m.peerId)) return
    m.joined = true
    this.mark(m, 'joined')
    this.components.log('%s joined %s', m.peerId, this.components.room)
    this.components.onJoin(m.peerId)
  }

  /**
   * Says hello (a heartbeat, which carries our rank) to a member we are directly connected to.
   * Once it went out, our stream to the member is open and a publish reaches it.
   */
  private greet (m: Member): void {
    if (this.stopped || m.greeting || !this.components.links.isDirect(m.peerId)) return
    m.greeting = true
    this.components.hello()
      .then(async (frame) => { await this.components.sendFrame(m.peerId, frame) })
      .then(() => {
        m.greeting = false
        if (this.members.get(m.peerId) !== m || !this.components.links.isDirect(m.peerId)) return
        const healed = m.joined && !m.reachable
        m.reachable = true
        this.mark(m, 'streamReady')
        // a joined member's connection healed: direct again now that a publish reaches it
        if (healed) this.components.onUpdate(m.peerId, 'direct')
        this.checkReady(m)
      }, (err) => {
        m.greeting = false
        if (this.stopped || this.members.get(m.peerId) !== m) return
        this.components.log('hello to %s in %s failed - %e', m.peerId, this.components.room, err)
        // the connection may be on its way down; if it is still up, try once more shortly
        const retry = setTimeout(() => {
          this.retries.delete(retry)
          if (!m.reachable) this.greet(m)
        }, HELLO_RETRY_MS)
        this.retries.add(retry)
      })
  }

  private mark (m: Member, phase: MeetingPhase): void {
    if (m.phases[phase] !== undefined) return
    m.phases[phase] = this.now()
    this.components.log('meeting %s in %s: %s at %d ms', m.peerId, this.components.room, phase, Math.round(m.phases[phase] - this.origin))
  }

  private readonly onDirect = (evt: DirectLinkEvents['peer:direct']): void => {
    const m = this.members.get(evt.detail.peerId)
    if (this.stopped || m === undefined) return
    m.lastSeen = this.now()
    // a first connection is reported by peer:join once it is ready, a healed one by peer:update
    // once our hello went out on it (greet): until then peers() says 'relayed', and a listener
    // told 'direct' earlier would find it still relayed
    if (m.reachable) {
      if (m.joined) this.components.onUpdate(m.peerId, 'direct')
    } else {
      this.greet(m)
    }
  }

  private readonly onDrop = (evt: DirectLinkEvents['peer:drop']): void => {
    const m = this.members.get(evt.detail.peerId)
    if (this.stopped || m === undefined) return
    m.reachable = false
    this.components.log('direct connection to %s in %s dropped, healing', m.peerId, this.components.room)
    if (m.joined) this.components.onUpdate(m.peerId, 'relayed')
  }

  private readonly onUnreachable = (evt: DirectLinkEvents['peer:unreachable']): void => {
    if (this.members.has(evt.detail.peerId)) this.remove(evt.detail.peerId, 'unreachable')
  }
}
