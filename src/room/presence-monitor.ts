/**
 * Presence, as the room runs it: a heartbeat to our direct members every `heartbeatInterval`,
 * and a look for silent members often enough that one is dropped within `presenceTimeout` and a
 * sixteenth of it. Who was heard when is presence.ts (`Presence`, pure); the timers are here.
 */
import { Presence } from '../presence.js'
import type { Startable } from '@libp2p/interface'

/** What presence needs of its room. */
export interface PresenceMonitorComponents {
  /** A member not heard from for longer than this is silent, in ms. */
  timeout: number
  /** How often we send a heartbeat, in ms. */
  heartbeatInterval: number
  /** Sends our heartbeat to every member we are directly connected to. */
  heartbeat: () => void
  /** `peer` has been silent for longer than `timeout`. */
  onSilent: (peer: string) => void
  /** After each look for silent members (a newcomer settles with time too: the host may change). */
  afterCheck: () => void
  /** Monotonic clock in ms; defaults to `performance.now()`. */
  now?: () => number
}

export class PresenceMonitor implements Startable {
  /** when each member was last heard */
  readonly presence: Presence
  private readonly components: PresenceMonitorComponents
  private heartbeatTimer?: ReturnType<typeof setInterval>
  private checkTimer?: ReturnType<typeof setInterval>
  private started = false
  private stopped = false

  constructor (components: PresenceMonitorComponents) {
    this.components = components
    this.presence = new Presence({ timeout: components.timeout, now: components.now })
  }

  /** Starts the heartbeat and the silence check. Idempotent. */
  start (): void {
    if (this.started || this.stopped) return
    this.started = true
    this.heartbeatTimer = setInterval(() => { this.components.heartbeat() }, this.components.heartbeatInterval)
    this.checkTimer = setInterval(() => { this.check() }, this.presence.checkEvery)
  }

  /** Stops both timers. Idempotent. */
  stop (): void {
    this.stopped = true
    clearInterval(this.heartbeatTimer)
    clearInterval(this.checkTimer)
  }

  /** `peer` sent us a message itself, just now. */
  heard (peer: string): void {
    this.presence.heard(peer)
  }

  /** `peer` became a member: its clock starts unless it is running already. */
  joined (peer: string): void {
    this.presence.start(peer)
  }

  forget (peer: string): void {
    this.presence.forget(peer)
  }

  /** Ms since `peer` was last heard, or undefined if it is not tracked. */
  sinceHeard (peer: string): number | undefined {
    return this.presence.sinceHeard(peer)
  }

  private check (): void {
    if (this.stopped) return
    for (const peer of this.presence.silent()) this.components.onSilent(peer)
    this.components.afterCheck()
  }
}
