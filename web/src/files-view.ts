/**
 * The Files panel: drop a file anywhere on the page (or choose one) and send it to everyone here,
 * to one person, or share it with the room; every transfer gets a row with a progress bar, its
 * rate and time left, "resuming" while a dropped connection or a reloaded tab comes back, and once
 * done a verified badge (the SHA-256 the receiver computed) and a download link.
 *
 * Public API of `p2p-rooms` only: `room.sendFile`, `room.shareFile`, and the room's `file` and
 * `file:offer` events. Attributes the CSS and the end-to-end tests read: a row's
 * `data-direction` (`out`, `in`, `share`), `data-state` (the transfer's state), `data-file-id`.
 */
import { byId, duration, h, icon, nameTag } from './dom.js'
import type { Directory } from './names.js'
import type { FileDownload, FileOffer, FileTransfer, FileTransferState, IncomingFile, Room } from 'p2p-rooms'

/** `send` to everyone joined, `share` with the room, or one peer ID. */
type Target = 'everyone' | 'share' | string

const STATE_WORDS: Record<FileTransferState, string> = {
  offered: 'Waiting',
  sending: 'Sending',
  receiving: 'Receiving',
  resuming: 'Resuming',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
  rejected: 'Declined'
}

/** Decimal units, as browsers' download lists show sizes. */
export function formatBytes (n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  do { v /= 1000; u++ } while (v >= 1000 && u < units.length - 1)
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`
}

/** `42 % · 6.1 MB/s · 12 s left`. */
export function progressWords (bytes: number, total: number, bytesPerSecond: number): string {
  const pct = total === 0 ? 100 : Math.floor(bytes * 100 / total)
  const words = [`${pct} %`]
  if (bytesPerSecond > 0 && bytes < total) {
    words.push(`${formatBytes(bytesPerSecond)}/s`)
    words.push(`${duration((total - bytes) * 1000 / bytesPerSecond)} left`)
  }
  return words.join(' · ')
}

/** What went wrong, in words, from the error's `name` (see the library's errors). */
export function failureWords (err: unknown, other: string): string {
  const e = err as { name?: string, by?: string, limit?: number }
  switch (e?.name) {
    case 'FileRejectedError': return `${other} declined it`
    case 'FileTooLargeError': return `Too large for ${other}, who accepts files up to ${formatBytes(e.limit ?? 0)}`
    case 'TooManyFilesError': return `${other} has too many files waiting to be accepted; try again later`
    case 'FileCancelledError': return e.by === 'remote' ? `${other} cancelled it` : 'You cancelled it'
    case 'FileIntegrityError': return 'It did not verify: its bytes do not match its SHA-256, so nothing was saved'
    case 'FileUnavailableError': return 'Nobody who has it is here any more. What arrived is kept: getting it again continues from there'
    case 'FileStorageError': return 'This browser could not store it (storage full, or blocked for this site)'
    case 'PeerNotFoundError': return `${other} left and did not come back`
    case 'RoomClosedError': return 'You left the room'
    default: return `It failed: ${e?.name ?? String(err)}`
  }
}

interface Row {
  li: HTMLLIElement
  bar: HTMLProgressElement
  status: HTMLElement
  actions: HTMLElement
  url?: string
}

export class FilesView {
  private readonly dir: Directory
  private readonly list = byId<HTMLUListElement>('file-list')
  private readonly empty = byId<HTMLElement>('file-empty')
  private readonly drop = byId<HTMLElement>('file-drop')
  private readonly input = byId<HTMLInputElement>('file-input')
  private readonly target = byId<HTMLSelectElement>('file-to')
  private readonly note = byId<HTMLElement>('file-note')
  private room?: Room
  private self = ''
  private members: string[] = []
  private listeners?: AbortController
  private readonly rows = new Map<string, Row>()
  private dragDepth = 0

  constructor (dir: Directory) {
    this.dir = dir
    this.input.addEventListener('change', () => {
      for (const f of this.input.files ?? []) void this.send(f)
      this.input.value = ''
    })
    // a file dropped anywhere on the page goes to the panel's target
    document.addEventListener('dragenter', (e) => { if (this.carriesFiles(e)) { this.dragDepth++; this.drop.dataset.state = 'over' } })
    document.addEventListener('dragleave', () => { if (--this.dragDepth <= 0) { this.dragDepth = 0; delete this.drop.dataset.state } })
    document.addEventListener('dragover', (e) => { if (this.carriesFiles(e)) e.preventDefault() })
    document.addEventListener('drop', (e) => {
      if (!this.carriesFiles(e)) return
      e.preventDefault()
      this.dragDepth = 0
      delete this.drop.dataset.state
      for (const f of e.dataTransfer?.files ?? []) void this.send(f)
    })
    this.renderTargets()
  }

  /** Shows the files of `room` (a new room starts with an empty list). */
  attach (room: Room, self: string): void {
    this.detach()
    this.room = room
    this.self = self
    this.members = room.peers().filter((p) => p.path === 'direct').map((p) => p.peerId)
    const controller = new AbortController()
    const opts = { signal: controller.signal }
    room.addEventListener('file', (e) => { this.incoming(e.detail) }, opts)
    room.addEventListener('file:offer', (e) => { this.offer(e.detail) }, opts)
    room.addEventListener('peer:join', (e) => { if (!this.members.includes(e.detail.peerId)) this.members.push(e.detail.peerId); this.renderTargets() }, opts)
    room.addEventListener('peer:leave', (e) => { this.members = this.members.filter((p) => p !== e.detail.peerId); this.renderTargets() }, opts)
    this.listeners = controller
    this.renderTargets()
  }

  detach (): void {
    this.listeners?.abort()
    this.room = undefined
    this.members = []
    for (const row of this.rows.values()) if (row.url !== undefined) URL.revokeObjectURL(row.url)
    this.rows.clear()
    this.list.replaceChildren()
    this.renderTargets()
  }

  /** Sends or shares `file` as the panel's target says. */
  async send (file: File): Promise<void> {
    const room = this.room
    if (room === undefined) return
    const target: Target = this.target.value
    this.showNote()
    try {
      if (target === 'share') {
        const row = this.row(`share:${file.name}:${file.size}:${file.lastModified}`, 'share', file.name, file.size, ['Shared with the room · hashing it…'])
        const shared = await room.shareFile(file)
        this.rows.delete(`share:${file.name}:${file.size}:${file.lastModified}`)
        row.li.dataset.fileId = shared.id
        row.li.dataset.state = 'done'
        row.bar.hidden = true
        this.setSub(row, ['Shared with the room: anyone here can get it, from everyone who has it'])
        row.status.replaceChildren(this.verified(shared.id, 'SHA-256 of what you shared'))
        return
      }
      const to = target === 'everyone' ? this.members : [target]
      if (to.length === 0) {
        this.showNote('Nobody else is connected yet: invite someone, then send.')
        return
      }
      for (const peer of to) this.outgoing(room.sendFile(peer, file), peer)
    } catch (err) {
      this.showNote(`Could not send ${file.name}: ${failureWords(err, 'them')}`)
    }
  }

  // --- rows ---------------------------------------------------------------------------------

  private outgoing (t: FileTransfer, to: string): void {
    const row = this.row(t.id, 'out', t.name, t.size, ['to ', { peer: to }])
    this.actions(row, [['Cancel', () => { t.cancel() }]])
    const other = (): string => this.dir.nameOf(to)
    row.status.textContent = `Waiting for ${other()} to accept`
    this.follow(t, row, (state) => {
      if (state === 'offered') return `Waiting for ${other()} to accept`
      if (state === 'resuming') return `Resuming: waiting for ${other()}'s connection to come back`
      return undefined
    })
    t.done.then(({ sha256 }) => {
      this.actions(row, [])
      row.status.replaceChildren(this.verified(sha256, `${other()} computed this SHA-256 of what arrived`), ` Delivered to ${other()}`)
    }, (err) => { this.fail(row, err, other()) })
  }

  private incoming (f: IncomingFile): void {
    const row = this.row(f.id, 'in', f.name, f.size, ['from ', { peer: f.from }])
    const other = (): string => this.dir.nameOf(f.from)
    row.status.textContent = `${other()} wants to send you this file`
    this.actions(row, [
      ['Accept', () => { this.accept(f, row, f.accept()) }, 'primary'],
      ['Decline', () => { f.reject(); this.actions(row, []); row.status.textContent = 'You declined it'; row.li.dataset.state = 'rejected' }]
    ])
    this.follow(f, row, (state) => this.downloadState(f, state, `${other()}'s connection`))
    f.addEventListener('state', (e) => {
      // the sender cancelled before we answered
      if (e.detail.state === 'cancelled' && f.bytes === 0) { this.actions(row, []); row.status.textContent = `${other()} cancelled it` }
    })
  }

  private offer (o: FileOffer): void {
    const row = this.row(o.id, 'share', o.name, o.size, this.offerSub(o))
    row.status.textContent = 'Shared with the room'
    this.actions(row, [['Get', () => { this.accept(o, row, o.fetch()) }, 'primary']])
    this.follow(o, row, (state) => this.downloadState(o, state, 'the connection'))
    o.addEventListener('progress', () => { this.setSub(row, this.offerSub(o)) })
  }

  private offerSub (o: FileOffer): Array<string | { peer: string }> {
    const n = o.holders().length
    return ['shared by ', { peer: o.from }, n > 1 ? ` · ${n} people have it` : '']
  }

  private downloadState (d: FileDownload, state: FileTransferState, connection: string): string | undefined {
    if (state === 'resuming') return `Resuming: waiting for ${connection} to come back (${Math.floor(d.bytes * 100 / Math.max(1, d.size))} % kept)`
    if (state === 'receiving' && d.keptBytes > 0) return `Resumed from ${formatBytes(d.keptBytes)} kept in this browser`
    return undefined
  }

  private accept (d: FileDownload, row: Row, result: Promise<File>): void {
    this.actions(row, [['Cancel', () => { d.cancel() }]])
    row.status.textContent = 'Starting…'
    result.then((file) => {
      this.actions(row, [])
      row.url = URL.createObjectURL(file)
      const link = h('a', 'btn secondary download', 'Download')
      link.href = row.url
      link.download = file.name
      link.prepend(icon('i-download'))
      row.status.replaceChildren(this.verified(d.sha256, 'Every piece and the whole file matched this SHA-256'), ` ${formatBytes(file.size)}`)
      row.actions.replaceChildren(link)
    }, (err) => {
      const from = (d as IncomingFile).from ?? (d as FileOffer).from
      this.fail(row, err, this.dir.nameOf(from))
    })
  }

  /** Progress bar, rate, time left and state words, as events come. */
  private follow (t: Pick<FileDownload, 'state' | 'addEventListener'>, row: Row, words: (state: FileTransferState) => string | undefined): void {
    t.addEventListener('progress', (e) => {
      row.bar.hidden = false
      row.bar.value = e.detail.bytes
      if (row.li.dataset.state === 'resuming') return
      if (t.state === 'sending' || t.state === 'receiving') {
        const extra = words(t.state)
        row.status.textContent = progressWords(e.detail.bytes, e.detail.total, e.detail.bytesPerSecond) + (extra !== undefined ? ` · ${extra}` : '')
      }
    })
    t.addEventListener('state', (e) => {
      const state = e.detail.state
      row.li.dataset.state = state
      const extra = words(state)
      if (extra !== undefined) row.status.textContent = extra
      else if (state === 'sending' || state === 'receiving') row.status.textContent = `${STATE_WORDS[state]}…`
    })
  }

  private fail (row: Row, err: unknown, other: string): void {
    this.actions(row, [])
    row.li.dataset.state = (err as Error)?.name === 'FileRejectedError' ? 'rejected' : (err as Error)?.name === 'FileCancelledError' ? 'cancelled' : 'failed'
    row.status.textContent = failureWords(err, other)
  }

  private verified (sha256: string, why: string): HTMLElement {
    const badge = h('span', 'verified')
    badge.append(icon('i-check'), 'Verified')
    badge.title = `${why}:\n${sha256}`
    badge.dataset.sha256 = sha256
    return badge
  }

  private row (id: string, direction: 'out' | 'in' | 'share', name: string, size: number, sub: Array<string | { peer: string }>): Row {
    const li = h('li', 'file-row')
    li.dataset.direction = direction
    li.dataset.fileId = id
    li.dataset.state = 'offered'
    const head = h('div', 'file-head')
    head.append(icon(direction === 'in' ? 'i-download' : direction === 'out' ? 'i-upload' : 'i-file'), h('span', 'file-name', name), h('span', 'file-size', formatBytes(size)))
    head.title = name
    const subEl = h('div', 'file-sub')
    const bar = h('progress', 'file-bar')
    bar.max = Math.max(1, size)
    bar.value = 0
    bar.hidden = true
    bar.setAttribute('aria-label', `Progress of ${name}`)
    const status = h('div', 'file-status')
    status.setAttribute('aria-live', 'polite')
    const actions = h('div', 'file-actions')
    li.append(head, subEl, bar, status, actions)
    const row: Row = { li, bar, status, actions }
    this.setSub(row, sub)
    this.rows.set(id, row)
    this.list.prepend(li)
    this.empty.hidden = true
    return row
  }

  private setSub (row: Row, parts: Array<string | { peer: string }>): void {
    const el = row.li.querySelector('.file-sub') as HTMLElement
    el.replaceChildren(...parts.map((p) => typeof p === 'string' ? p : nameTag(this.dir, p.peer, this.self)))
  }

  private actions (row: Row, buttons: Array<[string, () => void, string?]>): void {
    row.actions.replaceChildren(...buttons.map(([label, onClick, kind]) => {
      const b = h('button', `btn ${kind ?? 'ghost'} small`, label)
      b.type = 'button'
      b.addEventListener('click', onClick)
      return b
    }))
  }

  private renderTargets (): void {
    const previous = this.target.value
    const options: Array<[string, string]> = [
      ['everyone', this.members.length === 1 ? `${this.dir.nameOf(this.members[0])} (everyone here)` : `Everyone here (${this.members.length}), each accepts`],
      ['share', 'Share with the room (anyone gets it from everyone who has it)'],
      ...this.members.map((p): [string, string] => [p, `${this.dir.nameOf(p)} only`])
    ]
    this.target.replaceChildren(...options.map(([value, label]) => { const o = h('option', undefined, label); o.value = value; return o }))
    this.target.value = options.some(([v]) => v === previous) ? previous : 'everyone'
    this.drop.toggleAttribute('data-disabled', this.room === undefined)
    this.input.disabled = this.room === undefined
    this.empty.hidden = this.list.childElementCount > 0
  }

  private showNote (text?: string): void {
    this.note.textContent = text ?? 'Files go straight to each person over the direct connection, checked piece by piece against their SHA-256.'
    this.note.dataset.tone = text === undefined ? '' : 'warn'
  }

  private carriesFiles (e: DragEvent): boolean {
    return this.room !== undefined && (e.dataTransfer?.types.includes('Files') ?? false)
  }
}
