/**
 * A room's media session (src/media/room-media.ts) on a stubbed room: what `addStream` refuses
 * before anything is sent, and how signals from peers that are not members are held, bounded, and
 * replayed in order once they join. Real negotiation needs an RTCPeerConnection: see
 * test/browser/media.test.ts. Only `add`/`remove` signals are used here, which need none.
 */
import { TypedEventEmitter } from 'main-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_EARLY_MEDIA_FRAMES, MAX_EARLY_MEDIA_PEERS, MAX_STREAMS_PER_PEER, MEDIA_SIGNAL_RETRY_ATTEMPTS, MEDIA_SIGNAL_RETRY_MS } from '../../../src/constants.js'
import { RoomMediaSession } from '../../../src/media/room-media.js'
import type { RoomPeer, SessionType } from '../../../src/index.js'
import type { MediaRoom } from '../../../src/media/room-media.js'
import type { MediaSignal } from '../../../src/media/wire.js'

class StubRoom extends TypedEventEmitter<any> implements MediaRoom {
  readonly name = 'stub'
  readonly self = 'self'
  readonly topics = { room: '/p2p-rooms/3/room/broadcast/stub' }
  host = 'self'
  type: SessionType
  members: string[] = []
  /** a member's path when not `'direct'` (its direct connection dropped) */
  readonly paths = new Map<string, RoomPeer['path']>()
  constructor (type: SessionType = 'broadcast') {
    super()
    this.type = type
  }

  peers (): RoomPeer[] {
    return this.members.map((peerId) => ({ peerId, path: this.paths.get(peerId) ?? 'direct' }))
  }

  /** A joined member's direct connection dropped (`'relayed'`) or healed (`'direct'`). */
  setPath (peerId: string, path: RoomPeer['path']): void {
    this.paths.set(peerId, path)
    this.safeDispatchEvent('peer:update', { detail: { peerId, path } })
  }

  join (peerId: string): void {
    this.members.push(peerId)
    this.safeDispatchEvent('peer:join', { detail: { peerId, path: 'direct' } })
  }

  leave (peerId: string): void {
    this.members = this.members.filter((p) => p !== peerId)
    this.safeDispatchEvent('peer:leave', { detail: { peerId, reason: 'left' } })
  }
}

const fakeStream = (tracks = 1, id = 'stream-1'): MediaStream => {
  const list = Array.from({ length: tracks }, () => ({ kind: 'video' }))
  return { id, getTracks: () => list } as unknown as MediaStream
}

/** Enough of an RTCPeerConnection for tracks to be added and removed; it never negotiates. */
class StubPeerConnection {
  signalingState = 'stable'
  addEventListener (): void {}
  addTrack (track: unknown): { track: unknown } { return { track } }
  removeTrack (): void {}
  getTransceivers (): unknown[] { return [] }
  close (): void {}
}

/** The network under the session: while `down`, every send fails as over a dropped connection. */
interface Net { down: boolean }

function session (room: StubRoom, net: Net = { down: false }): { media: RoomMediaSession, sent: Array<{ peer: string, msg: MediaSignal }> } {
  const sent: Array<{ peer: string, msg: MediaSignal }> = []
  const media = new RoomMediaSession(room, {
    config: {},
    send: async (peer, _label, msg) => {
      if (net.down) throw Object.assign(new Error('no direct connection'), { name: 'NotDirectError' })
      sent.push({ peer, msg })
    },
    log: () => {},
    onClose: () => {}
  })
  return { media, sent }
}

/** Just what RoomMediaSession and MediaPeer touch of an RTCPeerConnection before any SDP: its events. */
class FakePeerConnection extends EventTarget {
  signalingState: RTCSignalingState = 'stable'
  close (): void { this.signalingState = 'closed' }
}

interface FakeTransceiver { direction: RTCRtpTransceiverDirection, currentDirection: RTCRtpTransceiverDirection | null }

/**
 * Makes the session's connection to `peer` (a candidate signal does) and returns a function that
 * plays the browser's `track` event: a track of stream `id` arriving on `transceiver`, as
 * setRemoteDescription fires it (the stream holds the track, unless `tracks` says none).
 */
function trackEvents (media: RoomMediaSession, peer: string): (id: string, transceiver: FakeTransceiver, tracks?: number) => void {
  media.onSignal(peer, { t: 'ice', candidate: 'candidate:1 1 udp 1 192.0.2.1 9 typ host' })
  const pc: FakePeerConnection = (media as any).members.get(peer).peer.pc
  return (id, transceiver, tracks = 1) => {
    const stream = { id, getTracks: () => Array.from({ length: tracks }, () => ({ kind: 'video', stop: () => {} })) }
    pc.dispatchEvent(Object.assign(new Event('track'), { streams: [stream], transceiver }))
  }
}

/** What the session knows of a peer's announced streams (not part of any API: the rules' effect). */
const announced = (media: RoomMediaSession, peer: string): string[] => [...((media as any).members.get(peer)?.incoming.keys() ?? [])]
const held = (media: RoomMediaSession, peer: string): number => (media as any).early.get(peer)?.length ?? 0

describe('room media session', () => {
  // addStream checks RTCPeerConnection exists before anything else; Node has none
  const had = 'RTCPeerConnection' in globalThis
  beforeEach(() => { if (!had) (globalThis as any).RTCPeerConnection = StubPeerConnection })
  afterEach(() => { if (!had) delete (globalThis as any).RTCPeerConnection })

  it('refuses a stream without tracks, metadata that is not small JSON, and a missing or unknown `to`', async () => {
    const room = new StubRoom('pairwise')
    const { media, sent } = session(room)
    const cyclic: Record<string, unknown> = {}
    cyclic.me = cyclic
    await expect(media.addStream(fakeStream(0), { to: 'x' })).rejects.toMatchObject({ name: 'InvalidMediaError' })
    await expect(media.addStream({} as MediaStream)).rejects.toMatchObject({ name: 'InvalidMediaError' })
    await expect(media.addStream(fakeStream(), { metadata: cyclic, to: 'x' })).rejects.toMatchObject({ name: 'InvalidMediaError' })
    await expect(media.addStream(fakeStream(), { metadata: 'x'.repeat(5000), to: 'x' })).rejects.toMatchObject({ name: 'InvalidMediaError' })
    await expect(media.addStream(fakeStream())).rejects.toMatchObject({ name: 'SessionTypeError' })
    await expect(media.addStream(fakeStream(), { to: 'not-a-member' })).rejects.toMatchObject({ name: 'PeerNotFoundError' })
    await expect(media.replaceTrack({ kind: 'video' } as MediaStreamTrack, { kind: 'video' } as MediaStreamTrack)).rejects.toMatchObject({ name: 'InvalidMediaError' })
    media.close()
    await expect(media.addStream(fakeStream(), { to: 'x' })).rejects.toMatchObject({ name: 'RoomClosedError' })
    expect(sent).toEqual([])
  })

  it('holds the signals of a peer that is not a member, and replays them in order once it joins', () => {
    const room = new StubRoom()
    const { media } = session(room)
    media.onSignal('p', { t: 'add', id: 'a' })
    media.onSignal('p', { t: 'add', id: 'b' })
    media.onSignal('p', { t: 'remove', id: 'a' })
    expect(announced(media, 'p')).toEqual([])
    expect(held(media, 'p')).toBe(3)
    room.join('p')
    expect(held(media, 'p')).toBe(0)
    expect(announced(media, 'p')).toEqual(['b'])
  })

  it('replays the signals it held from a member whose connection healed, once it is direct again', () => {
    const room = new StubRoom()
    const { media } = session(room)
    room.join('p')
    room.setPath('p', 'relayed')
    media.onSignal('p', { t: 'add', id: 'a' })
    expect(held(media, 'p')).toBe(1)
    room.setPath('p', 'direct')
    expect(held(media, 'p')).toBe(0)
    expect(announced(media, 'p')).toEqual(['a'])
  })

  it('sends what a member missed while its connection healed, in order, once it is direct again', async () => {
    vi.useFakeTimers()
    try {
      const room = new StubRoom()
      const net = { down: false }
      const { media, sent } = session(room, net)
      room.join('p')
      const first = fakeStream(1, 'first')
      const second = fakeStream(1, 'second')
      // the connection is gone before the room knows: the announcement fails, and is tried again
      net.down = true
      await media.addStream(first)
      await vi.advanceTimersByTimeAsync(MEDIA_SIGNAL_RETRY_MS * 4)
      room.setPath('p', 'relayed')
      // queued behind the failed announcement, never ahead of it
      await media.removeStream(first)
      // not sent at all while the member is not direct
      await media.addStream(second)
      await vi.advanceTimersByTimeAsync(MEDIA_SIGNAL_RETRY_MS * 4)
      expect(sent.map(({ msg }) => msg.t)).toEqual(['hello'])

      net.down = false
      room.setPath('p', 'direct')
      await vi.advanceTimersByTimeAsync(0)
      expect(sent.map(({ msg }) => `${msg.t}${'id' in msg ? ` ${msg.id}` : ''}`)).toEqual(['hello', 'add first', 'remove first', 'add second'])
      media.close()
    } finally {
      vi.useRealTimers()
    }
  })

  it('stops retrying a member that looks direct but keeps failing, until our next signal to it', async () => {
    vi.useFakeTimers()
    try {
      const room = new StubRoom()
      const net = { down: true }
      let attempts = 0
      const media = new RoomMediaSession(room, {
        config: {},
        send: async () => { attempts++; if (net.down) throw Object.assign(new Error('protocol selection failed'), { name: 'UnsupportedProtocolError' }) },
        log: () => {},
        onClose: () => {}
      })
      room.join('p')
      await vi.advanceTimersByTimeAsync(MEDIA_SIGNAL_RETRY_MS * (MEDIA_SIGNAL_RETRY_ATTEMPTS + 10))
      expect(attempts).toBe(MEDIA_SIGNAL_RETRY_ATTEMPTS)
      net.down = false
      await media.addStream(fakeStream())
      await vi.advanceTimersByTimeAsync(0)
      // the hello that waited, then the announcement
      expect(attempts).toBe(MEDIA_SIGNAL_RETRY_ATTEMPTS + 2)
      media.close()
    } finally {
      vi.useRealTimers()
    }
  })

  it('bounds what it holds: frames per peer and peers', () => {
    const room = new StubRoom()
    const { media } = session(room)
    for (let i = 0; i < MAX_EARLY_MEDIA_FRAMES + 10; i++) media.onSignal('p', { t: 'add', id: `s${i}` })
    expect(held(media, 'p')).toBe(MAX_EARLY_MEDIA_FRAMES)
    for (let i = 0; i < MAX_EARLY_MEDIA_PEERS + 5; i++) media.onSignal(`q${i}`, { t: 'add', id: 'x' })
    expect((media as any).early.size).toBe(MAX_EARLY_MEDIA_PEERS)
    // a peer that leaves without joining takes its held frames with it
    room.leave('p')
    expect(held(media, 'p')).toBe(0)
  })

  it('greets a member that joins with its session ID', () => {
    const room = new StubRoom()
    const { media, sent } = session(room)
    room.join('p')
    expect(sent).toEqual([{ peer: 'p', msg: { t: 'hello', s: expect.stringMatching(/^[0-9a-f]{24}$/) } }])
    media.close()
  })

  it('starts afresh with a member whose media session changed (a crashed tab reloaded under its peer ID)', () => {
    const room = new StubRoom()
    const { media } = session(room)
    room.join('p')
    media.onSignal('p', { t: 'add', id: 'old', s: 'page-1' })
    media.onSignal('p', { t: 'add', id: 'old-2' })
    expect(announced(media, 'p')).toEqual(['old', 'old-2'])
    media.onSignal('p', { t: 'add', id: 'new', s: 'page-2' })
    expect(announced(media, 'p')).toEqual(['new'])
    // the same session again changes nothing
    media.onSignal('p', { t: 'add', id: 'new-2', s: 'page-2' })
    expect(announced(media, 'p')).toEqual(['new', 'new-2'])
  })

  it('takes at most 16 streams from one member', () => {
    const room = new StubRoom()
    const { media } = session(room)
    room.join('p')
    for (let i = 0; i < MAX_STREAMS_PER_PEER + 4; i++) media.onSignal('p', { t: 'add', id: `s${i}` })
    expect(announced(media, 'p')).toHaveLength(MAX_STREAMS_PER_PEER)
    expect((media as any).members.get('p').refused).toBe(4)
  })

  it('counts a non-host\'s stream in a one-way room as refused, and never delivers it', () => {
    const room = new StubRoom('one-way')
    room.host = 'h'
    const { media } = session(room)
    const streams: unknown[] = []
    room.addEventListener('stream', (e: CustomEvent) => { streams.push(e.detail) })
    room.join('h')
    room.join('p')
    media.onSignal('p', { t: 'add', id: 'guest' })
    expect((media as any).members.get('p').refused).toBe(1)
    expect(streams).toEqual([])
  })

  describe('with a connection', () => {
    // MediaPeer makes an RTCPeerConnection and listens to it; nothing here negotiates
    let had: unknown
    beforeEach(() => {
      had = (globalThis as any).RTCPeerConnection
      ;(globalThis as any).RTCPeerConnection = FakePeerConnection
    })
    afterEach(() => { (globalThis as any).RTCPeerConnection = had })

    it('stops receiving a non-host\'s stream in a one-way room, and connects afresh to receive it once that member is the host', async () => {
      const room = new StubRoom('one-way')
      room.host = 'h'
      const { media, sent } = session(room)
      const events: string[] = []
      room.addEventListener('stream', (e: CustomEvent) => { events.push(`stream ${e.detail.peerId} ${e.detail.stream.id}`) })
      room.addEventListener('stream:end', (e: CustomEvent) => { events.push(`end ${e.detail.peerId} ${e.detail.stream.id}`) })
      room.join('h')
      room.join('p')
      const fromHost = trackEvents(media, 'h')
      const fromGuest = trackEvents(media, 'p')
      media.onSignal('h', { t: 'add', id: 'show' })
      media.onSignal('p', { t: 'add', id: 'cam', s: 'p-1' })
      const show: FakeTransceiver = { direction: 'recvonly', currentDirection: null }
      const cam: FakeTransceiver = { direction: 'recvonly', currentDirection: null }
      fromHost('show', show)
      fromGuest('cam', cam)
      // set inside the track event, so the answer that follows already refuses it
      expect(cam.direction).toBe('inactive')
      expect(show.direction).toBe('recvonly')
      expect(events).toEqual(['stream h show'])

      // a handoff to p: not the refused transceiver turned back on, but a new connection under a
      // new session of ours, which makes p start afresh and send its stream again
      const old: FakePeerConnection = (media as any).members.get('p').peer.pc
      const session0 = sent.find((x) => x.peer === 'p')?.msg.s
      room.host = 'p'
      room.safeDispatchEvent('host:change', { detail: { host: 'p' } })
      // the outbox sends one signal after another: let it
      await new Promise((resolve) => { setTimeout(resolve, 0) })
      expect(old.signalingState).toBe('closed')
      expect(cam.direction).toBe('inactive')
      expect(show.direction).toBe('inactive')
      expect(events).toEqual(['stream h show', 'end h show'])
      const hello = sent.at(-1)
      expect(hello).toMatchObject({ peer: 'p', msg: { t: 'hello' } })
      expect(hello?.msg.s).not.toBe(session0)
      expect(announced(media, 'p')).toEqual([])
      // what p's old connection sent before our new session reached it is dropped
      media.onSignal('p', { t: 'add', id: 'stale', s: 'p-1' })
      expect(announced(media, 'p')).toEqual([])
      // p's restart, under its new session: its stream announced again, its track on the new connection
      media.onSignal('p', { t: 'add', id: 'cam', s: 'p-2' })
      expect(announced(media, 'p')).toEqual(['cam'])
      const again = trackEvents(media, 'p')
      const cam2: FakeTransceiver = { direction: 'recvonly', currentDirection: null }
      again('cam', cam2)
      expect(cam2.direction).toBe('recvonly')
      expect(events).toEqual(['stream h show', 'end h show', 'stream p cam'])
      media.close()
    })

    it('keeps sending on a transceiver it shares with a refused stream', () => {
      const room = new StubRoom('one-way')
      room.host = 'h'
      const { media } = session(room)
      room.join('h')
      room.join('p')
      const fromGuest = trackEvents(media, 'p')
      media.onSignal('p', { t: 'add', id: 'cam' })
      // our addTrack reused the transceiver the guest's offer made: we send on it
      const shared: FakeTransceiver = { direction: 'sendrecv', currentDirection: 'sendrecv' }
      fromGuest('cam', shared)
      expect(shared.direction).toBe('sendonly')
      media.close()
    })

    it('does not receive a stream over the 16 a member may send, nor one it never announced', () => {
      const room = new StubRoom()
      const { media } = session(room)
      room.join('p')
      const fromPeer = trackEvents(media, 'p')
      for (let i = 0; i < MAX_STREAMS_PER_PEER + 1; i++) media.onSignal('p', { t: 'add', id: `s${i}` })
      const ok: FakeTransceiver = { direction: 'recvonly', currentDirection: null }
      const over: FakeTransceiver = { direction: 'recvonly', currentDirection: null }
      const unannounced: FakeTransceiver = { direction: 'recvonly', currentDirection: null }
      fromPeer('s0', ok)
      fromPeer(`s${MAX_STREAMS_PER_PEER}`, over)
      fromPeer('never-announced', unannounced)
      expect([ok.direction, over.direction, unannounced.direction]).toEqual(['recvonly', 'inactive', 'inactive'])
      media.close()
    })
  })
})
