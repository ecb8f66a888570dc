/** Stubbed components shared by the room's unit tests (test/src/room/): no libp2p, no network. */
import { TypedEventEmitter } from 'main-event'
import { vi } from 'vitest'
import type { Logger } from '@libp2p/interface'

/** A logger that says nothing. */
export const silent: Logger = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as unknown as Logger

/** Fakes every clock a room part reads: timers, `Date`, and `performance.now()`. */
export function fakeTimers (): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] })
}

/** The node's direct links as a room part sees them: `direct` says who is directly connected. */
export class StubLinks extends TypedEventEmitter<any> {
  readonly direct = new Set<string>()
  readonly want = vi.fn()
  readonly release = vi.fn()
  isDirect (peer: string): boolean {
    return this.direct.has(peer)
  }

  phases (): Record<string, number> {
    return {}
  }

  /** `peer` becomes directly connected, and the node says so. */
  connect (peer: string): void {
    this.direct.add(peer)
    this.safeDispatchEvent('peer:direct', { detail: { peerId: peer, connection: {} } })
  }

  /** `peer`'s direct connection drops, and the node says so. */
  drop (peer: string): void {
    this.direct.delete(peer)
    this.safeDispatchEvent('peer:drop', { detail: { peerId: peer } })
  }
}
