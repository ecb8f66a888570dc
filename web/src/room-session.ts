/**
 * The room this page is in: joining and leaving it, and wiring its events, rules and counters
 * to the views. One at a time; switching rooms leaves the previous one first.
 */
import { MAX_ROOM_NAME_LENGTH, describeRoom, errorName, errorText, sameRoom } from './config.js'
import { shortId } from './dom.js'
import type { RoomChoice } from './config.js'
import type { ChatView, ComposerState } from './chat-view.js'
import type { PeerList } from './peers-view.js'
import type { StatsView } from './stats-view.js'
import type { EventLog } from './ui.js'
import type { LeaveReason, Room, RoomNode } from 'p2p-rooms'

export interface RoomViews {
  peers: PeerList
  chat: ChatView
  stats: StatsView
  log: EventLog
}

const LEAVE_REASONS: Record<LeaveReason, string> = {
  left: 'left the room',
  unreachable: 'unreachable: the relay no longer reaches it',
  timeout: 'timed out: silent for too long'
}

const INTRO: Record<Room['type'], string> = {
  broadcast: 'Messages go to every peer shown as direct.',
  'one-way': 'One-way room: only the host posts, everyone reads.',
  pairwise: 'Pairwise room: each message goes to the one peer you pick in "To", and nobody else.'
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

export class RoomSession {
  private readonly node: RoomNode
  private readonly views: RoomViews
  private room?: Room
  private choice?: RoomChoice
  /** Aborting it detaches every listener of the current room. */
  private listeners?: AbortController
  /** Peers that sent `peer:join` and have not left: the ones we can reach. */
  private readonly ready = new Set<string>()
  private readonly discoveredAt = new Map<string, number>()

  constructor (node: RoomNode, views: RoomViews) {
    this.node = node
    this.views = views
  }

  get current (): Room | undefined {
    return this.room
  }

  /** Leaves the current room (if another) and joins `choice`. */
  async enter (choice: RoomChoice): Promise<void> {
    const { peers, chat, log } = this.views
    if (choice.name.length === 0 || choice.name.length > MAX_ROOM_NAME_LENGTH) {
      chat.addError(`A room name has 1 to ${MAX_ROOM_NAME_LENGTH} characters.`)
      return
    }
    if (sameRoom(this.choice, choice)) return

    const previous = this.room
    const previousChoice = this.choice
    this.room = undefined
    this.choice = choice
    this.listeners?.abort()
    this.ready.clear()
    this.discoveredAt.clear()
    peers.clear()
    this.refreshComposer()
    if (previous !== undefined && previousChoice !== undefined) {
      await previous.leave()
      log.add('info', `left room ${describeRoom(previousChoice)}`)
    }
    let joined: Room
    try {
      joined = await this.node.joinRoom(choice.name, { type: choice.type, ...(choice.secret !== undefined ? { secret: choice.secret } : {}) })
    } catch (err) {
      // not in any room now: the same choice may be tried again
      this.choice = undefined
      throw err
    }
    this.listeners = this.listen(joined)
    this.room = joined
    peers.setHost(joined.host)
    chat.addSystem(`You are in room ${describeRoom(choice)}. ${INTRO[joined.type]}` +
      (joined.private ? ' 🔒 Private: everything is encrypted with the secret; the relay never learns the room\'s name.' : ''))
    log.add('info', `joined room ${describeRoom(choice)}`)
    this.refresh()
  }

  /** Publishes `text` (or, in a pairwise room, sends it to `to`); says plainly why not if it fails. */
  async send (text: string, to?: string): Promise<boolean> {
    const r = this.room
    if (r === undefined) return false
    const { chat, log } = this.views
    try {
      let note: string
      if (r.type === 'pairwise') {
        if (to === undefined || to === '') throw new Error('pick a peer in "To" first')
        await r.send(to, text)
        note = `→ ${shortId(to)} only`
      } else {
        const n = (await r.publish(text)).recipients.length
        note = n === 0 ? 'no direct peer yet: nobody received this' : `→ ${n} peer${n === 1 ? '' : 's'}`
      }
      chat.addMessage({ from: this.node.peerId, text, mine: true, note })
      return true
    } catch (err) {
      chat.addError(`Not sent: ${this.whyNotSent(err, r, text)}. [${errorName(err)}]`)
      log.add('error', `${r.type === 'pairwise' ? 'send' : 'publish'} failed: ${errorText(err)}`)
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
      this.views.log.add('host', 'you handed the host role to ', { peer: peerId })
    } catch (err) {
      this.views.chat.addError(`Could not hand off the host role: ${errorText(err)}`)
      this.views.log.add('error', `hand-off failed: ${errorText(err)}`)
    }
  }

  /** Counters, RTTs and the composer, from `room.stats()`: called every second and after changes. */
  refresh (): void {
    const r = this.room
    const stats = r?.stats()
    this.views.stats.render(stats)
    if (stats !== undefined) this.views.peers.setStats(stats.peers)
    this.refreshComposer()
  }

  /** Stops listening: the page is going away (the node's `stop()` leaves the room). */
  detach (): void {
    this.listeners?.abort()
  }

  private listen (r: Room): AbortController {
    const controller = new AbortController()
    const opts = { signal: controller.signal }
    const { peers, chat, log } = this.views

    r.addEventListener('peer:discover', ({ detail: { peerId, path } }) => {
      this.discoveredAt.set(peerId, performance.now())
      peers.set(peerId, path, path === 'direct' ? 'joining' : 'discovered')
      log.add('info', 'discovered ', { peer: peerId }, ` (${path})`)
    }, opts)

    // only for joined peers: their direct connection dropped (healing) or came back
    r.addEventListener('peer:update', ({ detail: { peerId, path } }) => {
      if (path === 'direct') {
        peers.set(peerId, 'direct', 'ready')
        log.add('info', 'direct WebRTC connection to ', { peer: peerId }, ' restored')
      } else {
        peers.set(peerId, 'relayed', 'healing')
        log.add('error', 'direct connection to ', { peer: peerId }, ' dropped, healing…')
      }
    }, opts)

    r.addEventListener('peer:join', ({ detail: { peerId } }) => {
      this.ready.add(peerId)
      const since = this.discoveredAt.get(peerId)
      const ms = since === undefined ? undefined : Math.round(performance.now() - since)
      peers.set(peerId, 'direct', 'ready', ms)
      log.add('join', { peer: peerId }, ms === undefined ? ' joined (direct)' : ` joined: direct ${ms} ms after discovery`)
      this.refresh()
    }, opts)

    r.addEventListener('peer:leave', ({ detail: { peerId, reason } }) => {
      this.ready.delete(peerId)
      this.discoveredAt.delete(peerId)
      peers.leave(peerId, LEAVE_REASONS[reason] ?? reason)
      log.add('leave', { peer: peerId }, ` ${LEAVE_REASONS[reason] ?? reason} (${reason})`)
      this.refreshComposer()
    }, opts)

    r.addEventListener('message', ({ detail: { from, data, history } }) => {
      chat.addMessage({ from, text: decoder.decode(data), mine: from === this.node.peerId, history, note: r.type === 'pairwise' ? 'to you only' : undefined })
    }, opts)

    r.addEventListener('host:change', ({ detail: { host, previous } }) => {
      peers.setHost(host)
      const self = this.node.peerId
      const was = previous === self ? ['you'] : [{ peer: previous }]
      if (host === self) log.add('host', '♛ you are now the host (was ', ...was, ')')
      else log.add('host', '♛ ', { peer: host }, ' is now the host (was ', ...was, ')')
      this.refreshComposer()
    }, opts)

    r.addEventListener('gap', ({ detail: { from, first, last } }) => {
      const n = last - first + 1
      log.add('warn', `gap: ${n === 1 ? `message ${first}` : `messages ${first}–${last}`} from `, { peer: from }, ' will never arrive (lost, or dropped by a limit)')
    }, opts)

    return controller
  }

  private refreshComposer (): void {
    const { chat } = this.views
    const r = this.room
    chat.setTargets(r?.type === 'pairwise' ? [...this.ready] : undefined)
    chat.setComposer(this.composerState(r))
  }

  private composerState (r: Room | undefined): ComposerState {
    if (r === undefined) return { enabled: false, reason: 'joining the room…' }
    if (r.type === 'one-way') {
      return r.host === this.node.peerId
        ? { enabled: true, reason: 'One-way room: you are the host, so only you can post.' }
        : { enabled: false, reason: `One-way room: only the host (${shortId(r.host)}) can post. You can read.` }
    }
    if (r.type === 'pairwise') {
      return this.ready.size === 0
        ? { enabled: false, reason: 'Pairwise room: messages go to one peer at a time. Waiting for a peer to join…' }
        : { enabled: true, reason: 'Pairwise room: only the peer picked in "To" receives it.' }
    }
    return { enabled: true }
  }

  private whyNotSent (err: unknown, r: Room, text: string): string {
    switch (errorName(err)) {
      case 'MessageTooLargeError':
        return `too large (${encoder.encode(text).byteLength.toLocaleString('en')} bytes; a room message carries at most ${r.maxMessageBytes.toLocaleString('en')} bytes)`
      case 'RateLimitedError':
        return `too many messages at once: try again in ${Math.ceil((err as { retryAfterMs?: number }).retryAfterMs ?? 0)} ms`
      case 'NotHostError':
        return `only the host (${shortId(r.host)}) posts in a one-way room`
      case 'SessionTypeError':
        return `that does not fit a ${r.type} room`
      case 'PeerNotFoundError':
        return 'that peer is not (or no longer) a member of the room'
      case 'RoomClosedError':
        return 'you are no longer in this room'
      default:
        return errorText(err)
    }
  }
}
