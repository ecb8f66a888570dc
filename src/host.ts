/**
 * The host rule, and how ranks are admitted so that no member can take the role by claiming one.
 *
 * Every member carries a **rank**: its join time (ms since the epoch), lowered only by a handoff
 * from the host, sent in the header of every room message. The host is the member with the
 * lowest rank, ties broken by the smaller peer ID (`electHost`). It is a pure function of the
 * members present, so members that see the same members with the same ranks agree without a
 * round of messages, and a host that leaves or goes silent is replaced as soon as each member
 * drops it.
 *
 * A rank is a claim, and a modified client can claim anything (rank 0 would win at once). So a
 * receiver does not take a claim as it is; `HostRules` admits it:
 *
 * - **Joining, then settled.** A member is *joining* until it has heard every member it
 *   discovered and either `settleAfter` ms (5 s) passed since it first heard its latest member,
 *   or, if it has met nobody, `settleAlone` ms (12 s: longer than members take to re-announce
 *   themselves, which is how a member that reloaded under the same peer ID finds them again);
 *   or at most `decideWithin` ms (30 s). Then it is *settled*, for good, and says so in the
 *   header of everything it sends (`FLAG_SETTLED`). Members greet a newcomer when they meet, so
 *   it hears where they rank it well within that time.
 * - **A joining member trusts the room as it finds it**: it admits the ranks it hears as
 *   claimed, since the members it finds were (as far as it can tell) there before it.
 * - **A settled member admits a member it hears for the first time after everyone settled**:
 *   at `max(claim, floor)`, where `floor` is one more than the highest rank among itself and the
 *   settled members it has heard. A newcomer's claim cannot undercut the members settled in the
 *   room; only the host's handoff gives a member a rank below the others'.
 * - **A settled member tells a newcomer where it ranked it**: while the newcomer is joining, its
 *   heartbeats carry the rank it admitted it at when that is above its claim (`admissions`), and
 *   a joining member takes the highest such rank as its own (a newcomer whose clock is behind
 *   learns it joined last). Receivers let a member move its own rank later, never earlier
 *   (except by handoff), so every view of a member converges on what it claims for itself.
 * - **A joining member that discovered a member it has not heard yet is undecided**: that
 *   member may rank first. While undecided it does not count itself: `host` names the
 *   lowest-ranked member it has heard or, if none, one of the members it discovered (the
 *   smallest peer ID), and `publish` in a one-way room waits until it is decided (`decided`).
 *   A member that knows of nobody is its own host. Nor does a joining member count itself
 *   while it has heard a settled member only once: that member was there first, and its first
 *   message may have left before it heard the newcomer; the rank it admits the newcomer at
 *   comes with its next.
 * - **A member that restarts** (same peer ID, new incarnation: a reload) is admitted again like a
 *   newcomer: it does not keep the rank, nor the host role, of its previous session.
 *
 * What this guarantees: members that were settled in a room before a member arrived never rank
 * it before themselves, whatever it claims; a newcomer that honestly joins an existing room ranks
 * itself as they rank it, and does not act as host before it has heard them. What it does not:
 * two groups that settled apart (e.g. tabs behind relays that were not federated yet) and meet
 * later each keep their own host until one of those hosts leaves or hands off; a member that is
 * still joining when a forger arrives trusts the forged rank, as it trusts everything it finds;
 * and a member can push a joining newcomer's rank later with a forged admission (never its own
 * earlier). test/src/host.test.ts checks agreement over random honest rooms and a forger's
 * failure with property tests.
 */

import { monotonicNow } from './clock.js'
import { MAX_ADMISSIONS } from './wire.js'
import type { Admission } from './wire.js'

export interface HostCandidate {
  peerId: string
  rank: number
}

/** The host among `candidates`, or `undefined` when there are none. */
export function electHost (candidates: Iterable<HostCandidate>): string | undefined {
  let best: HostCandidate | undefined
  for (const c of candidates) {
    if (best === undefined || c.rank < best.rank || (c.rank === best.rank && c.peerId < best.peerId)) best = c
  }
  return best?.peerId
}

/** The rank a handoff gives its new host: below every candidate's, so it wins the rule. */
export function handoffRank (candidates: Iterable<HostCandidate>): number {
  let min = Infinity
  for (const c of candidates) min = Math.min(min, c.rank)
  return min - 1
}

export interface HostRulesInit {
  /** Our peer ID. */
  self: string
  /** Our rank: our join time, ms since the epoch (wall clock: ranks are compared across machines). */
  rank: number
  /** A member settles this long after it first heard its latest member, in ms. */
  settleAfter: number
  /** A member that has met nobody settles after this long, in ms. */
  settleAlone: number
  /** A member is settled at the latest this long after joining, in ms. */
  decideWithin: number
  /** Monotonic clock in ms; defaults to `performance.now()`. Tests inject a fake one. */
  now?: () => number
}

interface Ranked {
  /** admitted rank; undefined until heard */
  rank?: number
  /** its last header said it is settled */
  settled: boolean
  /** a member of the room for the host rule: reachable directly and heard (the room decides) */
  joined: boolean
  /** its rank was set by a handoff: its own later claims no longer move it */
  pinned: boolean
  /** messages heard from it, counted up to 2: a second one came after it could have heard us */
  messages: number
}

/**
 * The ranks of one room as one member sees them, and the host they elect. Pure: the room tells it
 * what it discovers, hears and drops; no timers, the clock is injected.
 */
export class HostRules {
  readonly self: string
  readonly #settleAfter: number
  readonly #settleAlone: number
  readonly #decideWithin: number
  readonly #now: () => number
  readonly #joinedAt: number
  /** when we last heard a member for the first time (monotonic ms), if ever */
  #lastMet?: number
  readonly #members = new Map<string, Ranked>()
  /** ranks we admitted joining members at, above their claims, newest last: our heartbeats tell them */
  readonly #admitted = new Map<string, number>()
  #rank: number
  #pinned = false
  #settled = false

  constructor (init: HostRulesInit) {
    this.self = init.self
    this.#rank = init.rank
    this.#settleAfter = init.settleAfter
    this.#settleAlone = init.settleAlone
    this.#decideWithin = init.decideWithin
    this.#now = init.now ?? monotonicNow
    this.#joinedAt = this.#now()
  }

  /** Our own rank, as our messages claim it. */
  get rank (): number {
    return this.#rank
  }

  /** Whether we are past our joining phase (see above); once true, true for good. */
  get settled (): boolean {
    if (!this.#settled) this.#settled = this.#checkSettled()
    return this.#settled
  }

  /** A member we know of (announced, subscribed, or heard); unheard until `hear`. */
  discover (peer: string): void {
    if (peer === this.self || this.#members.has(peer)) return
    // settling is judged lazily: judge it as it stood before this member came along
    void this.settled
    this.#members.set(peer, { settled: false, joined: false, pinned: false, messages: 0 })
  }

  /** Whether we have heard `peer`'s rank. */
  heard (peer: string): boolean {
    return this.#members.get(peer)?.rank !== undefined
  }

  /** The rank we admitted for `peer`, if heard. */
  rankOf (peer: string): number | undefined {
    return this.#members.get(peer)?.rank
  }

  /**
   * A valid message from `peer` claims `claim`, says whether it is settled and (a heartbeat)
   * where it admitted newcomers. Returns whether our heartbeat should go out now: we admitted
   * `peer` above its claim (it should learn where it stands), or our own rank changed (joining,
   * we took the rank the room admitted us at).
   */
  hear (peer: string, claim: number, settled: boolean, admissions: Admission[] = []): boolean {
    if (peer === this.self) return false
    this.discover(peer)
    const m = this.#members.get(peer) as Ranked
    m.messages = Math.min(2, m.messages + 1)
    const weSettled = this.settled
    if (m.rank === undefined) {
      // it has yet to hear us, perhaps, and tell us where it ranks us: stay joining a while
      if (!weSettled) this.#lastMet = this.#now()
      const floor = weSettled ? this.#floor(peer) : -Infinity
      m.rank = Math.max(claim, floor)
      if (claim < floor) {
        this.#admit(peer, floor)
        m.settled = settled
        return true
      }
    } else if (!m.pinned && claim > m.rank) {
      // a member may rank itself later (it learnt where the room ranks it), never earlier
      m.rank = claim
    }
    m.settled = settled
    // settled, it knows where it stands
    if (settled) this.#admitted.delete(peer)
    if (weSettled || this.#pinned) return false
    let changed = false
    for (const a of admissions) {
      if (a.peerId === this.self && a.rank > this.#rank) {
        this.#rank = a.rank
        changed = true
      }
    }
    return changed
  }

  /** What our heartbeat tells joining members: the ranks we admitted them at, above their claims. */
  admissions (): Admission[] {
    return [...this.#admitted].map(([peerId, rank]) => ({ peerId, rank }))
  }

  /** `peer` is a member for the host rule from now on: directly reachable and heard. */
  join (peer: string): void {
    const m = this.#members.get(peer)
    if (m !== undefined) m.joined = true
  }

  /** `peer` left the room. */
  remove (peer: string): void {
    this.#members.delete(peer)
    this.#admitted.delete(peer)
  }

  /** `peer` restarted (a new incarnation): its rank is admitted again from its next message. */
  restart (peer: string): void {
    const m = this.#members.get(peer)
    if (m === undefined) return
    m.rank = undefined
    m.settled = false
    m.pinned = false
    m.messages = 0
    this.#admitted.delete(peer)
  }

  /**
   * The host (checked by the caller) handed its role to `to` at `rank`. Returns false if `to` is
   * neither us nor a member we know.
   */
  handoff (to: string, rank: number): boolean {
    if (to === this.self) {
      this.#rank = Math.min(this.#rank, rank)
      this.#pinned = true
      return true
    }
    const m = this.#members.get(to)
    if (m === undefined) return false
    m.rank = Math.min(m.rank ?? Infinity, rank)
    m.pinned = true
    return true
  }

  /** The rank to give a member we hand the host role to: below every candidate's. */
  handoffRank (): number {
    return handoffRank(this.candidates())
  }

  /** Whether we know enough to count ourselves: settled, or we have heard every member we discovered (if any). */
  decided (): boolean {
    return this.settled || !this.#unheard()
  }

  /**
   * The members the host rule chooses among: joined members with a rank, and ourselves once
   * decided. Undecided and with nobody heard yet, the members we discovered stand in (the
   * smallest peer ID wins), so that we never name ourselves while one of them may rank first.
   */
  candidates (): HostCandidate[] {
    const decided = this.decided()
    // joining, we do not count ourselves against a settled member we heard only once: it was in
    // the room before us, and its first message may have left before it heard us; if our claim
    // ranks us first (a clock behind), its next one tells us where it ranks us (until then we
    // would be host for a moment in our own view only)
    const behindSettled = !this.settled && !this.#pinned && [...this.#members.values()].some((m) => m.joined && m.settled && m.rank !== undefined && m.messages < 2)
    const out: HostCandidate[] = decided && !behindSettled ? [{ peerId: this.self, rank: this.#rank }] : []
    for (const [peerId, m] of this.#members) {
      if (m.rank !== undefined && m.joined) out.push({ peerId, rank: m.rank })
    }
    if (out.length === 0 && !decided) {
      for (const [peerId, m] of this.#members) if (m.rank === undefined) out.push({ peerId, rank: -Infinity })
    }
    return out
  }

  /** The host's peer ID: ourselves when we know of nobody else. */
  host (): string {
    return electHost(this.candidates()) ?? this.self
  }

  #unheard (): boolean {
    for (const m of this.#members.values()) {
      if (m.rank === undefined) return true
    }
    return false
  }

  #checkSettled (): boolean {
    const now = this.#now()
    if (now - this.#joinedAt >= this.#decideWithin) return true
    if (this.#unheard()) return false
    return this.#lastMet === undefined ? now - this.#joinedAt >= this.#settleAlone : now - this.#lastMet >= this.#settleAfter
  }

  #admit (peer: string, rank: number): void {
    this.#admitted.delete(peer)
    this.#admitted.set(peer, rank)
    if (this.#admitted.size > MAX_ADMISSIONS) this.#admitted.delete(this.#admitted.keys().next().value as string)
  }

  /** One more than the highest rank among us and the settled members we heard, `peer` aside. */
  #floor (peer: string): number {
    let max = this.#rank
    for (const [id, m] of this.#members) {
      if (id !== peer && m.settled && m.rank !== undefined) max = Math.max(max, m.rank)
    }
    return max + 1
  }
}
