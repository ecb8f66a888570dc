/**
 * The session type's rules, as pure functions: what a member may send in a room of each type
 * (`broadcast`: anyone publishes to all; `one-way`: only the host publishes; `pairwise`: members
 * address each other with `send`, and nothing is kept for late joiners), and what a receiver
 * refuses. The sender checks them to fail early with a named error; every receiver checks them
 * again, since a modified client skips the sender's checks.
 */
import { NotHostError, SessionTypeError } from '../errors.js'
import type { SessionType } from '../index.js'

/**
 * `publish` is for broadcast and one-way rooms.
 *
 * @throws SessionTypeError in a pairwise room
 */
export function assertPublishes (type: SessionType, room: string): void {
  if (type === 'pairwise') throw new SessionTypeError(`room "${room}" is pairwise: address messages with send(peerId, data)`)
}

/**
 * In a one-way room only the host publishes.
 *
 * @throws NotHostError when `self` is not `host` in a one-way room
 */
export function assertMayPublish (type: SessionType, self: string, host: string, room: string): void {
  if (type === 'one-way' && host !== self) throw new NotHostError(`only the host (${host}) publishes in one-way room "${room}"`)
}

/**
 * `send(peerId, data)` is for pairwise rooms.
 *
 * @throws SessionTypeError in a broadcast or one-way room
 */
export function assertSends (type: SessionType, room: string): void {
  if (type !== 'pairwise') throw new SessionTypeError(`room "${room}" is ${type}: send(peerId, data) is for pairwise rooms, use publish`)
}

/**
 * Only the host hands the role over.
 *
 * @throws NotHostError when `self` is not `host`
 */
export function assertMayHandOff (self: string, host: string, room: string): void {
  if (host !== self) throw new NotHostError(`only the host (${host}) can hand off room "${room}"`)
}

/** Whether a `publish` in a room of `type` must first wait until we know who the host is (host.ts `decided`). */
export function waitsForHost (type: SessionType): boolean {
  return type === 'one-way'
}

/**
 * Why data from `from` is refused before it costs a token, a sequence number or memory, if it is:
 * a one-way room takes data from nobody but the host.
 */
export function refuseData (type: SessionType, from: string, host: string): 'notHost' | undefined {
  return type === 'one-way' && from !== host ? 'notHost' : undefined
}

/** Whether a handoff from `from` is taken: only the host hands the role over. */
export function acceptsHandoff (from: string, host: string): boolean {
  return from === host
}

/** Whether messages are addressed to one member (`send`) rather than to all (`publish`). */
export function isPairwise (type: SessionType): boolean {
  return type === 'pairwise'
}

/** Messages a room keeps for late joiners: none in a pairwise room, whose messages are private to a pair. */
export function historySizeOf (type: SessionType, historySize: number): number {
  return type === 'pairwise' ? 0 : historySize
}
