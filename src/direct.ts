/**
 * The one owner of a node's direct WebRTC connections. Rooms ask it for a peer (`want`, with the
 * `/p2p-circuit/webrtc` multiaddrs the peer announced) and let go of it (`release`); it decides
 * which side of a pair dials, retries with backoff, heals a dropped connection while anyone still
 * wants the peer, hangs up on a peer nobody wants any more, and tells the rooms when a peer
 * becomes direct (`peer:direct`), drops (`peer:drop`) or turns out to be gone
 * (`peer:unreachable`). Two rooms that share a peer share its connection, its dial and its timers.
 *
 * Who dials: the node that started later, ties broken by the smaller peer ID. Both sides decide
 * from the same two start times (each node announces its own), so exactly one of them dials: a
 * newcomer dials the members it finds, which it learns first (from the relay's snapshot of the
 * room), and two WebRTC dials never cross. The other side takes over after `dialTakeover` if no
 * connection came, in case the dialer never heard of it; should both connections then open, both
 * sides keep the one the rule's dialer opened and close the other.
 *
 * Only `/p2p-circuit/webrtc` addresses through a relay this node knows are ever dialled: an
 * announcement cannot make a node dial a LAN address or a relay of the announcer's choosing.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { MAX_EARLY_PEERS } from './constants.js'
import { dialWithRetry, isPeerGoneError } from './dialer.js'
import { isDirect, isRelayed } from './paths.js'
import { newestDirect } from './streams.js'
import type { ComponentLogger, Connection, Logger, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { TypedEventTarget } from 'main-event'

/** The phases of reaching a peer that this component sees; rooms add their own (see `MeetingPhase`). */
export type LinkPhase = 'dialStarted' | 'relayed' | 'signaled' | 'connected'

/** Dial counters of a peer, since it was first wanted, and how its direct connection runs. */
export interface LinkStats {
  dialAttempts: number
  dialSuccesses: number
  dialFailures: number
  /** `name: message` of the last failed dial. */
  lastError?: string
  /**
   * The local ICE candidate type of the direct connection's selected candidate pair: `'host'`
   * (same host or LAN), `'srflx'`/`'prflx'` (through a NAT, found by STUN or by the peer),
   * `'relay'` (through a TURN server). Read from WebRTC's stats shortly after the connection opens.
   */
  candidateType?: RTCIceCandidateType
}

export interface DirectLinkEvents {
  /** A direct connection to the peer is open: the first one, or a healed one. */
  'peer:direct': CustomEvent<{ peerId: string, connection: Connection }>
  /** The peer's last direct connection closed; if it is still wanted, healing has started. */
  'peer:drop': CustomEvent<{ peerId: string }>
  /** The relay holds no reservation for the peer any more: its node is gone. */
  'peer:unreachable': CustomEvent<{ peerId: string }>
}

/** What this component needs of libp2p: narrow, so that tests can stub it. */
export interface DirectLinksComponents {
  /** Our own peer ID. */
  peerId: string
  logger: ComponentLogger
  /** libp2p's events: `connection:open`, `connection:close`. */
  events: TypedEventTarget<{ 'connection:open': CustomEvent<Connection>, 'connection:close': CustomEvent<Connection> }>
  /** `libp2p.dial`: the WebRTC transport reports its steps through `onProgress`. */
  dial(addrs: Multiaddr[], options: { signal: AbortSignal, onProgress(evt: { type: string }): void }): Promise<Connection>
  /** Open connections to `peer`. */
  getConnections(peer: string): Connection[]
  /** Closes every connection to `peer`. */
  hangUp(peer: string): Promise<void>
  /** Whether `peerId` is a relay this node knows (configured, or learned from the relays' records). */
  isKnownRelay(peerId: string): boolean
}

export interface DirectLinksInit {
  /** When this node started, in ms since the epoch: the later of two nodes dials. */
  startedAt: number
  /** Attempts per dial, at least 1. */
  dialAttempts: number
  /** Delay before the second attempt, doubled for each further one (with jitter), in ms. */
  dialBackoff: number
  /** Upper bound of one attempt, in ms. */
  dialTimeout: number
  /** How long the side that does not dial waits for a connection before dialing itself, in ms. */
  dialTakeover: number
}

/** What a room knows of a peer it wants to reach. */
export interface LinkOffer {
  /** The peer's announced multiaddrs; only `/p2p-circuit/webrtc` ones through known relays are used. */
  addrs: string[]
  /** The peer's announced node start time, in ms since the epoch; unknown: the smaller peer ID dials. */
  startedAt?: number
}

interface Link {
  peerId: string
  /** rooms (or anything) that want the peer; the link goes when the last one releases it */
  holders: Set<unknown>
  addrs: Multiaddr[]
  startedAt?: number
  dialing?: AbortController
  takeover?: ReturnType<typeof setTimeout>
  stats: LinkStats
  /** `performance.now()` when each phase was first reached */
  phases: Partial<Record<LinkPhase, number>>
}

/**
 * The RTCPeerConnection under a direct libp2p connection. @libp2p/webrtc keeps it on the
 * connection's multiaddr connection, which libp2p does not expose: read defensively.
 */
export function peerConnectionOf (conn: Connection): RTCPeerConnection | undefined {
  const pc = (conn as unknown as { maConn?: { peerConnection?: RTCPeerConnection } }).maConn?.peerConnection
  return typeof pc?.getStats === 'function' ? pc : undefined
}

/** The local candidate type of the selected ICE candidate pair of `pc`, if its stats say. */
export async function selectedCandidateType (pc: RTCPeerConnection): Promise<RTCIceCandidateType | undefined> {
  const stats = new Map<string, any>()
  ;(await pc.getStats()).forEach((s: any) => stats.set(s.id, s))
  const all = [...stats.values()]
  const transport = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId !== undefined)
  const pair = stats.get(transport?.selectedCandidatePairId) ?? all.find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded')
  return stats.get(pair?.localCandidateId)?.candidateType
}

export class DirectLinks extends TypedEventEmitter<DirectLinkEvents> implements Startable {
  private readonly components: DirectLinksComponents
  private readonly init: DirectLinksInit
  private readonly log: Logger
  private readonly links = new Map<string, Link>()
  /** phases of peers that reached us before any room wanted them (an inbound dial) */
  private readonly early = new Map<string, Partial<Record<LinkPhase, number>>>()
  private readonly abort = new AbortController()
  private started = false

  constructor (components: DirectLinksComponents, init: DirectLinksInit) {
    super()
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('p2p-rooms:direct')
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    if (this.started) return
    this.started = true
    const { events } = this.components
    events.addEventListener('connection:open', this.onConnectionOpen)
    events.addEventListener('connection:close', this.onConnectionClose)
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    const { events } = this.components
    events.removeEventListener('connection:open', this.onConnectionOpen)
    events.removeEventListener('connection:close', this.onConnectionClose)
    this.abort.abort()
    for (const link of this.links.values()) this.cancel(link)
    this.links.clear()
    this.early.clear()
  }

  /**
   * `holder` wants a direct connection to `peerId`: dial it, or wait for it to dial us, as the
   * rule says; keep healing it while anyone wants it. Calling it again updates the addresses and
   * retries a dial that gave up.
   */
  want (peerId: string, holder: unknown, offer: LinkOffer): void {
    if (!this.started || peerId === this.components.peerId) return
    let link = this.links.get(peerId)
    if (link === undefined) {
      link = { peerId, holders: new Set(), addrs: [], stats: { dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 }, phases: this.early.get(peerId) ?? {} }
      this.early.delete(peerId)
      this.links.set(peerId, link)
    }
    link.holders.add(holder)
    const addrs = this.dialable(peerId, offer.addrs)
    if (addrs.length > 0) link.addrs = addrs
    if (offer.startedAt !== undefined) link.startedAt = offer.startedAt
    this.ensure(link)
  }

  /** `holder` no longer needs `peerId`; once nobody does, dials stop and the connection is closed. */
  release (peerId: string, holder: unknown): void {
    const link = this.links.get(peerId)
    if (link === undefined || !link.holders.delete(holder) || link.holders.size > 0) return
    this.cancel(link)
    this.links.delete(peerId)
    if (this.started && this.components.getConnections(peerId).length > 0) {
      this.log('nobody wants %s any more: hanging up', peerId)
      void this.components.hangUp(peerId).catch(() => {})
    }
  }

  /** Whether an open, unlimited WebRTC connection to `peerId` exists. */
  isDirect (peerId: string): boolean {
    return this.components.getConnections(peerId).some(isDirect)
  }

  /** The direct connection to `peerId`, if any. */
  connection (peerId: string): Connection | undefined {
    return newestDirect(this.components.getConnections(peerId))
  }

  /** Dial counters of a wanted peer. */
  stats (peerId: string): LinkStats {
    return { ...(this.links.get(peerId)?.stats ?? { dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 }) }
  }

  /** `performance.now()` when each phase of reaching `peerId` was first reached. */
  phases (peerId: string): Partial<Record<LinkPhase, number>> {
    return { ...(this.links.get(peerId)?.phases ?? this.early.get(peerId) ?? {}) }
  }

  /** Whether we, not `peerId`, dial: the later-started node, ties and unknowns to the smaller peer ID. */
  weDial (peerId: string, theirStart?: number): boolean {
    const self = this.components.peerId
    if (theirStart !== undefined && theirStart !== this.init.startedAt) return this.init.startedAt > theirStart
    return self < peerId
  }

  // --- dialing ------------------------------------------------------------------------------

  private ensure (link: Link): void {
    if (!this.started || link.dialing !== undefined || link.addrs.length === 0 || this.isDirect(link.peerId)) return
    if (this.weDial(link.peerId, link.startedAt)) {
      void this.dial(link)
    } else if (link.takeover === undefined) {
      link.takeover = setTimeout(() => {
        link.takeover = undefined
        if (this.links.get(link.peerId) === link && !this.isDirect(link.peerId)) {
          this.log('no connection from %s within %d ms: dialing it', link.peerId, this.init.dialTakeover)
          void this.dial(link)
        }
      }, this.init.dialTakeover)
    }
  }

  private async dial (link: Link): Promise<void> {
    const controller = new AbortController()
    link.dialing = controller
    const signal = AbortSignal.any([controller.signal, this.abort.signal])
    this.mark(link, 'dialStarted')
    // the WebRTC transport reports its steps: the circuit is up once it opens the signaling
    // stream, SDP is done once it reads ICE candidates
    const onProgress = (evt: { type: string }): void => {
      if (evt.type === 'webrtc:open-signaling-stream') this.mark(link, 'relayed')
      else if (evt.type === 'webrtc:read-ice-candidates') this.mark(link, 'signaled')
    }
    try {
      const conn = await dialWithRetry(async () => {
        const existing = this.connection(link.peerId)
        if (existing !== undefined) return existing
        return this.components.dial(link.addrs, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.init.dialTimeout)]), onProgress })
      }, {
        attempts: this.init.dialAttempts,
        backoffMs: this.init.dialBackoff,
        signal,
        onAttempt: (attempt, err) => {
          if (signal.aborted) return
          link.stats.dialAttempts++
          if (err === undefined) {
            link.stats.dialSuccesses++
          } else {
            link.stats.dialFailures++
            link.stats.lastError = `${err.name}: ${err.message}`
            this.log('dial %d to %s failed - %e', attempt, link.peerId, err)
          }
        }
      })
      // the relay only introduces peers: once direct, the circuit has no further use. Only the
      // dialer may close it, and only now: the recipient sees the WebRTC connection open while
      // the dialer is still finishing signaling over that circuit.
      for (const other of this.components.getConnections(link.peerId)) {
        if (other !== conn && isRelayed(other)) void other.close().catch(() => {})
      }
    } catch (err) {
      if (signal.aborted) return
      if (isPeerGoneError(err)) {
        this.log('%s holds no reservation any more: unreachable', link.peerId)
        this.safeDispatchEvent('peer:unreachable', { detail: { peerId: link.peerId } })
      } else {
        this.log.error('gave up on a direct connection to %s - %e', link.peerId, err)
      }
    } finally {
      if (link.dialing === controller) link.dialing = undefined
    }
  }

  private cancel (link: Link): void {
    link.dialing?.abort()
    link.dialing = undefined
    clearTimeout(link.takeover)
    link.takeover = undefined
  }

  /**
   * The announced addresses worth dialing: well-formed `<relay>/p2p-circuit/webrtc/p2p/<peer>`
   * multiaddrs whose relay is one we know.
   */
  private dialable (peerId: string, addrs: string[]): Multiaddr[] {
    const out: Multiaddr[] = []
    for (const a of addrs) {
      let ma: Multiaddr
      try {
        ma = multiaddr(a)
      } catch {
        continue
      }
      const c = ma.getComponents()
      const circuit = c.findIndex((x) => x.name === 'p2p-circuit')
      if (circuit < 1 || c[circuit + 1]?.name !== 'webrtc' || c[circuit + 2]?.name !== 'p2p' || c[circuit + 2].value !== peerId || c.length !== circuit + 3) continue
      const relay = c[circuit - 1]
      if (relay.name !== 'p2p' || relay.value === undefined || !this.components.isKnownRelay(relay.value)) continue
      out.push(ma)
    }
    return out
  }

  // --- connection events --------------------------------------------------------------------

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    const peerId = conn.remotePeer.toString()
    if (isRelayed(conn)) {
      this.markPeer(peerId, 'relayed')
      // the peer is dialing us (its signaling circuit): no takeover, which would only race it
      // with a second WebRTC dial on a busy CPU; its own retries take it from here, and a room
      // asks again at its next announcement if they all fail
      const link = this.links.get(peerId)
      if (link !== undefined && conn.direction === 'inbound') {
        clearTimeout(link.takeover)
        link.takeover = undefined
      }
    }
    if (!isDirect(conn)) return
    this.markPeer(peerId, 'connected')
    const link = this.links.get(peerId)
    if (link !== undefined) {
      clearTimeout(link.takeover)
      link.takeover = undefined
      void this.readCandidateType(link, conn)
    }
    if (this.closeDuplicate(peerId, link)) return
    this.safeDispatchEvent('peer:direct', { detail: { peerId, connection: conn } })
  }

  /**
   * Two direct connections to one peer: after a takeover both sides may have dialed, or the peer
   * reloaded and dialed again while its old connection, dead, still looks open. Keep the newest
   * one the rule's dialer opened (both sides pick the same), close the rest. Returns whether
   * `peerId` already had a direct connection reported.
   */
  private closeDuplicate (peerId: string, link?: Link): boolean {
    const direct = this.components.getConnections(peerId).filter(isDirect)
    if (direct.length < 2) return false
    const keepOurs = this.weDial(peerId, link?.startedAt)
    const byRule = direct.filter((c) => (c.direction === 'outbound') === keepOurs)
    const keep = newestDirect(byRule) ?? newestDirect(direct) ?? direct[0]
    for (const c of direct) {
      if (c !== keep) {
        this.log('closing a second direct connection to %s', peerId)
        void c.close().catch(() => {})
      }
    }
    return true
  }

  private async readCandidateType (link: Link, conn: Connection): Promise<void> {
    const pc = peerConnectionOf(conn)
    if (pc === undefined) return
    try {
      const type = await selectedCandidateType(pc)
      if (type !== undefined && this.links.get(link.peerId) === link) link.stats.candidateType = type
    } catch (err) {
      this.log('no ICE stats for %s - %e', link.peerId, err)
    }
  }

  private readonly onConnectionClose = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (conn.multiplexer !== '/webrtc') return
    const peerId = conn.remotePeer.toString()
    if (this.isDirect(peerId)) return
    const link = this.links.get(peerId)
    if (link === undefined) {
      this.early.delete(peerId)
      return
    }
    this.log('direct connection to %s dropped%s', peerId, this.started ? ', healing' : '')
    this.safeDispatchEvent('peer:drop', { detail: { peerId } })
    this.ensure(link)
  }

  private markPeer (peerId: string, phase: LinkPhase): void {
    const link = this.links.get(peerId)
    if (link !== undefined) {
      this.mark(link, phase)
      return
    }
    // an inbound dial can come before any room of ours wanted the peer: keep what it reached
    if (this.early.size >= MAX_EARLY_PEERS) this.early.delete(this.early.keys().next().value as string)
    const phases = this.early.get(peerId) ?? {}
    phases[phase] ??= performance.now()
    this.early.set(peerId, phases)
  }

  private mark (link: Link, phase: LinkPhase): void {
    if (link.phases[phase] !== undefined) return
    link.phases[phase] = performance.now()
    this.log.trace('%s: %s', link.peerId, phase)
  }
}
