/**
 * STUN/TURN end to end: a real coturn on this machine's LAN address, a real relay process that
 * mints TURN REST credentials for it (`--ice-server`, `--turn-secret`) at `GET /ice-servers`,
 * and Chromium tabs that fetch them (`iceServersUrl`) and may only use relayed candidates
 * (`iceTransportPolicy: 'relay'`): their WebRTC connection must run through coturn, as it does
 * between two peers behind symmetric NATs.
 */
import { randomBytes } from 'node:crypto'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { mintTurnCredentials } from '../../relay/src/turn.js'
import { startCoturn } from '../setup/coturn.js'
import { launchChromium, openTab, waitJoined, waitMessages } from './tabs.js'
import type { Coturn } from '../setup/coturn.js'
import type { Tab } from './tabs.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Browser } from 'playwright-core'

const fixtureUrl = inject('fixtureUrl')
const SECRET = randomBytes(16).toString('hex')
const MESSAGES = 20
const MESSAGE_BYTES = 1024

let browser: Browser
let coturn: Coturn
let relay: SpawnedRelay

beforeAll(async () => {
  [browser, coturn] = await Promise.all([launchChromium(), startCoturn({ secret: SECRET })])
  // the fixture's pages fetch /ice-servers from another origin (the relay's HTTP port): allowed by name
  relay = await spawnRelay({ args: ['--ice-server', coturn.url, '--turn-secret', SECRET, '--ice-origins', new URL(fixtureUrl).origin] })
})

afterAll(async () => {
  await browser?.close()
  await relay?.stop()
  await coturn?.stop()
})

/** Publishes `MESSAGES` messages of `MESSAGE_BYTES` from `from`; `to` must receive each once. */
async function send (from: Tab, to: Tab, prefix: string): Promise<void> {
  const filler = 'x'.repeat(MESSAGE_BYTES)
  for (let i = 0; i < MESSAGES; i++) await from.page.evaluate(async (text) => window.harness.publish(text), `${prefix}${i}:${filler}`)
  await waitMessages(to, prefix, MESSAGES)
  const got = (await to.rec()).messages.filter((m) => m.text.startsWith(prefix))
  expect(got.map((m) => m.from)).toEqual(Array(MESSAGES).fill(from.peerId))
  expect(got.map((m) => m.text.split(':')[0]).sort()).toEqual(Array.from({ length: MESSAGES }, (_, i) => `${prefix}${i}`).sort())
}

/** coturn's `peer usage` line of each closed allocation: bytes it relayed to (`sb`) and from (`rb`) the peer. */
function peerUsage (log: string): Array<{ session: string, rb: number, sb: number }> {
  return [...log.matchAll(/session (\d+): peer usage: .*?, rb=(\d+), sp=\d+, sb=(\d+)/g)]
    .map((m) => ({ session: m[1], rb: Number(m[2]), sb: Number(m[3]) }))
}

describe('TURN (coturn)', () => {
  it('carries a room between two relay-only tabs that fetched their credentials from the relay', async () => {
    const started = Date.now()
    const nodeInit = { iceServersUrl: `${relay.httpUrl}/ice-servers`, iceTransportPolicy: 'relay' as const }
    const room = `turn-${Date.now()}`
    const [a, b] = await Promise.all([0, 1].map(async () => openTab(browser, fixtureUrl, relay.multiaddrs[0], room, { nodeInit })))
    await Promise.all([waitJoined(a, [b.peerId]), waitJoined(b, [a.peerId])])
    const joinedMs = Date.now() - started

    await send(a, b, 'a2b')
    await send(b, a, 'b2a')

    const rtcBytes: string[] = []
    for (const [t, other] of [[a, b], [b, a]] as const) {
      const conns = await t.page.evaluate((id) => window.harness.connections(id), other.peerId)
      expect(conns.some((c) => c.multiplexer === '/webrtc' && !c.limited)).toBe(true)
      // the browser's view: the connection runs between two relayed candidates, both on coturn
      const pairs = await t.page.evaluate(async (id) => window.ice.selectedPairs(id), other.peerId)
      expect(pairs.length).toBeGreaterThan(0)
      for (const p of pairs) {
        expect(p.local).toMatchObject({ type: 'relay', address: coturn.ip, relayProtocol: 'udp' })
        expect(p.remote).toMatchObject({ type: 'relay', address: coturn.ip })
      }
      rtcBytes.push(...pairs.map((p) => `${p.bytesSent}/${p.bytesReceived}`))
      // and room.stats() says so
      expect((await t.page.evaluate(() => window.harness.stats()))?.peers[other.peerId].candidateType).toBe('relay')
      expect(pairs.some((p) => p.bytesSent > MESSAGES * MESSAGE_BYTES && p.bytesReceived > MESSAGES * MESSAGE_BYTES)).toBe(true)
    }

    // coturn's view: a stopped node releases its allocation (REFRESH, lifetime 0) and coturn logs
    // what it relayed; each tab's allocation carried the room both ways
    await Promise.all([a, b].map(async (t) => { await t.page.evaluate(async () => window.harness.stop()) }))
    await coturn.waitForLog(/session \d+: peer usage: /, 2)
    const usage = peerUsage(coturn.log())
    expect(usage.filter((u) => u.rb > MESSAGES * MESSAGE_BYTES && u.sb > MESSAGES * MESSAGE_BYTES).length).toBeGreaterThanOrEqual(2)
    expect(coturn.log()).toMatch(/CREATE_PERMISSION processed, success/)
    console.log(`TURN: 2 relay-only tabs direct after ${joinedMs} ms; coturn relayed ${usage.map((u) => `${u.sb}/${u.rb}`).join(', ')} bytes (to/from peer, per allocation), tabs' ICE pairs ${rtcBytes.join(', ')} bytes (sent/received); case took ${Date.now() - started} ms`)
    await Promise.all([a, b].map(async (t) => { await t.page.close() }))
  })

  it('fails createRoomNode with IceServersFetchError when iceServersUrl is wrong', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(fixtureUrl)
      await page.waitForFunction(() => window.harness !== undefined)
      const url = `${relay.httpUrl}/no-such-path`
      const err = await page.evaluate(async ([r, u]) => window.harness.start(r, 'turn-error', { nodeInit: { iceServersUrl: u } }).then(() => 'started', (e) => `${e.name}: ${e.message}`), [relay.multiaddrs[0], url] as const)
      // the relay answers 404 without CORS headers on any other path: the page cannot even read it
      expect(err).toMatch(/^IceServersFetchError: could not get ICE servers from \S+no-such-path \(TypeError: Failed to fetch; unreachable, or it answered without Access-Control-Allow-Origin\)$/)
    } finally {
      await page.close()
    }
  })

  it('refuses credentials minted with another secret', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(fixtureUrl)
      await page.waitForFunction(() => window.ice !== undefined)
      // the relay's own credentials get a relayed candidate: the setup is not what fails below
      const { iceServers } = await (await fetch(`${relay.httpUrl}/ice-servers`)).json()
      const good = await page.evaluate(async (servers) => window.ice.gather(servers, 'relay'), iceServers)
      expect(good.candidates.some((c) => c.type === 'relay' && c.address === coturn.ip)).toBe(true)

      const { username, credential } = mintTurnCredentials(`not-${SECRET}`, 600)
      const bad = await page.evaluate(async (servers) => window.ice.gather(servers, 'relay'), [{ urls: [coturn.url], username, credential }])
      expect(bad.candidates).toEqual([])
      expect(bad.errors.map((e) => e.errorCode)).toContain(401)
      await coturn.waitForLog(new RegExp(`user <${username}>: .*error 401`))
    } finally {
      await page.close()
    }
  })
})
