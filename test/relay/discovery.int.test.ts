/**
 * The relay forwards room announcements between peers that are not connected to each other.
 * Plain gossipsub clients (no WebRTC) stand in for browser tabs: what is tested is the relay.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { DISCOVERY_TOPIC_PREFIX, MAX_ANNOUNCEMENT_BYTES, ROOM_TOPIC_PREFIX } from '../../src/constants.js'
import { encodeAnnouncement } from '../../src/wire.js'
import { gossipClient, stopClients } from './clients.js'
import type { GossipSub } from '@libp2p/gossipsub'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')
const relayPeer = relayAddr.split('/p2p/')[1]

type Client = Awaited<ReturnType<typeof gossipClient>>
afterAll(stopClients)

async function client (): Promise<Client> {
  return await gossipClient(relayAddr, { allowPublishToZeroTopicPeers: true })
}

/** What a client knows of the relay and `topic`, for a step that did not happen in time. */
function stateOf (name: string, c: Client, topic: string): string {
  const pubsub = c.services.pubsub as GossipSub & { getMeshPeers: (topic: string) => string[] }
  const conns = c.getConnections().map((conn) => `${conn.remotePeer.toString() === relayPeer ? 'relay' : conn.remotePeer.toString()} ${conn.status}: ${conn.streams.map((s) => `${s.direction} ${s.protocol ?? '?'}`).join(', ')}`)
  return `${name}: connections [${conns.join('; ')}], relay subscribed ${String(pubsub.getSubscribers(topic).map(String).includes(relayPeer))}, mesh [${pubsub.getMeshPeers(topic).join(', ')}]`
}

/**
 * `promise`, or an error naming `what` and the clients' state once `ms` passed: a step that never
 * happens says which one it was, rather than the test timing out.
 */
async function step<T> (what: string, promise: Promise<T>, clients: Record<string, Client>, topic: string, ms = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      void fetch(`${relayHttp}/status`).then(async (r) => r.text()).catch((err) => String(err)).then((status) => {
        const states = Object.entries(clients).map(([name, c]) => stateOf(name, c, topic))
        reject(new Error(`not within ${ms} ms: ${what}\n${states.join('\n')}\nrelay status: ${status}`))
      })
    }, ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** A well-formed announcement of `c` (the relay forwards nothing else). */
function announcementOf (c: Client): Uint8Array {
  return encodeAnnouncement({ v: 1, kind: 'announce', addrs: [`/ip4/127.0.0.1/tcp/1/ws/p2p/${relayPeer}/p2p-circuit/webrtc/p2p/${c.peerId.toString()}`] })
}

/** Resolves once the relay has told `c` it subscribes to `topic`. */
async function relayFollows (c: Client, topic: string): Promise<void> {
  const has = (): boolean => c.services.pubsub.getSubscribers(topic).some((p) => p.toString() === relayPeer)
  if (has()) return
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (!has()) return
      c.services.pubsub.removeEventListener('subscription-change', check)
      resolve()
    }
    c.services.pubsub.addEventListener('subscription-change', check)
  })
}

/**
 * Resolves once `c` has grafted the relay into `topic`'s mesh: its gossipsub stream to the relay is
 * open (a publish before that reaches nobody), and the relay forwards the topic's messages to it
 * at once rather than through a later IHAVE.
 */
async function relayMeshes (c: Client, topic: string): Promise<void> {
  // getMeshPeers is on gossipsub's implementation, not on its exported interface
  const pubsub = c.services.pubsub as GossipSub & { getMeshPeers: (topic: string) => string[] }
  const has = (): boolean => pubsub.getMeshPeers(topic).includes(relayPeer)
  if (has()) return
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (!has()) return
      c.services.pubsub.removeEventListener('gossipsub:graft', check)
      resolve()
    }
    c.services.pubsub.addEventListener('gossipsub:graft', check)
  })
}

describe('relay room discovery', () => {
  // gossipsub's default IP-colocation penalty made the relay ignore the GRAFTs of an 11th and
  // later peer from one IP; every client here shares 127.0.0.1
  it('forwards announcements among fourteen peers that share one IP', async () => {
    const topic = `${DISCOVERY_TOPIC_PREFIX}crowd-${Date.now()}`
    const peers = await Promise.all(Array.from({ length: 14 }, client))
    const seen = peers.map(() => new Set<string>())
    peers.forEach((p, i) => {
      p.services.pubsub.addEventListener('message', (e) => {
        if (e.detail.topic === topic && e.detail.type === 'signed') seen[i].add(e.detail.from.toString())
      })
      p.services.pubsub.subscribe(topic)
    })
    await step('the relay followed the topic', Promise.all(peers.map(async (p) => { await relayFollows(p, topic) })), Object.fromEntries(peers.map((p, i) => [`peer ${i}`, p])), topic)
    await Promise.all(peers.map(async (p) => p.services.pubsub.publish(topic, announcementOf(p))))

    await expect.poll(() => seen.map((s) => s.size), { timeout: 20_000 }).toEqual(peers.map(() => peers.length - 1))
  })

  it('forwards well-formed announcements only, rejecting oversized and malformed ones', async () => {
    const topic = `${DISCOVERY_TOPIC_PREFIX}junk-${Date.now()}`
    const [sender, receiver] = await Promise.all([client(), client()])
    const got: Uint8Array[] = []
    receiver.services.pubsub.addEventListener('message', (e) => { if (e.detail.topic === topic) got.push(e.detail.data) })
    for (const c of [sender, receiver]) c.services.pubsub.subscribe(topic)
    await step('the relay followed the topic', Promise.all([relayFollows(sender, topic), relayFollows(receiver, topic)]), { sender, receiver }, topic)
    const before = (await (await fetch(`${relayHttp}/status`)).json()).counters.announcementsRejected

    const own = `/ip4/127.0.0.1/tcp/1/ws/p2p/${relayPeer}/p2p-circuit/webrtc/p2p/${sender.peerId.toString()}`
    const valid = announcementOf(sender)
    await sender.services.pubsub.publish(topic, new Uint8Array(MAX_ANNOUNCEMENT_BYTES + 1).fill(0x20))
    await sender.services.pubsub.publish(topic, new TextEncoder().encode('{"v":1,"kind":"announce"'))
    await sender.services.pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'announce', addrs: [own.replace(sender.peerId.toString(), relayPeer)] }))
    await sender.services.pubsub.publish(topic, valid)

    // the relay forwards in order: once the valid one is here, any junk it forwarded would be too
    await expect.poll(() => got.length, { timeout: 10_000 }).toBeGreaterThan(0)
    expect(got).toEqual([valid])
    const after = (await (await fetch(`${relayHttp}/status`)).json()).counters.announcementsRejected
    expect(after - before).toBe(3)
  })

  it('hands a newcomer the announcements of the room\'s members as their senders signed them, and none of those who left', async () => {
    const topic = `${DISCOVERY_TOPIC_PREFIX}snapshot-${Date.now()}`
    const [member, gone] = await Promise.all([client(), client()])
    for (const c of [member, gone]) c.services.pubsub.subscribe(topic)
    // knowing the relay follows the topic is not enough: 1 run in 6 published gone's leave before
    // gone's own gossipsub stream to the relay was open, to nobody, and waited out the timeout
    await step('both clients grafted the relay', Promise.all([relayMeshes(member, topic), relayMeshes(gone, topic)]), { member, gone }, topic)
    await member.services.pubsub.publish(topic, announcementOf(member))
    await gone.services.pubsub.publish(topic, announcementOf(gone))
    await gone.services.pubsub.publish(topic, encodeAnnouncement({ v: 1, kind: 'leave' }))
    // the relay has processed them once `member` sees gone's leave forwarded
    await step('member heard gone leave', new Promise<void>((resolve) => {
      member.services.pubsub.addEventListener('message', function seen (e) {
        if (e.detail.topic !== topic || e.detail.type !== 'signed' || !e.detail.from.equals(gone.peerId)) return
        if (new TextDecoder().decode(e.detail.data).includes('leave')) {
          member.services.pubsub.removeEventListener('message', seen)
          resolve()
        }
      })
    }), { member, gone }, topic)

    // nobody announces again: what the newcomer learns, it learns from the relay's hand-over
    const newcomer = await client()
    const got: Array<{ from: string, data: Uint8Array }> = []
    newcomer.services.pubsub.addEventListener('message', (e) => {
      if (e.detail.topic === topic && e.detail.type === 'signed') got.push({ from: e.detail.from.toString(), data: e.detail.data })
    })
    newcomer.services.pubsub.subscribe(topic)
    // its gossipsub delivered them only after checking each signature against its sender
    await expect.poll(() => got.length, { timeout: 10_000 }).toBeGreaterThan(0)
    expect(got).toEqual([{ from: member.peerId.toString(), data: announcementOf(member) }])
  })

  it('never subscribes to a room data topic', async () => {
    const name = `data-${Date.now()}`
    const c = await client()
    c.services.pubsub.subscribe(DISCOVERY_TOPIC_PREFIX + name)
    c.services.pubsub.subscribe(ROOM_TOPIC_PREFIX + name)
    await step('the relay followed the topic', relayFollows(c, DISCOVERY_TOPIC_PREFIX + name), { c }, DISCOVERY_TOPIC_PREFIX + name)
    expect(c.services.pubsub.getSubscribers(ROOM_TOPIC_PREFIX + name).map(String)).not.toContain(relayPeer)
    const status = await (await fetch(`${relayHttp}/status`)).json()
    expect(status.roomsFollowed).toBeGreaterThanOrEqual(1)
  })
})
