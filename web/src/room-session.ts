/**
 * The room this page is in: joining and leaving it, and wiring its events, rules and counters
 * to the views. One at a time; switching rooms leaves the previous one first.
 */
import { describeRoom, errorText, sameRoom } from './config.js'
import { duration, plural, renameAll } from './dom.js'
import { formatBytes } from './files-view.js'
import { decodeMessage, encodeMessage, encodedBytes } from './payload.js'
import { sendProblem } from './problems.js'
import type { ChatView, ComposerState } from './chat-view.js'
import type { FilesView } from './files-view.js'
import type { MediaView } from './media-view.js'
import type { RoomChoice } from './config.js'
import type { Directory } from './names.js'
import type { NetworkView } from './network-view.js'
import type { PeerStats, PeopleView } from './people-view.js'
import type { MeetingProgress } from './progress.js'
import type { LeaveReason, PeerPath, Room, RoomNode } from 'p2p-rooms'

export interface RoomViews {
  people: PeopleView
  /** The Files panel: follows the current room's files. */
  files: FilesView
  /** The call: what we stream, and a tile per person streaming to us. */
  media: MediaView
  chat: ChatView
  network: NetworkView
  progress: MeetingProgress
  dir: Directory
}

export interface SessionEvents {
  /** A message from someone else arrived (for the unread count). */
  onIncoming(): void
  /** The room's members or their paths changed (for the header). */
  onChange(): void
}

const LEAVE_WORDS: Record<LeaveReason, string> = {
  left: ' left',
  unreachable: ' is unreachable (the relay no longer reaches them)',
  timeout: ' went silent and timed out'
}

const INTRO: Record<Room['type'], string> = {
  broadcast: 'Messages go straight to everyone here, not through the relay.',
  'one-way': 'One-way room: only the host posts, everyone reads.',
  pairwise: 'Pairwise room: each message goes to the one person you pick in "To", and nobody else.'
}

/** Members reached this soon after we joined were already here: "is here", not "joined". */
const ARRIVAL_MS = 5000
/** Host changes closer together than this are one change to the reader (a newcomer meets several members). */
const HOST_SETTLE_MS = 1500
/** Joins closer together than this share one announcement of our picked name. */
const PROFILE_DEBOUNCE_MS = 400

export class RoomSession {
  private readonly node: RoomNode
  private readonly views: RoomViews
  private readonly events: SessionEvents
  private room?: Room
  private choice?: RoomChoice
  /** Aborting it detaches every listener of the current room. */
  private listeners?: AbortController
  /** Members that sent `peer:join` and have not left: the ones we can reach. */
  private readonly ready = new Set<string>()
  private readonly paths = new Map<string, PeerPath>()
  /** Our own event times per member, in ms since we joined: the timeline until the library gives one. */
  private readonly seen = new Map<string, Record<string, number>>()
  private joinedAt = 0
  private announcedHost?: string
  /** Hosts reported by `host:change` since the last line about the host. */
  private hostChanges: string[] = []
  /** Whether a line about the host was shown in this room yet. */
  private hostAnnounced = false
  private hostTimer?: ReturnType<typeof setTimeout>
  private profileTimer?: ReturnType<typeof setTimeout>
  private firstDirect = false
  /** The name we picked (`undefined`: the generated one), carried in our messages. */
  private pickedName?: string

  constructor (node: RoomNode, views: RoomViews, events: SessionEvents) {
    this.node = node
    this.views = views
    this.events = events
  }

  get current (): Room | undefined {
    return this.room
  }

  get currentChoice (): RoomChoice | undefined {
    return this.choice
  }

  /** Members reachable directly now. */
  get directCount (): number {
    return [...this.ready].filter((p) => this.paths.get(p) === 'direct').length
  }

  /** Members seen but not reachable yet. */
  get connectingPeers (): string[] {
    return [...this.paths.keys()].filter((p) => !this.ready.has(p))
  }

  setPickedName (name: string | undefined): void {
    const changed = name !== this.pickedName
    this.pickedName = name
    if (changed && this.room !== undefined) this.announceProfile()
  }

  /** Leaves the current room (if another) and joins `choice`. */
  async enter (choice: RoomChoice): Promise<void> {
    const { people, chat, network, progress } = this.views
    if (sameRoom(this.choice, choice)) return

    const previous = this.room
    const previousChoice = this.choice
    this.room = undefined
    this.choice = choice
    this.listeners?.abort()
    this.views.files.detach()
    this.views.media.detach()
    clearTimeout(this.hostTimer)
    clearTimeout(this.profileTimer)
    this.ready.clear()
    this.paths.clear()
    this.seen.clear()
    this.firstDirect = false
    people.clear()
    chat.clear()
    this.refreshComposer()
    progress.reset('looking')
    progress.set('looking', 'active')
    if (previous !== undefined && previousChoice !== undefined) {
      await previous.leave()
      network.add('info', `left room ${describeRoom(previousChoice)}`)
    }
    let joined: Room
    try {
      joined = await this.node.joinRoom(choice.name, { type: choice.type, ...(choice.secret !== undefined ? { secret: choice.secret } : {}) })
    } catch (err) {
      // not in any room now: the same choice may be tried again
      this.choice = undefined
      progress.set('looking', 'failed', 'Could not join the room')
      throw err
    }
    this.joinedAt = performance.now()
    this.listeners = this.listen(joined)
    this.views.files.attach(joined, this.node.peerId)
    this.views.media.attach(joined, this.node.peerId)
    this.room = joined
    this.announcedHost = joined.host
    this.hostChanges = []
    this.hostAnnounced = false
    people.setHost(joined.host, joined.type !== 'pairwise')
    chat.setPlaceholder(joined.type === 'pairwise' ? 'Message the person in "To"' : choice.name.length <= 20 ? `Message ${choice.name}` : 'Write a message')
    chat.setCheck((text) => this.tooLong(text))
    chat.addQuiet([`You joined ${choice.name.length > 80 ? `${choice.name.slice(0, 79)}…` : choice.name}. ${INTRO[joined.type]}` +
      (joined.private ? ' It is private: only people with its secret can join, everything is encrypted with it, and the relay never learns its name.' : '')], 'self')
    network.add('info', `joined room ${describeRoom(choice)}`)
    this.refresh()
  }

  /** Publishes `text` (or, in a pairwise room, sends it to `to`); says plainly why not if it fails. */
  async send (text: string, to?: string): Promise<boolean> {
    const r = this.room
    if (r === undefined) return false
    const { chat, network, dir } = this.views
    const msg = { kind: 'chat' as const, text, sentAt: Date.now(), ...(this.pickedName !== undefined ? { name: this.pickedName } : {}) }
    try {
      let note: string | undefined
      if (r.type === 'pairwise') {
        if (to === undefined || to === '') {
          chat.showSendError('Pick who gets it in "To" first.')
          return false
        }
        await r.send(to, encodeMessage(msg))
        note = `to ${dir.nameOf(to)} only`
      } else {
        const n = (await r.publish(encodeMessage(msg))).recipients.length
        if (n === 0) note = 'nobody else is connected yet: nobody received this'
      }
      chat.addMessage({ from: this.node.peerId, text, mine: true, sentAt: msg.sentAt, ...(note !== undefined ? { note } : {}) })
      return true
    } catch (err) {
      chat.showSendError(sendProblem(err, { maxMessageBytes: r.maxMessageBytes, bytes: encodedBytes(msg), hostName: dir.nameOf(r.host), roomType: r.type }))
      network.add('error', `${r.type === 'pairwise' ? 'send' : 'publish'} failed: ${errorText(err)}`)
      return false
    } finally {
      this.refresh()
    }
  }

  /** Hands the host role to `peerId` (a button on its row while we are host). */
  async handOff (peerId: string): Promise<void> {
    const r = this.room
    if (r === undefined) return
    try {
      await r.handOffHost(peerId)
      // said at once, and not again when the host:change it causes settles
      this.announcedHost = peerId
      this.hostAnnounced = true
      this.views.chat.addQuiet(['You made ', { peer: peerId }, ' the host'], 'host')
      this.views.network.add('host', 'you handed the host role to ', { peer: peerId })
    } catch (err) {
      this.views.chat.addError(`Could not make ${this.views.dir.nameOf(peerId)} the host: ${errorText(err)}`)
      this.views.network.add('error', `hand-off failed: ${errorText(err)}`)
    }
  }

  /** Counters, RTTs, candidate types and the composer, from `room.stats()`: every second and after changes. */
  refresh (): void {
    const r = this.room
    const stats = r?.stats()
    const peerStats = stats?.peers as Record<string, PeerStats> | undefined
    if (peerStats !== undefined) this.views.people.setStats(peerStats)
    this.views.network.renderCounters(stats)
    this.views.network.renderPeers([...this.paths].map(([peerId, path]) => ({ peerId, path })), peerStats, this.seen)
    this.refreshComposer()
  }

  /** Stops listening: the page is going away (the node's `stop()` leaves the room). */
  detach (): void {
    this.listeners?.abort()
  }

  private since (): number {
    return Math.round(performance.now() - this.joinedAt)
  }

  private mark (peerId: string, phase: string): void {
    const t = this.seen.get(peerId) ?? {}
    if (t[phase] === undefined) t[phase] = this.since()
    this.seen.set(peerId, t)
  }

  private listen (r: Room): AbortController {
    const controller = new AbortController()
    const opts = { signal: controller.signal }
    const { people, chat, network, progress, dir } = this.views

    r.addEventListener('peer:discover', ({ detail: { peerId, path } }) => {
      this.mark(peerId, 'discovered')
      this.paths.set(peerId, path)
      people.set(peerId, path, path === 'direct' ? 'joining' : 'discovered')
      network.add('info', 'discovered ', { peer: peerId }, ` (${path})`)
      if (!this.firstDirect) {
        progress.set('looking', 'done', 'Found someone in the room', `${duration(this.since())}`)
        progress.set('connecting', 'active')
      }
      this.events.onChange()
    }, opts)

    // only for joined members: their direct connection dropped (healing) or came back
    r.addEventListener('peer:update', ({ detail: { peerId, path } }) => {
      this.paths.set(peerId, path)
      if (path === 'direct') {
        people.set(peerId, 'direct', 'ready')
        network.add('info', 'direct connection to ', { peer: peerId }, ' restored')
      } else {
        people.set(peerId, 'relayed', 'healing')
        network.add('warn', 'direct connection to ', { peer: peerId }, ' dropped, reconnecting')
      }
      this.events.onChange()
    }, opts)

    r.addEventListener('peer:join', ({ detail: { peerId, path } }) => {
      this.ready.add(peerId)
      this.paths.set(peerId, path)
      this.mark(peerId, 'joined')
      const t = this.seen.get(peerId) ?? {}
      const took = t.discovered !== undefined && t.joined !== undefined ? t.joined - t.discovered : undefined
      people.set(peerId, path, 'ready')
      const arriving = this.since() < ARRIVAL_MS
      chat.addQuiet([{ peer: peerId }, arriving ? ' is here' : ' joined'], 'join')
      network.add('join', { peer: peerId }, ` joined${took !== undefined ? `: direct ${took} ms after discovery` : ''}`)
      if (!this.firstDirect) {
        this.firstDirect = true
        if (progress.state('looking') !== 'done') progress.set('looking', 'done', 'Found someone in the room')
        progress.set('connecting', 'done', 'Connected', took !== undefined ? duration(took) : '')
        progress.set('direct', 'done', undefined, `${duration(this.since())} after joining`)
      }
      this.scheduleProfile(peerId)
      this.events.onChange()
      this.refresh()
    }, opts)

    r.addEventListener('peer:leave', ({ detail: { peerId, reason } }) => {
      const wasMember = this.ready.delete(peerId)
      this.paths.delete(peerId)
      this.seen.delete(peerId)
      people.leave(peerId, reason === 'left' ? 'Left' : reason === 'timeout' ? 'Timed out' : 'Unreachable')
      // someone seen but never reached leaves quietly: they never were in the conversation
      if (wasMember) chat.addQuiet([{ peer: peerId }, LEAVE_WORDS[reason] ?? ` left (${reason})`], 'leave')
      network.add('leave', { peer: peerId }, ` ${reason}`)
      setTimeout(() => { if (!this.paths.has(peerId)) dir.palette.release(peerId) }, 3000)
      this.events.onChange()
      this.refreshComposer()
    }, opts)

    r.addEventListener('message', ({ detail: { from, data, history } }) => {
      const msg = decodeMessage(data)
      if (dir.setPicked(from, msg.name)) renameAll(dir, from)
      if (msg.kind === 'profile') return
      chat.addMessage({
        from,
        text: msg.text,
        history,
        ...(msg.sentAt !== undefined ? { sentAt: msg.sentAt } : {}),
        ...(r.type === 'pairwise' ? { note: 'to you only' } : {})
      })
      if (!history) this.events.onIncoming()
    }, opts)

    r.addEventListener('host:change', ({ detail: { host, previous } }) => {
      people.setHost(host, r.type !== 'pairwise')
      this.hostChanges.push(host)
      network.add('host', { peer: host }, ' is the host (was ', { peer: previous }, ')')
      this.refreshComposer()
      // one line once it settles: a newcomer meeting several members sees several changes in a second
      clearTimeout(this.hostTimer)
      this.hostTimer = setTimeout(() => { this.announceHost(r) }, HOST_SETTLE_MS)
    }, opts)

    // files are handled in the Files panel; the conversation says they arrived
    r.addEventListener('file', ({ detail: f }) => {
      chat.addQuiet([{ peer: f.from }, ` wants to send you ${f.name} (${formatBytes(f.size)}): accept it under Files`], 'info')
      this.events.onIncoming()
    }, opts)
    r.addEventListener('file:offer', ({ detail: o }) => {
      chat.addQuiet([{ peer: o.from }, ` shared ${o.name} (${formatBytes(o.size)}) with the room: get it under Files`], 'info')
    }, opts)

    r.addEventListener('gap', ({ detail: { from, first, last } }) => {
      const n = last - first + 1
      chat.addQuiet([`${plural(n, 'message')} from `, { peer: from }, ' never arrived'], 'warn')
      network.add('warn', `gap: ${n === 1 ? `message ${first}` : `messages ${first}–${last}`} from `, { peer: from }, ' will never arrive (lost, or dropped by a limit)')
    }, opts)

    controller.signal.addEventListener('abort', () => {
      clearTimeout(this.hostTimer)
      clearTimeout(this.profileTimer)
    })
    return controller
  }

  /**
   * One quiet line per settled change: a newcomer meeting several members sees the host change
   * several times in a second (itself, then each earlier member), and a hand-off right after
   * arriving changes it back; the reader wants to know who hosts now, once.
   */
  private announceHost (r: Room): void {
    const changes = this.hostChanges
    this.hostChanges = []
    if (this.room !== r || changes.length === 0) return
    const host = r.host
    // news: another host than the last one announced, or a round trip through someone else
    if (host === this.announcedHost && changes.every((h) => h === host)) return
    const first = !this.hostAnnounced && host !== this.node.peerId
    this.announcedHost = host
    this.hostAnnounced = true
    if (r.type === 'pairwise') return
    if (host === this.node.peerId) this.views.chat.addQuiet(['You are now the host'], 'host')
    else this.views.chat.addQuiet([{ peer: host }, first ? ' hosts this room' : ' is now the host'], 'host')
  }

  /**
   * Tells members our picked name: they know the generated one already (it follows from our
   * peer ID), so only a picked name is announced, once per burst of joins.
   */
  private scheduleProfile (newcomer: string): void {
    if (this.pickedName === undefined) return
    const r = this.room
    if (r?.type === 'pairwise') {
      r.send(newcomer, encodeMessage({ kind: 'profile', name: this.pickedName })).catch(() => {})
      return
    }
    clearTimeout(this.profileTimer)
    this.profileTimer = setTimeout(() => { this.announceProfile() }, PROFILE_DEBOUNCE_MS)
  }

  private announceProfile (): void {
    const r = this.room
    if (r === undefined) return
    const payload = encodeMessage({ kind: 'profile', ...(this.pickedName !== undefined ? { name: this.pickedName } : {}) })
    if (r.type === 'pairwise') {
      for (const peer of this.ready) r.send(peer, payload).catch(() => {})
    } else if (r.type === 'broadcast' || r.host === this.node.peerId) {
      // one-way rooms: only the host's messages are accepted, so only the host announces
      if (this.ready.size > 0) r.publish(payload).catch((err) => { this.views.network.add('warn', `name announcement not sent: ${errorText(err)}`) })
    }
  }

  private tooLong (text: string): string | undefined {
    const r = this.room
    if (r === undefined) return undefined
    const bytes = encodedBytes({ kind: 'chat', text, sentAt: Date.now(), ...(this.pickedName !== undefined ? { name: this.pickedName } : {}) })
    if (bytes <= r.maxMessageBytes) return undefined
    return `Too long to send: ${bytes.toLocaleString('en')} bytes, and a message carries at most ${r.maxMessageBytes.toLocaleString('en')}. Shorten it by ${(bytes - r.maxMessageBytes).toLocaleString('en')} bytes.`
  }

  private refreshComposer (): void {
    const { chat } = this.views
    const r = this.room
    chat.setTargets(r?.type === 'pairwise' ? [...this.ready] : undefined)
    chat.setComposer(this.composerState(r))
  }

  private composerState (r: Room | undefined): ComposerState {
    if (r === undefined) return { enabled: false, reason: 'Joining the room…' }
    const { dir } = this.views
    if (r.type === 'one-way') {
      return r.host === this.node.peerId
        ? { enabled: true, reason: 'One-way room: you are the host, so only you can post.' }
        : { enabled: false, reason: `One-way room: only the host (${dir.nameOf(r.host)}) can post. You can read.`, tone: 'info' }
    }
    if (r.type === 'pairwise') {
      return this.ready.size === 0
        ? { enabled: false, reason: 'Pairwise room: messages go to one person at a time. Waiting for someone to join…', tone: 'info' }
        : { enabled: true, reason: 'Only the person picked in "To" receives it.' }
    }
    return { enabled: true, ...(this.ready.size === 0 ? { reason: 'Nobody else is connected yet: invite someone, or open this room in another tab.' } : {}) }
  }
}
