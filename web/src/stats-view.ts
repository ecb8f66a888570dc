/**
 * The room's counters from `room.stats()`: data messages sent and received, sequence numbers
 * never received (gaps), and what this tab dropped on receipt, by reason. Every receiver enforces
 * the room's rules, so "dropped" is this tab doing its share.
 */
import { byId, h } from './dom.js'
import type { DropReason, RoomStats } from 'p2p-rooms'

/** What each drop reason means, for tooltips; the keys are the library's. */
const DROP_REASONS: Record<DropReason, string> = {
  malformed: 'not a room message of this version, or a body that does not parse',
  tooLarge: "over the room's maxMessageBytes",
  rateLimited: "over the sender's rate limit (messagesPerSecond, burst)",
  notHost: 'data from a non-host in a one-way room',
  unauthenticated: 'failed authentication in a private room: wrong secret or tampered',
  duplicate: 'a sequence number already delivered',
  wrongType: "data that does not fit the room's session type",
  notMember: 'from a peer that is not a member'
}

export class StatsView {
  private readonly sent = byId<HTMLElement>('stat-sent')
  private readonly received = byId<HTMLElement>('stat-received')
  private readonly gaps = byId<HTMLElement>('stat-gaps')
  private readonly dropped = byId<HTMLUListElement>('stat-dropped')
  private readonly cells = new Map<string, HTMLElement>()

  render (stats: RoomStats | undefined): void {
    this.sent.textContent = stats === undefined ? '–' : String(stats.messages.sent)
    this.received.textContent = stats === undefined ? '–' : String(stats.messages.received)
    this.gaps.textContent = stats === undefined ? '–' : String(stats.messages.gaps)
    // reasons this build of the library knows, in its order, after the ones described above
    const counts: Record<string, number> = stats?.messages.dropped ?? {}
    for (const reason of new Set([...Object.keys(DROP_REASONS), ...Object.keys(counts)])) {
      const n = counts[reason] ?? 0
      const cell = this.cell(reason)
      cell.textContent = String(n)
      cell.parentElement!.dataset.count = String(n)
    }
  }

  private cell (reason: string): HTMLElement {
    let cell = this.cells.get(reason)
    if (cell === undefined) {
      const li = h('li', 'drop')
      li.dataset.reason = reason
      li.title = (DROP_REASONS as Record<string, string>)[reason] ?? reason
      cell = h('span', 'drop-count')
      li.append(h('span', 'drop-reason', reason), cell)
      this.dropped.append(li)
      this.cells.set(reason, cell)
    }
    return cell
  }
}
