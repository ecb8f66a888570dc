/**
 * The host rule. Every member carries a rank (its join time in ms since the epoch, lowered by a
 * handoff), sent in the header of every room message. The host is the member with the lowest
 * rank, ties broken by the smaller peer ID. It is a pure function of the members present, so
 * members that see the same members agree without a round of messages, and a host that leaves
 * or goes stale is replaced as soon as each member drops it.
 */

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
