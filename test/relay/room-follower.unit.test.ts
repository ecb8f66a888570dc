/**
 * The room follower's quotas with a stubbed gossipsub: rooms per peer, per IP (IPv6 per /64),
 * the room cap, announcements per peer per second; every refusal counted by reason, and
 * memory (rooms, members) bounded whatever peers subscribe to. Also how soon and how long it
 * retries handing a newcomer its room (fake timers).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRefusalCounter, ipKey } from '../../relay/src/refusals.js'
import { HANDOVER_FIRST_RETRY_MS, HANDOVER_RETRY_MS, HANDOVER_TIMEOUT_MS } from '../../relay/src/constants.js'
import { RoomFollower } from '../../relay/src/room-follower.js'
import { DISCOVERY_TOPIC_PREFIX } from '../../src/constants.js'
import { encodeAnnouncement } from '../../src/wire.js'
import type { Refusal } from '../../relay/src/refusals.js'
import type { FollowerPubSub, RoomFollowerInit, SubscriptionChange } from '../../relay/src/room-follower.js'
import type { TopicValidatorFn } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'

class StubPubSub implements FollowerPubSub {
  readonly subscribed = new Set<string>()
  readonly topicValidators = new Map<string, TopicValidatorFn>()
  readonly subscribers = new Map<string, Set<string>>()
  private listener?: (evt: CustomEvent<SubscriptionChange>) => void
  addEventListener (_type: 'subscription-change', listener: (evt: CustomEvent<SubscriptionChange>) => void): void { this.listener = listener }
  removeEventListener (): void { this.listener = undefined }
  subscribe (topic: string): void { this.subscribed.add(topic) }
  unsubscribe (topic: string): void { this.subscribed.delete(topic) }
  getSubscribers (topic: string): PeerId[] {
    return [...(this.subscribers.get(topic) ?? [])].map((id) => ({ toString: () => id }) as unknown as PeerId)
  }

  /** `peerId` (un)subscribes to `topics`, as gossipsub reports it. */
  change (peerId: string, topics: string[], subscribe = true): void {
    for (const topic of topics) {
      const set = this.subscribers.get(topic) ?? new Set()
      if (subscribe) set.add(peerId)
      else set.delete(peerId)
      this.subscribers.set(topic, set)
    }
    this.listener?.(new CustomEvent('subscription-change', { detail: { peerId: { toString: () => peerId }, subscriptions: topics.map((topic) => ({ topic, subscribe })) } }))
  }
}

const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => log }) as any
const rooms = (n: number, label = 'r'): string[] => Array.from({ length: n }, (_, i) => `${DISCOVERY_TOPIC_PREFIX}${label}-${i}`)

function follower (init: Partial<RoomFollowerInit> = {}, ips: Record<string, string> = {}): { pubsub: StubPubSub, follower: RoomFollower, refused: Refusal[], counts: ReturnType<typeof createRefusalCounter>['counts'] } {
  const refused: Refusal[] = []
  const refusals = createRefusalCounter((r) => refused.push(r))
  const pubsub = new StubPubSub()
  const f = new RoomFollower(pubsub, {
    maxRooms: 100,
    maxRoomsPerPeer: 4,
    maxRoomsPerIp: 6,
    announcementsPerSecond: 2,
    roomTtl: 60_000,
    log,
    refusals,
    ipOf: (peer) => ipKey(ips[peer]),
    ...init
  })
  f.start()
  return { pubsub, follower: f, refused, counts: refusals.counts }
}

describe('relay room quotas', () => {
  it('follows at most maxRoomsPerPeer rooms for one peer, and refuses the rest by reason', () => {
    const { pubsub, follower: f, refused, counts } = follower()
    pubsub.change('a', rooms(10))
    expect(f.size).toBe(4)
    expect(pubsub.subscribed.size).toBe(4)
    expect(counts.refusals['rooms-per-peer']).toBe(6)
    expect(refused.every((r) => r.kind === 'room' && r.peerId === 'a')).toBe(true)
    // a refusal never names the room
    expect(JSON.stringify(refused)).not.toContain(DISCOVERY_TOPIC_PREFIX)
    f.stop()
  })

  it('counts the peers of one IPv6 /64 together, and another /64 apart', () => {
    const ips = { a: '2001:db8:1:2::1', b: '2001:db8:1:2:ffff::2', c: '2001:0db8:0001:0002:abcd::3', d: '2001:db8:1:3::1' }
    const { pubsub, follower: f, counts } = follower({}, ips)
    pubsub.change('a', rooms(4, 'a'))
    pubsub.change('b', rooms(4, 'b'))
    pubsub.change('c', rooms(4, 'c'))
    expect(f.size).toBe(6)
    expect(counts.refusals['rooms-per-ip']).toBe(6)
    pubsub.change('d', rooms(4, 'd'))
    expect(f.size).toBe(10)
    f.stop()
  })

  it('keeps genuine rooms followed while a flood of subscriptions from one address fills its quota', () => {
    const ips: Record<string, string> = { genuine: '192.0.2.7' }
    for (let i = 0; i < 11; i++) ips[`flood-${i}`] = '198.51.100.1'
    const { pubsub, follower: f, counts } = follower({ maxRooms: 10_000, maxRoomsPerPeer: 64, maxRoomsPerIp: 1024 }, ips)
    // the attack: 11 connections of 1,000 topics each filled the 10,000-room cap
    for (let i = 0; i < 11; i++) pubsub.change(`flood-${i}`, rooms(1000, `flood-${i}`))
    expect(f.size).toBe(11 * 64)
    pubsub.change('genuine', rooms(3, 'genuine'))
    expect(rooms(3, 'genuine').every((t) => pubsub.subscribed.has(t))).toBe(true)
    expect(counts.refusals['rooms-per-peer']).toBe(11 * (1000 - 64))
    f.stop()
  })

  it('refuses a new room at maxRooms, and frees a member\'s quota when it leaves', () => {
    const { pubsub, follower: f, counts } = follower({ maxRooms: 3 })
    pubsub.change('a', rooms(3))
    pubsub.change('b', [`${DISCOVERY_TOPIC_PREFIX}other`])
    expect(counts.refusals['max-rooms']).toBe(1)
    // a room already followed is joined, not refused
    pubsub.change('b', rooms(1))
    expect(f.peers).toBe(2)
    f.forget('a')
    expect(f.peers).toBe(1)
    pubsub.change('c', rooms(4, 'c'))
    expect(pubsub.subscribed.size).toBe(3)
    f.stop()
  })

  it('ignores federated relays and topics that are no discovery topic', () => {
    const { pubsub, follower: f } = follower({ ignore: (peer) => peer === 'relay' })
    pubsub.change('relay', rooms(50))
    pubsub.change('a', ['/p2p-rooms/2/room/broadcast/x', '/meshsub/anything'])
    expect(f.size).toBe(0)
    f.stop()
  })

  it('rate-limits announcements per peer with a burst of maxRoomsPerPeer, and rejects junk', async () => {
    const { pubsub, follower: f, counts } = follower({ announcementsPerSecond: 1, maxRoomsPerPeer: 3 })
    pubsub.change('a', rooms(1))
    const validate = pubsub.topicValidators.get(rooms(1)[0]) as TopicValidatorFn
    const key = await generateKeyPair('Ed25519')
    const from = peerIdFromPrivateKey(key)
    const data = encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/ip4/127.0.0.1/tcp/1/ws/p2p/${from.toString()}/p2p-circuit/webrtc/p2p/${from.toString()}`] })
    const msg = { type: 'signed', from, data, topic: rooms(1)[0], sequenceNumber: 1n, signature: new Uint8Array(), key: key.publicKey } as any
    const results = await Promise.all(Array.from({ length: 6 }, async () => validate(from, msg)))
    expect(results.filter((r) => r === TopicValidatorResult.Accept)).toHaveLength(3)
    expect(counts.refusals['announcement-rate']).toBe(3)
    const other = await generateKeyPair('Ed25519')
    expect(await validate(peerIdFromPrivateKey(other), { ...msg, data: new Uint8Array([1, 2, 3]) })).toBe(TopicValidatorResult.Reject)
    expect(f.rejected).toBe(1)
    f.stop()
  })
})

describe('relay hand-over', () => {
  afterEach(() => { vi.useRealTimers() })

  /**
   * A room with one cached announcement (of its one member), and a gossipsub whose stream to
   * newcomer `b` opens `openAfterMs` after b subscribes (never, if undefined): when each `sendRpc` to b
   * was tried, in ms since b subscribed, and whether it was the one that went out.
   */
  async function handOverTo (openAfterMs?: number): Promise<Array<{ at: number, sent: boolean }>> {
    const { pubsub, follower: f } = follower()
    const topic = rooms(1)[0]
    const key = await generateKeyPair('Ed25519')
    const from = peerIdFromPrivateKey(key)
    pubsub.change(from.toString(), [topic])
    const data = encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/ip4/127.0.0.1/tcp/1/ws/p2p/${from.toString()}/p2p-circuit/webrtc/p2p/${from.toString()}`] })
    const msg = { type: 'signed', from, data, topic, sequenceNumber: 1n, signature: new Uint8Array(), key: key.publicKey } as any
    expect(await (pubsub.topicValidators.get(topic) as TopicValidatorFn)(from, msg)).toBe(TopicValidatorResult.Accept)
    vi.useFakeTimers()
    const start = Date.now()
    const tries: Array<{ at: number, sent: boolean }> = []
    Object.assign(pubsub, {
      sendRpc: (peer: string) => {
        const at = Date.now() - start
        const sent = peer === 'b' && openAfterMs !== undefined && at >= openAfterMs
        tries.push({ at, sent })
        return sent
      }
    })
    pubsub.change('b', [topic])
    await vi.advanceTimersByTimeAsync(HANDOVER_TIMEOUT_MS * 2)
    f.stop()
    return tries
  }

  it('hands a newcomer the room within one short wait of its stream opening, the wait doubling from HANDOVER_FIRST_RETRY_MS', async () => {
    const tries = await handOverTo(25)
    expect(tries.map((t) => t.at)).toEqual([0, HANDOVER_FIRST_RETRY_MS, HANDOVER_FIRST_RETRY_MS * 3])
    expect(tries.map((t) => t.sent)).toEqual([false, false, true])
  })

  it('tries at most every HANDOVER_RETRY_MS and gives up after HANDOVER_TIMEOUT_MS', async () => {
    const tries = await handOverTo(undefined)
    const gaps = tries.slice(1).map((t, i) => t.at - tries[i].at)
    expect(Math.max(...gaps)).toBe(HANDOVER_RETRY_MS)
    expect(tries.at(-1)?.at).toBeLessThanOrEqual(HANDOVER_TIMEOUT_MS)
    expect(tries.at(-1)?.at).toBeGreaterThan(HANDOVER_TIMEOUT_MS - HANDOVER_RETRY_MS)
    // about 55 tries in 5 s, not 500
    expect(tries.length).toBeLessThan(HANDOVER_TIMEOUT_MS / HANDOVER_RETRY_MS + 10)
  })
})

describe('ipKey', () => {
  it('keeps IPv4 as is, maps IPv4-mapped IPv6 to IPv4 and cuts IPv6 to its /64', () => {
    expect(ipKey('203.0.113.9')).toBe('203.0.113.9')
    expect(ipKey('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(ipKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(ipKey('2001:DB8:0:0:1::1')).toBe('2001:db8:0:0::/64')
    expect(ipKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(ipKey('::1')).toBe('0:0:0:0::/64')
    expect(ipKey(undefined)).toBeUndefined()
  })
})
