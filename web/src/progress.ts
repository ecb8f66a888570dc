/**
 * The steps of meeting a room, as they happen: reaching the relay → reserved → looking for
 * peers → connecting → direct. Shown in the conversation until someone is reached directly, and
 * always in the Network drawer; the header's status line sums them up in a few words.
 */
import { byId, h, icon } from './dom.js'

export type StepId = 'relay' | 'reserved' | 'looking' | 'connecting' | 'direct'
export type StepState = 'pending' | 'active' | 'done' | 'failed'

const ORDER: StepId[] = ['relay', 'reserved', 'looking', 'connecting', 'direct']

/** What each step says while pending or active, and by default once done. */
const LABELS: Record<StepId, { todo: string, done: string }> = {
  relay: { todo: 'Reaching the relay', done: 'Reached the relay' },
  reserved: { todo: 'Reserving a spot on the relay', done: 'Reserved: people can reach you' },
  looking: { todo: 'Looking for people in the room', done: 'Found someone' },
  connecting: { todo: 'Connecting directly', done: 'Connected' },
  direct: { todo: 'Direct connection', done: 'Direct: messages skip the relay' }
}

export type StatusState = 'starting' | 'connecting' | 'waiting' | 'direct' | 'error'

interface Step {
  state: StepState
  label: string
  when: string
}

export class MeetingProgress {
  private readonly lists = [...document.querySelectorAll<HTMLOListElement>('[data-steps]')]
  private readonly status = byId<HTMLElement>('status')
  private readonly statusText = byId<HTMLElement>('status-text')
  private readonly steps = new Map<StepId, Step>()

  constructor () {
    this.reset('relay')
  }

  /** Every step from `from` on back to pending (a room switch starts again at `looking`). */
  reset (from: StepId): void {
    const start = ORDER.indexOf(from)
    for (const [i, id] of ORDER.entries()) {
      if (i >= start || !this.steps.has(id)) this.steps.set(id, { state: 'pending', label: LABELS[id].todo, when: '' })
    }
    this.render()
  }

  set (id: StepId, state: StepState, label?: string, when = ''): void {
    const text = label ?? (state === 'done' ? LABELS[id].done : LABELS[id].todo)
    this.steps.set(id, { state, label: text, when })
    this.render()
  }

  state (id: StepId): StepState {
    return this.steps.get(id)?.state ?? 'pending'
  }

  /** The header's one-line summary. */
  setStatus (state: StatusState, text: string): void {
    this.status.dataset.state = state
    this.statusText.textContent = text
  }

  private render (): void {
    for (const list of this.lists) {
      list.replaceChildren(...ORDER.map((id) => {
        const step = this.steps.get(id) as Step
        const li = h('li', 'step')
        li.dataset.step = id
        li.dataset.state = step.state
        const mark = h('span', 'mark')
        mark.append(icon(step.state === 'failed' ? 'i-close' : 'i-check'))
        // the state in words too, for screen readers and anyone who cannot tell the marks apart
        const words = { pending: 'to do', active: 'in progress', done: 'done', failed: 'failed' }[step.state]
        li.append(mark, h('span', 'label', step.label), h('span', 'when', step.when), h('span', 'visually-hidden', ` (${words})`))
        return li
      }))
    }
  }
}
