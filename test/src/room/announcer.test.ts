import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ANNOUNCE_RETRY_ATTEMPTS, ANNOUNCE_RETRY_MS, DEFAULT_ANNOUNCE_INTERVAL_MS, REPLY_DELAY_MIN_MS, REPLY_DELAY_SPREAD_MS } from '../../../src/constants.js'
import { Announcer } from '../../../src/room/announcer.js'
import { decodeAnnouncement, encodeAnnouncement } from '../../../src/wire.js'
import { fakeTimers, silent } from './stubs.js'
import type { PeerId } from '@libp2p/interface'

const TOPIC = '/p2p-rooms/test/discovery/room'
const SELF = 'peer-self'

/** An announcer on a stubbed gossipsub: `published` is what it said, `known` the members it knows. */
function announcer (addrs: string[] = [`/addr/p2p/${SELF}`]): {
  announcer: Announcer
  published: Array<ReturnType<typeof decodeAnnouncement>>
  subscribed: string[]
  known: Set<string>
  announced: Array<[string, string[], number | undefined]>
  left: string[]
  /** Whom the stubbed gossipsub says each publish reached; empty: nobody. */
  recipients: string[]
} {
  const published: Array<ReturnType<typeof decodeAnnouncement>> = []
  const subscribed: string[] = []
  const known = new Set<string>()
  const announced: Array<[string, string[], number | undefined]> = []
  const left: string[] = []
  const recipients = ['relay']
  const a = new Announcer({
    self: SELF,
    room: 'test',
    topic: TOPIC,
    log: silent,
    pubsub: {
      subscribe: (topic: string) => { subscribed.push(topic) },
      unsubscribe: (topic: string) => { subscribed.splice(subscribed.indexOf(topic), 1) },
      publish: async (_topic: string, data: Uint8Array) => {
        published.push(decodeAnnouncement(data, SELF))
        return { recipients: [...recipients] as any }
      }
    } as any,
    interval: DEFAULT_ANNOUNCE_INTERVAL_MS,
    startedAt: 7,
    ownAddrs: () => addrs,
    isMember: (peer) => known.has(peer),
    onAnnounce: (peer, peerAddrs, startedAt) => { announced.push([peer, peerAddrs, startedAt]) },
    onLeave: (peer) => { left.push(peer) }
  })
  return { announcer: a, published, subscribed, known, announced, left, recipients }
}

/** A signed gossipsub message on `topic` from `from`. */
function message (from: PeerId, data: Uint8Array, topic = TOPIC): any {
  return { type: 'signed', from, topic, data }
}

let bob: PeerId
beforeEach(async () => {
  bob = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  fakeTimers()
})
afterEach(() => { vi.useRealTimers() })

describe('room announcements', () => {
  it('subscribes and announces on start, then every announceInterval, and stops on stop()', async () => {
    const { announcer: a, published, subscribed } = announcer()
    a.start()
    a.start()
    expect(subscribed).toEqual([TOPIC])
    expect(published).toEqual([{ v: 1, kind: 'announce', addrs: [`/addr/p2p/${SELF}`], t: 7 }])
    await vi.advanceTimersByTimeAsync(DEFAULT_ANNOUNCE_INTERVAL_MS * 2)
    expect(published).toHaveLength(3)
    a.stop()
    a.stop()
    await vi.advanceTimersByTimeAsync(DEFAULT_ANNOUNCE_INTERVAL_MS * 2)
    expect(published).toHaveLength(3)
  })

  it('says nothing while it has no address (no reservation yet)', async () => {
    const { announcer: a, published } = announcer([])
    a.start()
    await vi.advanceTimersByTimeAsync(DEFAULT_ANNOUNCE_INTERVAL_MS)
    expect(published).toEqual([])
  })

  it('hands on a member\'s announcement, and answers a newcomer once within the reply delay', async () => {
    const { announcer: a, published, announced } = announcer()
    a.start()
    // an announcement's addresses are the sender's own: they end in its peer ID
    const addrs = [`/addr/p2p/${bob.toString()}`]
    const data = encodeAnnouncement({ v: 1, kind: 'announce', addrs, t: 3 })
    a.onMessage(message(bob, data))
    a.onMessage(message(bob, data))
    expect(announced).toEqual([[bob.toString(), addrs, 3], [bob.toString(), addrs, 3]])
    await vi.advanceTimersByTimeAsync(REPLY_DELAY_MIN_MS + REPLY_DELAY_SPREAD_MS)
    expect(published).toHaveLength(2)
  })

  it('hands on a leave, and drops a malformed announcement or one on another topic', () => {
    const { announcer: a, announced, left } = announcer()
    a.start()
    a.onMessage(message(bob, encodeAnnouncement({ v: 1, kind: 'leave' })))
    a.onMessage(message(bob, new Uint8Array([1, 2, 3])))
    a.onMessage(message(bob, encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/addr/p2p/${bob.toString()}`] }), '/other'))
    expect(left).toEqual([bob.toString()])
    expect(announced).toEqual([])
  })

  it('announces again when the relay starts following the topic', () => {
    const { announcer: a, published } = announcer()
    a.start()
    a.onSubscriptionChange('peer-relay', TOPIC, true)
    expect(published).toHaveLength(2)
  })

  it('announces again every ANNOUNCE_RETRY_MS while gossipsub sends it to nobody, at most ANNOUNCE_RETRY_ATTEMPTS times', async () => {
    const { announcer: a, published, recipients } = announcer()
    recipients.length = 0
    a.start()
    await vi.advanceTimersByTimeAsync(ANNOUNCE_RETRY_MS * 3)
    expect(published).toHaveLength(4)
    // our stream to the relay opened: the next one reaches it, and the retries end
    recipients.push('relay')
    await vi.advanceTimersByTimeAsync(ANNOUNCE_RETRY_MS * 10)
    expect(published).toHaveLength(5)

    const { announcer: b, published: unheard, recipients: none } = announcer()
    none.length = 0
    b.start()
    await vi.advanceTimersByTimeAsync(ANNOUNCE_RETRY_MS * (ANNOUNCE_RETRY_ATTEMPTS + 10))
    expect(unheard).toHaveLength(1 + ANNOUNCE_RETRY_ATTEMPTS)
    b.stop()
    a.stop()
  })
})
