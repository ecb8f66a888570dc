/**
 * The room's host: the ranks it admits (host.ts `HostRules`), the host they elect, `host:change`
 * when it changes, handoffs, and `publish` calls waiting until we know whether we are the host.
 * The rule itself is pure and lives in host.ts; this is the room's use of it.
 */
import { RANK_ANNOUNCE_MARGIN_MS, RANK_DECIDE_WITHIN_MS, RANK_SETTLE_ALONE_MS, RANK_SETTLE_MS } from '../constants.js'
import { HostRules } from '../host.js'
import { acceptsHandoff } from './session-rules.js'
import type { Admission } from '../wire.js'
import type { Logger } from '@libp2p/interface'

/** What the host role needs of its room. */
export interface HostRoleComponents {
  /** Our peer ID. */
  self: string
  /** The room's name, for logs. */
  room: string
  log: Logger
  /** How often members re-announce themselves, in ms: a member settles after hearing them. */
  announceInterval: number
  /** Aborted when the room is left: rejects `decided()`. */
  signal: AbortSignal
  /** The host changed. */
  onChange: (host: string, previous: string) => void
  /** Our rank changed (a handoff to or from us, or the room ranked us): tell the members now. */
  rankChanged: () => void
  /** Our rank: our join time, ms since the epoch; defaults to `Date.now()`. */
  rank?: number
  /** Monotonic clock in ms for settling; defaults to `performance.now()`. */
  now?: () => number
}

/** The header fields of a message that concern the host rule. */
export interface RankClaim {
  rank: number
  settled: boolean
  /** its sender restarted (a reload): a new session */
  restarted: boolean
}

/** A handoff's body: the member given the role, and the rank that makes it first. */
export interface Handoff {
  to: string
  rank: number
}

export class HostRole {
  /** ranks as we admit them, and the host they elect (host.ts) */
  readonly ranks: HostRules
  private readonly components: HostRoleComponents
  private current: string
  /** `publish` calls waiting until we know whether we are the host */
  private readonly waiters: Array<() => void> = []

  constructor (components: HostRoleComponents) {
    this.components = components
    this.current = components.self
    const { announceInterval } = components
    // our rank is our join time on the wall clock: ranks are compared across machines
    this.ranks = new HostRules({
      self: components.self,
      rank: components.rank ?? Date.now(),
      settleAfter: RANK_SETTLE_MS,
      settleAlone: Math.max(RANK_SETTLE_ALONE_MS, announceInterval + RANK_ANNOUNCE_MARGIN_MS),
      decideWithin: Math.max(RANK_DECIDE_WITHIN_MS, announceInterval * 2 + RANK_ANNOUNCE_MARGIN_MS),
      now: components.now
    })
  }

  /** The host's peer ID, as we see it now. */
  get host (): string {
    return this.current
  }

  /** Whether we know yet whether we are the host (host.ts `decided`). */
  decided (): boolean {
    return this.ranks.decided()
  }

  /** Resolves once we know whether we are the host: at most `RANK_DECIDE_WITHIN_MS` after joining. Rejects when the room is left. */
  async whenDecided (): Promise<void> {
    if (this.ranks.decided()) return
    const { signal } = this.components
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }

  /** A member was discovered: it may rank first, so we are not the host until we hear it. */
  discover (peer: string): void {
    this.ranks.discover(peer)
  }

  /**
   * A valid message from `peer` over our direct connection to it: admits the rank it claims, and
   * counts it for the rule. Returns whether it was the first we heard from it.
   */
  hear (peer: string, claim: RankClaim, admissions: Admission[]): boolean {
    // a reloaded member is a new session: it keeps neither its rank nor the host role
    if (claim.restarted) {
      this.ranks.restart(peer)
      this.components.log('%s restarted in %s', peer, this.components.room)
    }
    const first = !this.ranks.heard(peer)
    // joining, we rank ourselves after the settled members we hear: tell the room now
    if (this.ranks.hear(peer, claim.rank, claim.settled, admissions)) this.components.rankChanged()
    // it counts for the host rule once heard (its frame came over our direct connection to it),
    // whether or not our own hello has reached it yet (that is peer:join's business)
    this.ranks.join(peer)
    return first
  }

  /** Whether we heard from `peer` since it was discovered. */
  heard (peer: string): boolean {
    return this.ranks.heard(peer)
  }

  join (peer: string): void {
    this.ranks.join(peer)
  }

  remove (peer: string): void {
    this.ranks.remove(peer)
  }

  /**
   * A handoff from `from` naming `handoff.to`: taken only from the host. Returns `'notHost'` when
   * refused for that, else whether it moved a rank.
   */
  receiveHandoff (from: string, handoff: Handoff): 'notHost' | boolean {
    if (!acceptsHandoff(from, this.current)) return 'notHost'
    if (!this.ranks.handoff(handoff.to, handoff.rank)) return false
    this.elect()
    return true
  }

  /** The rank a handoff from us gives its new host. */
  handoffRank (): number {
    return this.ranks.handoffRank()
  }

  /** Our handoff to `peer` went out: it ranks first now. */
  handOff (peer: string, rank: number): void {
    this.ranks.handoff(peer, rank)
    this.elect()
  }

  /** Applies the rule to the members as they are now: `onChange` if the host changed. */
  elect (): void {
    if (this.waiters.length > 0 && this.ranks.decided()) for (const resolve of this.waiters.splice(0)) resolve()
    const host = this.ranks.host()
    if (host === this.current) return
    const previous = this.current
    this.current = host
    const { self, log, room } = this.components
    log('host of %s is now %s (was %s)', room, host, previous)
    this.components.onChange(host, previous)
    // our rank changed with a handoff: say so now rather than at the next heartbeat
    if (host === self || previous === self) this.components.rankChanged()
  }
}
