/**
 * Media in real Chromium tabs through a real relay: streams made without devices (a painted
 * canvas's `captureStream()`, a WebAudio oscillator; test/browser/fixture/media.ts), sent with the
 * public API, played in `<video>` elements at the receivers. Signalling runs over the direct
 * connections, media over its own RTCPeerConnection: the relay's circuit counters must not move.
 */
import { randomBytes } from 'node:crypto'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { TAB_IDENTITY_STORAGE_KEY } from '../../src/constants.js'
import { startCoturn } from '../setup/coturn.js'
import { launchChromium, openTab, relayStatus, relayedBytes, startTab, waitJoined } from './tabs.js'
import type { Coturn } from '../setup/coturn.js'
import type { Tab } from './tabs.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Browser } from 'playwright-core'

const relayAddr = inject('relayAddr')
const relayHttp = inject('relayHttp')
const fixtureUrl = inject('fixtureUrl')
const TIMEOUT = 60_000

let browser: Browser
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => { await browser?.close() })

async function meet (n: number, room: string, opts: Parameters<typeof openTab>[4] = {}, relay = relayAddr): Promise<Tab[]> {
  const tabs = await Promise.all(Array.from({ length: n }, async () => openTab(browser, fixtureUrl, relay, room, opts)))
  await Promise.all(tabs.map(async (t) => { await waitJoined(t, tabs.filter((o) => o !== t).map((o) => o.peerId)) }))
  return tabs
}

async function closeAll (tabs: Tab[]): Promise<void> {
  await Promise.all(tabs.map(async (t) => { if (!t.page.isClosed()) await t.page.context().close() }))
}

/** Waits until `tab` received stream `id` from `from` (a `stream` event). */
async function waitStream (tab: Tab, from: string, id: string): Promise<void> {
  await tab.page.waitForFunction(([p, i]) => window.media.streams.some((s) => s.peerId === p && s.id === i), [from, id] as const, { timeout: TIMEOUT, polling: 100 })
}

/** Waits until the `<video>` playing stream `id` in `tab` advanced by `seconds` from what it shows now: frames are decoded. */
async function waitPlaying (tab: Tab, id: string, seconds = 0.5): Promise<void> {
  const start = Math.max(0, await tab.page.evaluate((i) => window.media.currentTime(i), id))
  await tab.page.waitForFunction(([i, t]) => window.media.currentTime(i) > t, [id, start + seconds] as const, { timeout: TIMEOUT, polling: 100 })
}

async function waitEnded (tab: Tab, from: string, id: string): Promise<void> {
  await tab.page.waitForFunction(([p, i]) => window.media.streams.some((s) => s.peerId === p && s.id === i && s.ended !== undefined), [from, id] as const, { timeout: TIMEOUT, polling: 100 })
}

/** Waits until the centre of the picture of stream `id` in `tab` is mostly `channel` (0 red, 1 green, 2 blue). */
async function waitColour (tab: Tab, id: string, channel: number): Promise<void> {
  await tab.page.waitForFunction(([i, c]) => {
    const px = window.media.centre(i)
    return px !== undefined && px[c] > 150 && px.every((v, k) => k === c || v < 100)
  }, [id, channel] as const, { timeout: TIMEOUT, polling: 100 })
}

describe('media in rooms', () => {
  it('lets 3 tabs each play the other two\'s video while the relay carries none of it', async () => {
    const tabs = await meet(3, `media3-${Date.now()}`)
    try {
      const before = relayedBytes(await relayStatus(relayHttp))
      const ids = await Promise.all(tabs.map(async (t, i) => t.page.evaluate((k) => window.media.make('cam', ['#f00', '#0f0', '#00f'][k], true), i)))
      // all three at once: every pair's offers cross
      await Promise.all(tabs.map(async (t, i) => { expect(await t.page.evaluate(async (k) => window.media.add('cam', { metadata: { name: `tab ${k}` } }), i)).toBeUndefined() }))
      for (const [i, t] of tabs.entries()) {
        for (const [j, o] of tabs.entries()) {
          if (o === t) continue
          await waitStream(t, o.peerId, ids[j])
          await waitPlaying(t, ids[j])
          // what arrives is what was painted: each sender's own colour, and the metadata it gave
          await waitColour(t, ids[j], j)
          const rec = (await t.page.evaluate(() => window.media.streams)).find((s) => s.id === ids[j])
          expect(rec?.metadata).toEqual({ name: `tab ${j}` })
          expect(await t.page.evaluate((id) => window.media.trackKinds(id), ids[j])).toEqual(expect.arrayContaining(['audio', 'video']))
        }
        // each stream arrived once
        expect((await t.page.evaluate(() => window.media.streams)).map((s) => s.peerId).sort()).toEqual(tabs.filter((_, k) => k !== i).map((o) => o.peerId).sort())
      }
      // room.stats(): frames decoded, bits flowing both ways, on a host candidate (one machine)
      await tabs[0].page.waitForFunction((peers) => peers.every((p) => {
        const m = window.media.stats().peers[p]?.media
        return m !== undefined && m.framesDecoded > 0 && m.bitrateIn > 0 && m.bitrateOut > 0 && m.candidateType === 'host' && m.streamsIn === 1 && m.streamsOut === 1
      }), [tabs[1].peerId, tabs[2].peerId], { timeout: TIMEOUT, polling: 200 })
      const after = relayedBytes(await relayStatus(relayHttp))
      const m = (await tabs[0].page.evaluate(() => window.media.stats())).peers[tabs[1].peerId].media
      console.log(`3 tabs: media to tab 0 from tab 1 at ${m?.bitrateIn} bit/s, ${m?.framesDecoded} frames decoded, rtt ${m?.rttMs} ms; relay saw ${after.circuit - before.circuit} circuit bytes`)
      expect(after.circuit - before.circuit).toBe(0)
    } finally {
      await closeAll(tabs)
    }
  })

  it('switches the picture with replaceTrack without a new stream, and ends it with removeStream', async () => {
    const [a, b] = await meet(2, `media-replace-${Date.now()}`)
    try {
      const id = await a.page.evaluate(() => window.media.make('cam', '#f00'))
      await a.page.evaluate(() => window.media.make('screen', '#00f'))
      expect(await a.page.evaluate(async () => window.media.add('cam'))).toBeUndefined()
      await waitStream(b, a.peerId, id)
      await waitColour(b, id, 0)

      expect(await a.page.evaluate(async () => window.media.replaceVideo('cam', 'screen'))).toBeUndefined()
      await waitColour(b, id, 2)
      await waitPlaying(b, id)
      expect((await b.page.evaluate(() => window.media.streams)).length).toBe(1)
      // a track this room does not send cannot be replaced
      expect(await a.page.evaluate(async () => window.media.replaceVideo('cam', 'screen'))).toBe('InvalidMediaError')

      await a.page.evaluate(async () => { await window.media.remove('cam') })
      await waitEnded(b, a.peerId, id)
      expect(await b.page.evaluate((i) => window.media.trackStates(i), id)).toEqual(['ended'])
    } finally {
      await closeAll([a, b])
    }
  })

  it('keeps the other member\'s stream playing when one removes its own from the m-line they share', async () => {
    const [a, b] = await meet(2, `media-shared-${Date.now()}`)
    try {
      const idA = await a.page.evaluate(() => window.media.make('cam', '#f00'))
      expect(await a.page.evaluate(async () => window.media.add('cam'))).toBeUndefined()
      await waitStream(b, a.peerId, idA)
      await waitPlaying(b, idA)
      // b's video goes out on the transceiver a's offer made (addTrack reuses it)
      const idB = await b.page.evaluate(() => window.media.make('cam', '#0f0'))
      expect(await b.page.evaluate(async () => window.media.add('cam'))).toBeUndefined()
      await waitStream(a, b.peerId, idB)
      await waitPlaying(a, idB)
      await a.page.evaluate(async () => { await window.media.remove('cam') })
      await waitEnded(b, a.peerId, idA)
      expect(await b.page.evaluate((i) => window.media.trackStates(i), idA)).toEqual(['ended'])
      // b's stream at a goes on: not ended, and its picture still green
      expect(await a.page.evaluate((i) => window.media.trackStates(i), idB)).toEqual(['live'])
      expect((await a.page.evaluate(() => window.media.streams)).find((x) => x.id === idB)?.ended).toBeUndefined()
      await waitPlaying(a, idB)
      await waitColour(a, idB, 1)
    } finally {
      await closeAll([a, b])
    }
  })

  it('takes streams only from the host of a one-way room', async () => {
    const [a, b] = await meet(2, `media-oneway-${Date.now()}`, { roomInit: { type: 'one-way' } })
    try {
      // both agree on the host once settled
      await a.page.waitForFunction(() => window.harness.host() !== undefined)
      await expect.poll(async () => [await a.page.evaluate(() => window.harness.host()), await b.page.evaluate(() => window.harness.host())], { timeout: TIMEOUT }).toSatisfy((h: unknown[]) => h[0] === h[1])
      const hostPeer = await a.page.evaluate(() => window.harness.host())
      const [host, guest] = hostPeer === a.peerId ? [a, b] : [b, a]

      const hostId = await host.page.evaluate(() => window.media.make('show', '#0f0'))
      const refusedId = await guest.page.evaluate(() => window.media.make('cam', '#f00'))
      expect(await guest.page.evaluate(async () => window.media.add('cam'))).toBe('NotHostError')
      // a modified client sends anyway: the host's page never delivers it
      expect(await guest.page.evaluate(async () => window.media.addBypassingRules('cam'))).toBeUndefined()
      expect(await host.page.evaluate(async () => window.media.add('show'))).toBeUndefined()
      await waitStream(guest, host.peerId, hostId)
      await waitPlaying(guest, hostId)
      // the guest's stream reached the host's media connection and was refused there
      await host.page.waitForFunction((g) => (window.media.stats().peers[g]?.media?.refused ?? 0) >= 1, guest.peerId, { timeout: TIMEOUT, polling: 100 })
      // and costs the host nothing on the wire: the host's answer does not receive it, so the
      // guest's browser, following the SDP, sends none of it (the transceiver's negotiated
      // direction has no 'send'; 'recvonly' when the host's own stream shares the transceiver)
      await guest.page.waitForFunction((h) => {
        const d = window.media.sendDirections('cam', h)
        return d.length > 0 && d.every((x) => x === 'inactive' || x === 'recvonly')
      }, host.peerId, { timeout: TIMEOUT, polling: 100 })
      // over a window in which the host's video plays on at the guest, no byte of the guest's arrives
      const refusedBefore = await host.page.evaluate(async (g) => window.media.bytesIn(g), guest.peerId)
      await waitPlaying(guest, hostId, 2)
      const refusedAfter = await host.page.evaluate(async (g) => window.media.bytesIn(g), guest.peerId)
      console.log(`one-way: bytes received by the host from the refused guest: ${refusedBefore} at the start of a 2 s window, ${refusedAfter - refusedBefore} during it`)
      expect(refusedBefore).toBeGreaterThanOrEqual(0)
      expect(refusedAfter - refusedBefore).toBe(0)
      expect((await host.page.evaluate(() => window.media.stats())).peers[guest.peerId].media?.bitrateIn).toBe(0)
      expect(await host.page.evaluate(() => window.media.streams)).toEqual([])

      // a handoff: the new host's stream (held all along) is delivered, the old host's ends
      const cam = await guest.page.evaluate(() => window.media.make('cam2', '#00f'))
      expect(await host.page.evaluate(async (g) => window.harness.handOffHost(g), guest.peerId)).toBeUndefined()
      await guest.page.waitForFunction((g) => window.harness.host() === g, guest.peerId, { timeout: TIMEOUT, polling: 100 })
      await waitEnded(guest, host.peerId, hostId)
      expect(await guest.page.evaluate(async () => window.media.add('cam2'))).toBeUndefined()
      await waitStream(host, guest.peerId, cam)
      await waitPlaying(host, cam)
      // the stream the modified client sent before is the host's now: received again, delivered, playing
      await waitStream(host, guest.peerId, refusedId)
      await waitPlaying(host, refusedId)
      await waitColour(host, refusedId, 0)
      // and the old host's stream, refused at the guest now, stops costing it
      await host.page.waitForFunction((g) => {
        const d = window.media.sendDirections('show', g)
        return d.length > 0 && d.every((x) => x === 'inactive' || x === 'recvonly')
      }, guest.peerId, { timeout: TIMEOUT, polling: 100 })
      expect(await host.page.evaluate(async () => window.media.add('show'))).toBe('NotHostError')
    } finally {
      await closeAll([a, b])
    }
  })

  it('ends a leaving member\'s streams, and sends a late joiner the streams already flowing', async () => {
    const room = `media-late-${Date.now()}`
    const [a, b] = await meet(2, room)
    let c: Tab | undefined
    try {
      const idA = await a.page.evaluate(() => window.media.make('cam', '#f00'))
      const idB = await b.page.evaluate(() => window.media.make('cam', '#00f'))
      await Promise.all([a, b].map(async (t) => { expect(await t.page.evaluate(async () => window.media.add('cam'))).toBeUndefined() }))
      await waitStream(a, b.peerId, idB)
      await waitStream(b, a.peerId, idA)

      c = await openTab(browser, fixtureUrl, relayAddr, room)
      await waitJoined(c, [a.peerId, b.peerId])
      await waitStream(c, a.peerId, idA)
      await waitStream(c, b.peerId, idB)
      await waitPlaying(c, idA)
      await waitPlaying(c, idB)

      await b.page.context().close()
      await Promise.all([waitEnded(a, b.peerId, idB), waitEnded(c, b.peerId, idB)])
      // a's stream goes on
      await waitPlaying(c, idA)
    } finally {
      await closeAll([a, b, ...(c !== undefined ? [c] : [])])
    }
  })
})

describe('media across a dropped connection', () => {
  it('sends a stream added while a member\'s direct connection was down, once it heals', async () => {
    const [a, b] = await meet(2, `media-heal-${Date.now()}`)
    try {
      const id = await a.page.evaluate(() => window.media.make('cam', '#0f0'))
      // the network drops at both ends (a WebRTC peer that closes alone leaves the other side's
      // connection looking open until ICE consent fails, tens of seconds later); a adds its
      // stream while its room no longer counts b as direct
      const [path] = await Promise.all([
        a.page.evaluate(async (p) => window.media.addWhileAway('cam', p), b.peerId),
        b.page.evaluate((p) => window.media.dropDirect(p), a.peerId)
      ])
      expect(path).not.toBe('direct')
      await waitStream(b, a.peerId, id)
      await waitPlaying(b, id)
      await waitColour(b, id, 1)
    } finally {
      await closeAll([a, b])
    }
  })
})

describe('media after a crash', () => {
  it('streams again to and from a tab that crashed and reloaded under the same peer ID', async () => {
    const name = `media-crash-${Date.now()}`
    const [a, b] = await meet(2, name)
    let again: Tab | undefined
    try {
      const idA = await a.page.evaluate(() => window.media.make('cam', '#f00'))
      expect(await a.page.evaluate(async () => window.media.add('cam'))).toBeUndefined()
      await waitStream(b, a.peerId, idA)

      // b's renderer dies without a word; its reload is a new page given the tab's key (as in
      // faults.test.ts): a sees its old session leave, or takes the new one as a restart
      const key = await b.page.evaluate((k) => sessionStorage.getItem(k), TAB_IDENTITY_STORAGE_KEY)
      const cdp = await b.page.context().newCDPSession(b.page)
      const crashed = new Promise<void>((resolve) => { b.page.once('crash', () => { resolve() }) })
      void cdp.send('Page.crash').catch(() => {})
      await crashed
      const page = await b.page.context().newPage()
      await page.goto(fixtureUrl)
      await page.evaluate(([k, v]) => { sessionStorage.setItem(k, v) }, [TAB_IDENTITY_STORAGE_KEY, key as string] as const)
      again = await startTab(page, relayAddr, name)
      expect(again.peerId).toBe(b.peerId)
      await waitJoined(again, [a.peerId])

      // a's stream reaches the new page, and the new page's reaches a
      await waitStream(again, a.peerId, idA)
      await waitPlaying(again, idA)
      const idB = await again.page.evaluate(() => window.media.make('cam', '#00f'))
      expect(await again.page.evaluate(async () => window.media.add('cam'))).toBeUndefined()
      await waitStream(a, b.peerId, idB)
      await waitPlaying(a, idB)
    } finally {
      await closeAll([a, b, ...(again !== undefined ? [again] : [])])
    }
  })
})

describe('media in a private room', () => {
  it('never takes a stream from a peer that has the room\'s topic but not its secret', async () => {
    const name = `media-private-${Date.now()}`
    const secret = 'correct horse battery staple'
    const [a, b] = await meet(2, name, { roomInit: { secret } })
    const impostor = await openTab(browser, fixtureUrl, relayAddr, `${name}-impostor`)
    try {
      // an impostor that learnt the topic ID (the relay sees it) but has no key: it reaches the
      // members directly, and they drop its sealed messages
      await impostor.page.evaluate(async ([n, s]) => window.harness.impostor(n, 'broadcast', s, 'guess'), [name, secret] as const)
      await Promise.all([a, b].map(async (t) => {
        await t.page.waitForFunction(() => (window.harness.stats()?.messages.dropped.unauthenticated ?? 0) > 0, undefined, { timeout: TIMEOUT, polling: 100 })
      }))
      await impostor.page.evaluate(() => window.media.make('cam', '#f00'))
      expect(await impostor.page.evaluate(async (ids) => window.media.pushTo('cam', ids), [a.peerId, b.peerId])).toBeUndefined()
      // its announcement and offer reach the members, who hold them unprocessed
      await Promise.all([a, b].map(async (t) => { await t.page.waitForFunction((p) => window.media.held(p) >= 2, impostor.peerId, { timeout: TIMEOUT, polling: 100 }) }))

      // the members' own media flows
      const id = await a.page.evaluate(() => window.media.make('cam', '#0f0'))
      expect(await a.page.evaluate(async () => window.media.add('cam'))).toBeUndefined()
      await waitStream(b, a.peerId, id)
      await waitPlaying(b, id)
      for (const t of [a, b]) {
        expect((await t.page.evaluate(() => window.media.streams)).filter((s) => s.peerId === impostor.peerId)).toEqual([])
        expect((await t.page.evaluate(() => window.media.stats())).peers[impostor.peerId]?.media).toBeUndefined()
      }
    } finally {
      await closeAll([a, b, impostor])
    }
  })
})

describe('media through TURN (coturn)', () => {
  const SECRET = randomBytes(16).toString('hex')
  let coturn: Coturn
  let relay: SpawnedRelay

  beforeAll(async () => {
    coturn = await startCoturn({ secret: SECRET })
    relay = await spawnRelay({ args: ['--ice-server', coturn.url, '--turn-secret', SECRET, '--ice-origins', new URL(fixtureUrl).origin] })
  })
  afterAll(async () => {
    await relay?.stop()
    await coturn?.stop()
  })

  it('lets two relay-only tabs play each other\'s video', async () => {
    const nodeInit = { iceServersUrl: `${relay.httpUrl}/ice-servers`, iceTransportPolicy: 'relay' as const }
    const tabs = await meet(2, `media-turn-${Date.now()}`, { nodeInit }, relay.multiaddrs[0])
    try {
      const ids = await Promise.all(tabs.map(async (t, i) => t.page.evaluate((k) => window.media.make('cam', k === 0 ? '#f00' : '#00f'), i)))
      await Promise.all(tabs.map(async (t) => { expect(await t.page.evaluate(async () => window.media.add('cam'))).toBeUndefined() }))
      for (const [i, t] of tabs.entries()) {
        const j = 1 - i
        await waitStream(t, tabs[j].peerId, ids[j])
        await waitPlaying(t, ids[j])
        // the media connection, not only the data one, runs through coturn
        await t.page.waitForFunction((p) => window.media.stats().peers[p]?.media?.candidateType === 'relay', tabs[j].peerId, { timeout: TIMEOUT, polling: 200 })
      }
    } finally {
      await closeAll(tabs)
    }
  })
})
