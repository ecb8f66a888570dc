/**
 * A room against hand-made frames, with its node stubbed (src/room.ts takes a narrow
 * `RoomContext`): membership, the one-way rule, handoffs, presence, leaving, and the backlog's
 * order, in milliseconds with fake timers. Other members are played by their own `RoomMessages`,
 * which encode what a real member would send. (room.test.ts plays whole rooms against each other.)
 */
import { TypedEventEmitter } from 'main-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_DIAL_ATTEMPTS, DEFAULT_DIAL_BACKOFF_MS, DEFAULT_DIAL_TAKEOVER_MS, DEFAULT_DIAL_TIMEOUT_MS, DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_RELAYS, DEFAULT_PEER_TTL_MS, DEFAULT_PRESENCE_TIMEOUT_MS, DEFAULT_RESERVATION_TIMEOUT_MS } from '../../src/constants.js'
import { DEFAULT_FILE_RESUME_WINDOW_MS, DEFAULT_KEPT_FILE_TTL_MS, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PENDING_FILES } from '../../src/constants.js'
import { FileService } from '../../src/files/service.js'
import { MediaService } from '../../src/media/service.js'
import { RoomMessages } from '../../src/room-messages.js'
import { RoomImpl } from '../../src/room.js'
import { KIND_DATA, KIND_HANDOFF, KIND_HEARTBEAT, KIND_LEAVE, ROOM_HEADER_BYTES, decodeLabelled, encodeHandoff, encodeLabelled, roomTopics } from '../../src/wire.js'
import type { ResolvedRoomNodeOptions, RoomEvents, SessionType } from '../../src/index.js'
import type { RoomContext } from '../../src/room.js'
import type { RoomMessageKind } from '../../src/wire.js'

const SELF = 'peer-self'
const options: ResolvedRoomNodeOptions = {
  relays: [],
  iceServers: [],
  identity: 'ephemeral',
  announceInterval: DEFAULT_ANNOUNCE_INTERVAL_MS,
  peerTtl: DEFAULT_PEER_TTL_MS,
  reservationTimeout: DEFAULT_RESERVATION_TIMEOUT_MS,
  dialAttempts: DEFAULT_DIAL_ATTEMPTS,
  dialBackoff: DEFAULT_DIAL_BACKOFF_MS,
  dialTimeout: DEFAULT_DIAL_TIMEOUT_MS,
  dialTakeover: DEFAULT_DIAL_TAKEOVER_MS,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  heartbeatInterval: DEFAULT_HEARTBEAT_INTERVAL_MS,
  presenceTimeout: DEFAULT_PRESENCE_TIMEOUT_MS,
  maxRelays: DEFAULT_MAX_RELAYS,
  maxFileBytes: DEFAULT_MAX_FILE_BYTES,
  maxPendingFiles: DEFAULT_MAX_PENDING_FILES,
  keptFileTtl: DEFAULT_KEPT_FILE_TTL_MS,
  fileResumeWindow: DEFAULT_FILE_RESUME_WINDOW_MS,
  fileStorage: 'memory'
}
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

/** The node as a room sees it: its direct peers, the frames the room sent, a scripted backlog. */
class StubNode {
  readonly direct = new Set<string>()
  readonly links = new TypedEventEmitter<any>() as any
  readonly sent: Array<{ to: string, kind: number, body: Uint8Array }> = []
  readonly published: string[] = []
  backlog: () => Promise<Uint8Array[]> = async () => []

  constructor () {
    this.links.want = vi.fn()
    this.links.release = vi.fn()
    this.links.isDirect = (peer: string) => this.direct.has(peer)
    this.links.connection = () => undefined
    this.links.stats = () => ({ dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 })
    this.links.phases = () => ({})
  }

  context (): RoomContext {
    const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as any
    return {
      // the room's files attach to a file service that is never started: no protocol, no streams
      files: new FileService({ logger: { forComponent: () => log }, handle: async () => {}, unhandle: async () => {}, links: this.links }, options) as any,
      media: new MediaService({ logger: { forComponent: () => log } as any, serve: async () => async () => {}, send: async () => {} }, { iceServers: [] }),
      self: SELF,
      startedAt: 1,
      options,
      log: Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as any,
      pubsub: { subscribe: () => {}, unsubscribe: () => {}, publish: async (topic: string) => { this.published.push(topic); return { recipients: [] } } } as any,
      links: this.links,
      running: () => true,
      ownAddrs: () => [],
      sendFrame: async (to, frame) => {
        const labelled = decodeLabelled(frame)
        if (labelled === undefined) throw new Error('unlabelled frame')
        this.sent.push({ to, kind: labelled.rest[1], body: labelled.rest.subarray(ROOM_HEADER_BYTES) })
      },
      sendFrameNow: () => true,
      requestHistory: async () => this.backlog(),
      onLeft: () => {}
    }
  }
}

/** Another member: encodes what it sends into this room, and keeps its data for late joiners, as a room does. */
class Member {
  readonly peerId: string
  readonly rank: number
  private readonly messages: RoomMessages
  constructor (peerId: string, rank: number, type: SessionType = 'broadcast') {
    this.peerId = peerId
    this.rank = rank
    this.messages = new RoomMessages({ topic: roomTopics('test', type).room, maxMessageBytes: 1024, messagesPerSecond: 50, burst: 100, historySize: 10, historyRequestsPerMinute: 10 })
  }

  async frame (kind: RoomMessageKind, body: Uint8Array = new Uint8Array(0), rank = this.rank): Promise<Uint8Array> {
    const raw = await this.messages.encode(this.peerId, { kind, seq: kind === KIND_DATA ? this.messages.nextSeq() : 0, rank, settled: true }, body)
    if (kind === KIND_DATA) this.messages.sent(this.peerId, raw, true)
    return raw
  }
}

let node: StubNode
let room: RoomImpl
function open (type: SessionType = 'broadcast'): RoomImpl {
  room = new RoomImpl('test', { type, maxMessageBytes: 1024, messagesPerSecond: 50, burst: 100, historySize: 10, historyRequestsPerMinute: 10 }, node.context())
  room.start()
  return room
}
function record<K extends keyof RoomEvents> (type: K): Array<RoomEvents[K]['detail']> {
  const seen: Array<RoomEvents[K]['detail']> = []
  room.addEventListener(type, (e: any) => { seen.push(e.detail) })
  return seen
}
/** `m` is directly connected and says hello; resolves once the room had its say. */
async function meet (m: Member): Promise<void> {
  node.direct.add(m.peerId)
  await room.onFrame(m.peerId, await m.frame(KIND_HEARTBEAT))
  await vi.advanceTimersByTimeAsync(0)
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] })
  node = new StubNode()
})
afterEach(async () => {
  await room?.leave()
  vi.useRealTimers()
})

describe('room membership', () => {
  it('joins a member once it is direct, our hello went out and its hello arrived; publish then reaches it', async () => {
    open()
    const joins = record('peer:join')
    const bob = new Member('peer-bob', 100)
    await meet(bob)
    expect(joins).toEqual([{ peerId: 'peer-bob', path: 'direct' }])
    expect(node.sent.filter((f) => f.to === 'peer-bob' && f.kind === KIND_HEARTBEAT).length).toBeGreaterThanOrEqual(1)
    expect(room.peers()).toEqual([{ peerId: 'peer-bob', path: 'direct' }])
    expect((await room.publish('hi')).recipients).toEqual(['peer-bob'])
  })

  it('does not join a member that is not directly connected, and lists it as relayed', async () => {
    open()
    const joins = record('peer:join')
    const bob = new Member('peer-bob', 100)
    await room.onFrame(bob.peerId, await bob.frame(KIND_HEARTBEAT))
    expect(joins).toEqual([])
    expect(room.peers()).toEqual([{ peerId: 'peer-bob', path: 'relayed' }])
    expect((await room.publish('hi')).recipients).toEqual([])
  })

  it('hears a leave as peer:leave "left" and lets go of the peer', async () => {
    open()
    const leaves = record('peer:leave')
    const bob = new Member('peer-bob', 100)
    await meet(bob)
    await room.onFrame(bob.peerId, await bob.frame(KIND_LEAVE))
    expect(leaves).toEqual([{ peerId: 'peer-bob', reason: 'left' }])
    expect(node.links.release).toHaveBeenCalledWith('peer-bob', room)
  })

  it('lets a silent member go after presenceTimeout, and keeps one that keeps talking', async () => {
    open()
    const leaves = record('peer:leave')
    const bob = new Member('peer-bob', 100)
    const carol = new Member('peer-carol', 200)
    await meet(bob)
    await meet(carol)
    for (let t = 0; t < DEFAULT_PRESENCE_TIMEOUT_MS + DEFAULT_HEARTBEAT_INTERVAL_MS; t += DEFAULT_HEARTBEAT_INTERVAL_MS) {
      await room.onFrame(carol.peerId, await carol.frame(KIND_HEARTBEAT))
      await vi.advanceTimersByTimeAsync(DEFAULT_HEARTBEAT_INTERVAL_MS)
    }
    expect(leaves).toEqual([{ peerId: 'peer-bob', reason: 'timeout' }])
    // the bound: presenceTimeout plus one check interval
    expect(room.peers().map((p) => p.peerId)).toEqual(['peer-carol'])
  })
})

describe('room host and session rules', () => {
  it('makes the member with the lowest rank host, ourselves included, and keeps a member\'s first rank', async () => {
    open()
    const hosts = record('host:change')
    const early = new Member('peer-early', 1)
    await meet(early)
    expect(room.host).toBe('peer-early')
    // a later, lower claim changes nothing: only a handoff does
    const late = new Member('peer-late', Date.now() + 1000)
    await meet(late)
    await room.onFrame(late.peerId, await late.frame(KIND_HEARTBEAT, new Uint8Array(0), 0))
    expect(room.host).toBe('peer-early')
    expect(hosts.map((h) => h.host)).toEqual(['peer-early'])
  })

  it('in a one-way room, delivers data from the host and drops the rest', async () => {
    open('one-way')
    const messages = record('message')
    const host = new Member('peer-host', 1, 'one-way')
    const other = new Member('peer-other', Date.now() + 1000, 'one-way')
    await meet(host)
    await meet(other)
    await room.onFrame(other.peerId, await other.frame(KIND_DATA, bytes('not the host')))
    await room.onFrame(host.peerId, await host.frame(KIND_DATA, bytes('from the host')))
    await vi.advanceTimersByTimeAsync(0)
    expect(messages.filter((m) => !m.history).map((m) => text(m.data))).toEqual(['from the host'])
    expect(room.stats().messages.dropped.notHost).toBe(1)
    await expect(room.publish('me too')).rejects.toHaveProperty('name', 'NotHostError')
  })

  it('takes a handoff from the host only', async () => {
    open()
    const host = new Member('peer-host', 1)
    const other = new Member('peer-other', 2)
    await meet(host)
    await meet(other)
    // a member that is not the host hands the role to us: ignored
    await room.onFrame(other.peerId, await other.frame(KIND_HANDOFF, encodeHandoff(SELF, 0)))
    expect(room.host).toBe('peer-host')
    expect(room.stats().messages.dropped.notHost).toBe(1)
    // the host does
    await room.onFrame(host.peerId, await host.frame(KIND_HANDOFF, encodeHandoff(SELF, 0)))
    expect(room.host).toBe(SELF)
  })
})

describe('room backlog', () => {
  it('delivers the backlog, in order and once, before a live message that arrived meanwhile', async () => {
    open()
    const messages = record('message')
    const bob = new Member('peer-bob', 100)
    let serve: (frames: Uint8Array[]) => void = () => {}
    node.backlog = async () => new Promise((resolve) => { serve = resolve })
    const old1 = await bob.frame(KIND_DATA, bytes('old 1'))
    const old2 = await bob.frame(KIND_DATA, bytes('old 2'))
    // bob's hello says it holds a backlog: we ask for it
    await meet(bob)
    // a live message comes while the backlog request is out
    await room.onFrame(bob.peerId, await bob.frame(KIND_DATA, bytes('live 3')))
    expect(messages).toEqual([])
    serve([encodeLabelled(bob.peerId, old1), encodeLabelled(bob.peerId, old2)])
    await vi.advanceTimersByTimeAsync(0)
    expect(messages.map((m) => [text(m.data), m.history, m.seq])).toEqual([['old 1', true, 1], ['old 2', true, 2], ['live 3', false, 3]])
  })

  it('asks nothing of a member whose hello says it holds no backlog, and delivers its messages at once', async () => {
    open()
    const messages = record('message')
    const bob = new Member('peer-bob', 100)
    let asked = 0
    node.backlog = async () => { asked++; return [] }
    await meet(bob)
    await room.onFrame(bob.peerId, await bob.frame(KIND_DATA, bytes('live 1')))
    expect(asked).toBe(0)
    expect(messages.map((m) => [text(m.data), m.history])).toEqual([['live 1', false]])
  })
})
