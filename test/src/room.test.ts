/**
 * The room's own rules (presence, host, restarts, backlog, floods) with real `RoomImpl`s on a fake
 * network: the node is stubbed down to what a room uses (its direct links and their events, frames
 * sent to a peer, announcements), frames go straight to the other rooms, and timers are fake. Real
 * networks are in test/node and test/browser.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as C from '../../src/constants.js'
import { FileService } from '../../src/files/service.js'
import { MediaService } from '../../src/media/service.js'
import { RoomImpl } from '../../src/room.js'
import { KIND_DATA, decodeLabelled, encodeAnnouncement, encodeHistoryRequest, encodeLabelled } from '../../src/wire.js'
import type { ResolvedRoomNodeOptions, SessionType } from '../../src/index.js'
import type { RoomContext, RoomSettings } from '../../src/room.js'
import type { PeerId } from '@libp2p/interface'

const OPTIONS: ResolvedRoomNodeOptions = {
  relays: [],
  iceServers: [],
  identity: 'ephemeral',
  announceInterval: C.DEFAULT_ANNOUNCE_INTERVAL_MS,
  peerTtl: C.DEFAULT_PEER_TTL_MS,
  reservationTimeout: C.DEFAULT_RESERVATION_TIMEOUT_MS,
  dialAttempts: C.DEFAULT_DIAL_ATTEMPTS,
  dialBackoff: C.DEFAULT_DIAL_BACKOFF_MS,
  dialTimeout: C.DEFAULT_DIAL_TIMEOUT_MS,
  dialTakeover: C.DEFAULT_DIAL_TAKEOVER_MS,
  maxMessageBytes: C.DEFAULT_MAX_MESSAGE_BYTES,
  heartbeatInterval: C.DEFAULT_HEARTBEAT_INTERVAL_MS,
  presenceTimeout: C.DEFAULT_PRESENCE_TIMEOUT_MS,
  maxRelays: C.DEFAULT_MAX_RELAYS,
  maxFileBytes: C.DEFAULT_MAX_FILE_BYTES,
  maxPendingFiles: C.DEFAULT_MAX_PENDING_FILES,
  keptFileTtl: C.DEFAULT_KEPT_FILE_TTL_MS,
  fileResumeWindow: C.DEFAULT_FILE_RESUME_WINDOW_MS,
  fileStorage: 'memory'
}

const noop = Object.assign((..._args: unknown[]) => {}, { error: () => {}, trace: () => {}, enabled: false })

interface Events {
  joins: string[]
  leaves: Array<{ peerId: string, reason: string, at: number }>
  messages: Array<{ from: string, text: string, seq: number, history: boolean }>
  hosts: string[]
  gaps: Array<{ from: string, first: number, last: number }>
}

/** One room member on the fake network. */
interface Member {
  peerId: PeerId
  id: string
  /** its node's direct links, as its room sees them */
  links: TypedEventEmitter<any>
  room: RoomImpl
  events: Events
  /** what the member's backlog requests are answered with (by default: the member asked serves it) */
  serveBacklog?: (from: string, request: Uint8Array) => Uint8Array[]
}

/** Rooms of one name on a fake network: direct links, subscriptions and gossip are ours to decide. */
class Net {
  readonly members = new Map<string, Member>()
  /** directed links: `a>b` means a reaches b directly */
  readonly links = new Set<string>()
  /** `from>to` pairs whose messages are lost on the way (a link going down without a word) */
  readonly cut = new Set<string>()
  readonly name: string
  readonly type: SessionType
  readonly settings: Partial<RoomSettings>

  constructor (name: string, type: SessionType = 'broadcast', settings: Partial<RoomSettings> = {}) {
    this.name = name
    this.type = type
    this.settings = settings
  }

  async join (peerId?: PeerId): Promise<Member> {
    peerId ??= peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const id = peerId.toString()
    const net = this
    // the node's direct links as a room sees them: a link is direct once `connect` made it so
    const links = new TypedEventEmitter<any>() as any
    links.want = () => {}
    links.release = () => {}
    links.isDirect = (peer: string) => net.links.has(`${id}>${peer}`)
    links.connection = (peer: string) => net.links.has(`${id}>${peer}`) ? { rtt: 1 } : undefined
    links.stats = () => ({ dialAttempts: 0, dialSuccesses: 0, dialFailures: 0 })
    links.phases = () => ({})
    const member: Member = { peerId, id, links, room: undefined as unknown as RoomImpl, events: { joins: [], leaves: [], messages: [], hosts: [], gaps: [] } }
    const ctx: RoomContext = {
      // the room's files attach to a file service that is never started: no protocol, no streams
      files: new FileService({ logger: { forComponent: () => noop as any }, handle: async () => {}, unhandle: async () => {}, links }, OPTIONS) as any,
      media: new MediaService({ logger: { forComponent: () => noop as any } as any, serve: async () => async () => {}, send: async () => {} }, { iceServers: [] }),
      self: id,
      startedAt: Date.now(),
      options: OPTIONS,
      log: noop as any,
      pubsub: { subscribe: () => {}, unsubscribe: () => {}, publish: async () => ({ recipients: [] }) } as any,
      links,
      running: () => true,
      ownAddrs: () => [`/ip4/127.0.0.1/tcp/1/ws/p2p/${id}/p2p-circuit/webrtc/p2p/${id}`],
      sendFrame: async (peer, frame) => { await net.frame(id, peer, frame) },
      sendFrameNow: (peer, frame) => { void net.frame(id, peer, frame); return true },
      requestHistory: async (peer, request) => member.serveBacklog?.(peer, request) ?? net.members.get(peer)?.room.backlogFor(id, request) ?? [],
      onLeft: () => {}
    }
    const settings: RoomSettings = { type: this.type, maxMessageBytes: 65536, messagesPerSecond: 50, burst: 100, historySize: 100, historyRequestsPerMinute: 10, ...this.settings }
    member.room = new RoomImpl(this.name, settings, ctx)
    const e = member.events
    member.room.addEventListener('peer:join', (ev) => { e.joins.push(ev.detail.peerId) })
    member.room.addEventListener('peer:leave', (ev) => { e.leaves.push({ ...ev.detail, at: Date.now() }) })
    member.room.addEventListener('message', (ev) => { e.messages.push({ from: ev.detail.from, text: new TextDecoder().decode(ev.detail.data), seq: ev.detail.seq, history: ev.detail.history }) })
    member.room.addEventListener('host:change', (ev) => { e.hosts.push(ev.detail.host) })
    member.room.addEventListener('gap', (ev) => { e.gaps.push(ev.detail) })
    this.members.set(id, member)
    member.room.start()
    return member
  }

  /** `a` and `b` learn of each other through the relay (an announcement each), not yet connected. */
  announce (a: Member, b: Member): void {
    for (const [from, to] of [[a, b], [b, a]]) {
      const addrs = [`/ip4/127.0.0.1/tcp/1/ws/p2p/relay/p2p-circuit/webrtc/p2p/${from.id}`]
      to.room.onPubsubMessage({ type: 'signed', from: from.peerId, topic: to.room.topics.discovery, data: encodeAnnouncement({ v: 1, kind: 'announce', addrs }) } as any)
    }
  }

  /** `a` and `b` go direct: a WebRTC connection each way, and each node tells its rooms. */
  connect (a: Member, b: Member): void {
    this.links.add(`${a.id}>${b.id}`)
    this.links.add(`${b.id}>${a.id}`)
    this.cut.delete(`${a.id}>${b.id}`)
    this.cut.delete(`${b.id}>${a.id}`)
    a.links.safeDispatchEvent('peer:direct', { detail: { peerId: b.id, connection: {} } })
    b.links.safeDispatchEvent('peer:direct', { detail: { peerId: a.id, connection: {} } })
  }

  /** Everyone connected to everyone. */
  mesh (): void {
    const all = [...this.members.values()]
    for (const a of all) for (const b of all) if (a.id < b.id) { this.announce(a, b); this.connect(a, b) }
  }

  /**
   * A member's tab dies: nothing it sends arrives any more, nothing sent to it arrives anywhere,
   * and nobody is told (the others' connection to it still looks open).
   */
  kill (m: Member): void {
    for (const other of this.members.values()) {
      this.cut.add(`${m.id}>${other.id}`)
      this.cut.add(`${other.id}>${m.id}`)
    }
  }

  /** A room frame from `from` to `to` over their link: lost if the link is cut, refused if there is none. */
  async frame (from: string, to: string, frame: Uint8Array): Promise<void> {
    if (!this.links.has(`${from}>${to}`)) throw new Error(`no direct connection from ${from} to ${to}`)
    if (this.cut.has(`${from}>${to}`)) return
    const labelled = decodeLabelled(frame)
    if (labelled !== undefined) await this.deliver(this.members.get(to), from, labelled.rest)
  }

  /** `to` receives a room message from `from` over their direct stream. */
  async deliver (to: Member | undefined, from: string, raw: Uint8Array): Promise<void> {
    await to?.room.onFrame(from, raw)
  }
}

let net: Net
beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] }) })
afterEach(async () => {
  for (const m of net?.members.values() ?? []) await m.room.leave()
  vi.useRealTimers()
})

/** Runs the fake clock `ms` forward, letting every promise settle on the way. */
async function run (ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
}

describe('room presence', () => {
  it('drops a silent member within presenceTimeout and a sixteenth of it', async () => {
    net = new Net('presence')
    const [a, b, c] = [await net.join(), await net.join(), await net.join()]
    net.mesh()
    await run(3_000)
    expect(a.events.joins.sort()).toEqual([b.id, c.id].sort())

    net.kill(c)
    const lastHeardDirect = Date.now() - ((a.room.stats().peers[c.id].lastHeardMs) ?? 0)
    await run(15_000)
    const leave = a.events.leaves.find((l) => l.peerId === c.id)
    expect(leave?.reason).toBe('timeout')
    // measured from the last message c itself sent a, not from the forwarded copy
    expect((leave?.at ?? Infinity) - lastHeardDirect).toBeLessThanOrEqual(C.DEFAULT_PRESENCE_TIMEOUT_MS * (1 + 1 / 16))
  })

  for (const jump of [3_600_000, -3_600_000]) {
    it(`evicts nobody when the wall clock jumps ${jump > 0 ? 'forward' : 'back'} an hour`, async () => {
      net = new Net('clock')
      const [a, b] = [await net.join(), await net.join()]
      net.mesh()
      await run(3_000)
      expect(a.events.joins).toEqual([b.id])
      vi.setSystemTime(Date.now() + jump)
      await run(60_000)
      expect(a.events.leaves).toEqual([])
      expect(b.events.leaves).toEqual([])
      expect(a.room.peers().map((p) => p.peerId)).toEqual([b.id])
    })
  }
})

describe('room host', () => {
  it('does not let a member that joins an established room claim rank 0 and become host', async () => {
    net = new Net('rank0')
    const [a, b] = [await net.join(), await net.join()]
    net.mesh()
    await run(10_000)
    const host = a.room.host
    expect(b.room.host).toBe(host)
    const mallory = await net.join()
    // a modified client: every message it sends claims rank 0
    const encode = (mallory.room as any).messages.encode.bind((mallory.room as any).messages)
    ;(mallory.room as any).messages.encode = async (self: string, h: any, body: Uint8Array) => encode(self, { ...h, rank: 0 }, body)
    net.mesh()
    await run(10_000)
    expect([a.room.host, b.room.host]).toEqual([host, host])
  })

  it('ranks a newcomer whose clock is a minute behind after the members, in its own view as in theirs', async () => {
    net = new Net('skew')
    const [a, b] = [await net.join(), await net.join()]
    net.mesh()
    await run(10_000)
    const host = a.room.host
    // its join time, its rank, comes from a clock a minute slow: it claims to be the oldest
    vi.setSystemTime(Date.now() - 60_000)
    const late = await net.join()
    vi.setSystemTime(Date.now() + 60_000)
    net.mesh()
    await run(3_000)
    expect([a.room.host, b.room.host, late.room.host]).toEqual([host, host, host])
    expect(late.events.hosts).not.toContain(late.id)
    // and it stays that way once the host is gone: it ranks after b everywhere
    // it leaves with a word to each member it is connected to
    await a.room.leave()
    net.members.delete(a.id)
    await run(1_000)
    expect([b.room.host, late.room.host]).toEqual([b.id, b.id])
  })

  it('keeps a newcomer that has not heard the members it discovered from acting as host in a one-way room', async () => {
    net = new Net('newcomer', 'one-way')
    const [a, b] = [await net.join(), await net.join()]
    net.mesh()
    await run(10_000)
    const host = a.room.host
    const c = await net.join()
    // it learns of a and b through the relay before it can reach them
    net.announce(a, c)
    net.announce(b, c)
    expect(c.room.host).not.toBe(c.id)
    // it cannot know yet whether it is the host: publish waits until it does, then refuses
    const early = c.room.publish('too early').then(() => 'published', (err: Error) => err.name)
    expect(c.events.hosts).not.toContain(c.id)
    net.connect(a, c)
    net.connect(b, c)
    await run(1_000)
    expect(await early).toBe('NotHostError')
    expect(c.room.host).toBe(host)
    for (const m of [a, b]) expect(m.room.stats().messages.dropped.notHost).toBe(0)
    await run(10_000)
    expect(c.events.hosts).not.toContain(c.id)
    expect([a.room.host, b.room.host, c.room.host]).toEqual([host, host, host])
  })

  it('lets a member that knows of nobody publish in a one-way room at once', async () => {
    net = new Net('alone', 'one-way')
    const a = await net.join()
    expect((await a.room.publish('first')).recipients).toEqual([])
    expect(a.room.host).toBe(a.id)
  })

  for (const [findsThemAfter, path] of [[1_000, 'a restart'], [C.DEFAULT_ANNOUNCE_INTERVAL_MS, 'a new member']] as const) {
    it(`agrees on one host after the host crashes and reloads under the same peer ID, met ${findsThemAfter} ms later (as ${path}), and delivers its new messages`, async () => {
      net = new Net('reload', 'one-way')
      const members = [await net.join(), await net.join(), await net.join()]
      net.mesh()
      await run(10_000)
      const host = members.find((m) => m.id === members[0].room.host) as Member
      const [b, c] = members.filter((m) => m !== host)
      await host.room.publish('before:1')
      await host.room.publish('before:2')
      await run(100)
      expect(b.events.messages.map((m) => m.text)).toEqual(['before:1', 'before:2'])

      // the tab dies without a word and comes back at once with the same peer ID: a new session
      net.kill(host)
      ;(host.room as any).closed = true
      net.members.delete(host.id)
      await run(1_000)
      const again = await net.join(host.peerId)
      // the others do not answer the announcement of a peer they know: it finds them with their
      // periodic announcements, up to announceInterval (10 s) later; before or after they drop its
      // old session for its silence (8.5 s)
      await run(findsThemAfter)
      net.mesh()
      await run(12_000)
      // it is a newcomer now: the others keep the host they agree on, and so does it
      const agreed = b.room.host
      expect([c.room.host, again.room.host]).toEqual([agreed, agreed])
      expect(agreed).not.toBe(host.id)
      void path
      // handed the role, its new numbering from 1 is delivered
      const agreedMember = [b, c].find((m) => m.id === agreed) as Member
      await agreedMember.room.handOffHost(again.id)
      await run(100)
      expect(again.room.host).toBe(again.id)
      await again.room.publish('after:1')
      await run(100)
      for (const m of [b, c]) expect(m.events.messages.map((x) => x.text)).toContain('after:1')
      expect(b.events.messages.find((x) => x.text === 'after:1')?.seq).toBe(1)
    })
  }
})

describe('room backlog', () => {
  it('delivers every live message of a member whose peer ID a poisoned backlog used with seq 0xFFFFFFFF', async () => {
    net = new Net('poison')
    const server = await net.join() // the member that serves the joiner's backlog
    const victim = await net.join()
    net.mesh()
    await run(3_000)
    // the members hold a backlog, so the joiner asks for it
    await server.room.publish('before')
    await run(100)
    // the member that serves the backlog forges a message of the victim's, numbered as high as numbers go
    const forged = await (victim.room as any).messages.encode(victim.id, { kind: KIND_DATA, seq: 0xffffffff, rank: 1, settled: true }, new TextEncoder().encode('forged'))
    const joiner = await net.join()
    joiner.serveBacklog = () => [encodeLabelled(victim.id, forged)]
    net.mesh()
    await run(3_000)
    for (let i = 1; i <= 1000; i++) {
      // a realistic pace, under the rate limit
      await victim.room.publish(`live:${i}`)
      await run(25)
    }
    await run(2_000)
    const live = joiner.events.messages.filter((m) => m.from === victim.id && !m.history)
    expect(live).toHaveLength(1000)
    expect(joiner.events.messages.filter((m) => m.history).map((m) => m.text)).toEqual(['forged'])
  })
})

describe('room backlog requests', () => {
  it('serves each joined member at most historyRequestsPerMinute backlogs a minute, the newest it asks for, and counts refusals by reason', async () => {
    net = new Net('quota')
    const [server, joiner] = [await net.join(), await net.join()]
    net.mesh()
    await run(3_000)
    for (let i = 1; i <= 5; i++) await server.room.publish(`m${i}`)
    const topic = server.room.topics.room
    // the joiner asked nothing when it joined: the server's hello said it held no backlog
    const before = server.room.stats().history
    expect(before).toEqual({ served: 0, refused: { rateLimited: 0, notMember: 0, malformed: 0 }, writeTimeouts: 0 })
    const served = Array.from({ length: 11 }, () => server.room.backlogFor(joiner.id, encodeHistoryRequest(topic, 3)))
    // the newest 3 of 5, ten times; the eleventh within the minute is refused
    expect(served.slice(0, 10).map((frames) => frames.length)).toEqual(Array(10).fill(3))
    expect(served[10]).toEqual([])
    expect(server.room.backlogFor('12D3KooWnotAMember', encodeHistoryRequest(topic, 3))).toEqual([])
    expect(server.room.backlogFor(joiner.id, new Uint8Array([1, 2, 3]))).toEqual([])
    expect(server.room.stats().history).toEqual({ served: 10, refused: { rateLimited: 1, notMember: 1, malformed: 1 }, writeTimeouts: 0 })
    // the bucket refills at 10 a minute: one more six seconds later
    await run(6_000)
    expect(server.room.backlogFor(joiner.id, encodeHistoryRequest(topic, 3))).toHaveLength(3)
  })
})

describe('room under a flood', () => {
  it('merges the gaps of a rate-limited flood and holds nothing of it after', async () => {
    net = new Net('flood', 'broadcast', { messagesPerSecond: 20, burst: 10 })
    const [a, flooder] = [await net.join(), await net.join()]
    net.mesh()
    await run(3_000)
    const messages = (flooder.room as any).messages
    for (let i = 1; i <= 5_000; i++) {
      const raw = await messages.encode(flooder.id, { kind: KIND_DATA, seq: messages.nextSeq(), rank: 1, settled: true }, new TextEncoder().encode(`f${i}`))
      await net.deliver(a, flooder.id, raw)
      if (i % 10 === 0) await run(1)
    }
    await run(3_000)
    const delivered = a.events.messages.filter((m) => m.from === flooder.id).length
    expect(delivered).toBeLessThanOrEqual(10 + 20 * 1 + 1)
    expect(a.room.stats().messages.gaps).toBe(5_000 - delivered)
    expect(a.events.gaps.length).toBeLessThanOrEqual(delivered + 1)
    expect((a.room as any).messages.retained).toMatchObject({ held: 0, openGaps: 0, outbox: 0 })
  })
})
