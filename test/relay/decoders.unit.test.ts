/**
 * Property-based tests (fast-check) of what the relay reads off the network before any other
 * check: the HTTP request target and Origin header, the subscriptions and announcements a peer
 * sends on discovery topics, the IP a per-IP limit counts. Random and mutated input never
 * throws past the decoder, and what it keeps stays within its bound. (Relay records:
 * test/src/relay-records.test.ts, shared with browser nodes; raw HTTP on a real relay process:
 * test/relay/http-hardening.int.test.ts.)
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { corsHeaders, requestPath } from '../../relay/src/http.js'
import { createRefusalCounter, ipKey } from '../../relay/src/refusals.js'
import { RoomFollower } from '../../relay/src/room-follower.js'
import { DISCOVERY_TOPIC_PREFIX, MAX_ANNOUNCEMENT_BYTES } from '../../src/constants.js'
import { encodeAnnouncement } from '../../src/wire.js'
import type { FollowerPubSub, SubscriptionChange } from '../../relay/src/room-follower.js'
import type { TopicValidatorFn } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'

const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => log }) as any

describe('HTTP request target and Origin, on random input', () => {
  it('requestPath never throws, and returns a path or nothing', () => {
    const target = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.webUrl(),
      fc.tuple(fc.constantFrom('/', '//', 'http://', 'https://', '*', ''), fc.string({ maxLength: 100 })).map(([a, b]) => a + b),
      fc.constantFrom(undefined, null, 42, {}, [])
    )
    fc.assert(fc.property(target, (t) => {
      const path = requestPath(t)
      if (path === undefined) return
      expect(path.startsWith('/')).toBe(true)
      // percent-encoding may triple a character, never more
      expect(path.length).toBeLessThanOrEqual(3 * (t as string).length + 1)
    }), { numRuns: 5000 })
    expect(requestPath('//')).toBe('//')
    expect(requestPath('/ice-servers?x=1')).toBe('/ice-servers')
    expect(requestPath('status')).toBeUndefined()
  })

  it('corsHeaders never throws, and lets through only the origins allowed', () => {
    const origin = fc.oneof(fc.constant(undefined), fc.webUrl().map((u) => new URL(u).origin), fc.string({ maxLength: 80 }), fc.array(fc.string(), { maxLength: 3 }), fc.constant('null'))
    fc.assert(fc.property(origin, fc.array(fc.oneof(fc.webUrl().map((u) => new URL(u).origin), fc.constant('*')), { maxLength: 4 }), (o, allowed) => {
      const headers = corsHeaders(o, allowed)
      if (headers === undefined) return
      const allowOrigin = headers['access-control-allow-origin']
      if (o === undefined) expect(allowOrigin).toBeUndefined()
      else if (allowed.includes('*')) expect(allowOrigin).toBe('*')
      else expect(allowed).toContain(allowOrigin)
      if (allowOrigin !== undefined && allowOrigin !== '*') expect(allowOrigin).toBe(o)
    }), { numRuns: 5000 })
  })

  it('ipKey never throws, and counts an IPv6 address by its /64', () => {
    fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 60 })), (ip) => {
      const key = ipKey(ip)
      expect(typeof key === 'string' || key === undefined).toBe(true)
      if (key !== undefined) expect(key.length).toBeLessThanOrEqual(Math.max(ip.length, 24))
    }), { numRuns: 5000 })
    fc.assert(fc.property(fc.ipV6(), fc.integer({ min: 0, max: 0xffff }), (ip, low) => {
      const key = ipKey(ip)
      if (key === undefined || !key.endsWith('/64')) return
      // any address in the same /64 counts as the same
      const groups = key.replace('::/64', '').split(':')
      expect(ipKey(`${groups.join(':')}:0:0:0:${low.toString(16)}`)).toBe(key)
    }), { numRuns: 2000 })
  })
})

class StubPubSub implements FollowerPubSub {
  readonly subscribed = new Set<string>()
  readonly topicValidators = new Map<string, TopicValidatorFn>()
  listener?: (evt: CustomEvent<SubscriptionChange>) => void
  addEventListener (_t: 'subscription-change', l: (evt: CustomEvent<SubscriptionChange>) => void): void { this.listener = l }
  removeEventListener (): void { this.listener = undefined }
  subscribe (topic: string): void { this.subscribed.add(topic) }
  unsubscribe (topic: string): void { this.subscribed.delete(topic) }
  getSubscribers (): PeerId[] { return [] }
}

describe('discovery subscriptions and announcements, on random input', () => {
  it('follows at most maxRooms rooms, maxRoomsPerPeer per peer and maxRoomsPerIp per IP, whatever peers subscribe to', () => {
    const limits = { maxRooms: 20, maxRoomsPerPeer: 5, maxRoomsPerIp: 8 }
    const change = fc.record({
      peer: fc.integer({ min: 0, max: 9 }),
      topics: fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.string({ maxLength: 8 }).map((t) => DISCOVERY_TOPIC_PREFIX + t)), { maxLength: 30 }),
      subscribe: fc.boolean(),
      forget: fc.boolean()
    })
    fc.assert(fc.property(fc.array(change, { maxLength: 40 }), (changes) => {
      const pubsub = new StubPubSub()
      const ips = ['192.0.2.1', '192.0.2.1', '192.0.2.2', '2001:db8::1', '2001:db8::2', '2001:db8:0:1::1', undefined, '::ffff:192.0.2.2', '192.0.2.3', 'junk']
      const f = new RoomFollower(pubsub, { ...limits, announcementsPerSecond: 1, roomTtl: 1000, log, refusals: createRefusalCounter(() => {}), ipOf: (p) => ipKey(ips[Number(p)]) })
      f.start()
      for (const c of changes) {
        const peerId = String(c.peer)
        pubsub.listener?.(new CustomEvent('subscription-change', { detail: { peerId: { toString: () => peerId }, subscriptions: c.topics.map((topic) => ({ topic, subscribe: c.subscribe })) } }))
        if (c.forget) f.forget(peerId)
        expect(f.size).toBeLessThanOrEqual(limits.maxRooms)
        expect(pubsub.subscribed.size).toBe(f.size)
        expect([...pubsub.subscribed].every((t) => t.startsWith(DISCOVERY_TOPIC_PREFIX))).toBe(true)
      }
      expect(f.peers).toBeLessThanOrEqual(10)
      f.stop()
      expect(pubsub.subscribed.size).toBe(0)
    }), { numRuns: 500 })
  })

  it('the announcement check never throws on random or mutated data, and accepts only the sender\'s own announcement', async () => {
    const key = await generateKeyPair('Ed25519')
    const from = peerIdFromPrivateKey(key)
    const own = encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/ip4/127.0.0.1/tcp/1/ws/p2p/${from.toString()}/p2p-circuit/webrtc/p2p/${from.toString()}`] })
    const pubsub = new StubPubSub()
    const refusals = createRefusalCounter(() => {})
    const f = new RoomFollower(pubsub, { maxRooms: 10, maxRoomsPerPeer: 10, maxRoomsPerIp: 10, announcementsPerSecond: 1e9, roomTtl: 1000, log, refusals })
    f.start()
    const topic = `${DISCOVERY_TOPIC_PREFIX}prop`
    pubsub.listener?.(new CustomEvent('subscription-change', { detail: { peerId: { toString: () => 'x' }, subscriptions: [{ topic, subscribe: true }] } }))
    const validate = pubsub.topicValidators.get(topic) as TopicValidatorFn
    const data = fc.oneof(
      fc.uint8Array({ maxLength: MAX_ANNOUNCEMENT_BYTES + 16 }),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat()).map(([at, b, cut]) => { const out = Uint8Array.from(own); out[at % out.length] = b; return out.subarray(0, Math.max(1, out.length - (cut % 8))) }),
      fc.json().map((j) => new TextEncoder().encode(j))
    )
    await fc.assert(fc.asyncProperty(data, fc.boolean(), async (bytes, signed) => {
      const msg = signed
        ? { type: 'signed', from, data: bytes, topic, sequenceNumber: 1n, signature: new Uint8Array(), key: key.publicKey }
        : { type: 'unsigned', data: bytes, topic }
      const result = await validate(from, msg as any)
      expect([TopicValidatorResult.Accept, TopicValidatorResult.Reject]).toContain(result)
      if (result === TopicValidatorResult.Accept) expect(signed).toBe(true)
    }), { numRuns: 2000 })
    expect(await validate(from, { type: 'signed', from, data: own, topic, sequenceNumber: 1n, signature: new Uint8Array(), key: key.publicKey } as any)).toBe(TopicValidatorResult.Accept)
    f.stop()
  })
})
