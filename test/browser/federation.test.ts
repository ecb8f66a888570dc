/**
 * Rooms across federated relays, in real Chromium tabs with two real relay processes sharing a
 * federation key (as an operator's relays do): a tab on relay A and a tab on relay B meet and go
 * direct; when relay A is killed, its tab stays in the room, reserves on relay B (which it was
 * never given, and trusts because relay A's record vouches for their federation), and a
 * newcomer on relay B reaches it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { launchChromium, openTab, waitJoined, waitMessages, waitRelayEvent, waitRelayKnown } from './tabs.js'
import type { Tab } from './tabs.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'
import type { Browser } from 'playwright-core'

const fixtureUrl = inject('fixtureUrl')

let browser: Browser
const relays: SpawnedRelay[] = []
const dir = mkdtempSync(join(tmpdir(), 'p2p-rooms-federation-'))
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  await browser?.close()
  await Promise.all(relays.map(async (r) => { await r.stop() }))
  rmSync(dir, { recursive: true, force: true })
})

async function expectDirect (tab: Tab, peerId: string): Promise<void> {
  const conns = await tab.page.evaluate((id) => window.harness.connections(id), peerId)
  expect(conns.some((c) => c.multiplexer === '/webrtc' && !c.limited)).toBe(true)
}

/** `from` publishes `text`; `to` must receive it. */
async function say (from: Tab, to: Tab, text: string): Promise<void> {
  await from.page.evaluate(async (t) => window.harness.publish(t), text)
  await waitMessages(to, text, 1)
  const got = (await to.rec()).messages.filter((m) => m.text === text)
  expect(got.map((m) => m.from)).toEqual([from.peerId])
}

describe('rooms across federated relays', () => {
  it('meet across two relays, and survive the loss of one', async () => {
    // the first relay creates the key file, the second reads it: one federation
    const federationKey = join(dir, 'federation.key')
    const relayA = await spawnRelay({ args: ['--federation-key', federationKey] })
    relays.push(relayA)
    const relayB = await spawnRelay({ args: ['--peer', relayA.multiaddrs[0], '--federation-key', federationKey] })
    relays.push(relayB)
    const room = `federation-${Date.now()}`

    // one reservation each, on the one relay each was given: the pair has to cross relays
    const [a, b] = await Promise.all([
      openTab(browser, fixtureUrl, relayA.multiaddrs[0], room, { nodeInit: { maxRelays: 1 } }),
      openTab(browser, fixtureUrl, relayB.multiaddrs[0], room, { nodeInit: { maxRelays: 1 } })
    ])
    await a.page.evaluate(() => { window.relays.watch() })
    await Promise.all([waitJoined(a, [b.peerId]), waitJoined(b, [a.peerId])])
    await expectDirect(a, b.peerId)
    await expectDirect(b, a.peerId)
    await say(a, b, 'a->b')
    await say(b, a, 'b->a')

    // a learns relay B from the federation (or as b's relay) before it needs it
    await waitRelayKnown(a, relayB.peerId)
    const reserved = await a.page.evaluate(() => window.relays.list().filter((r) => r.reserved).map((r) => r.peerId))
    expect(reserved).toEqual([relayA.peerId])

    const killedAt = await a.page.evaluate(() => performance.now())
    const killedAtNode = Date.now()
    relayA.process.kill('SIGKILL')
    const lostAt = await waitRelayEvent(a, 'relay:disconnect', relayA.peerId)
    const reservedAt = await waitRelayEvent(a, 'relay:connect', relayB.peerId)

    // a newcomer given only relay B reaches a, which started on relay A
    const c = await openTab(browser, fixtureUrl, relayB.multiaddrs[0], room)
    await Promise.all([waitJoined(c, [a.peerId, b.peerId]), waitJoined(a, [c.peerId])])
    const reachedMs = Date.now() - killedAtNode
    await expectDirect(c, a.peerId)
    await expectDirect(a, c.peerId)
    await say(c, a, 'c->a')
    await say(a, c, 'a->c')

    // a never left the room for b, and b still reaches it directly
    expect((await b.rec()).leaves.filter((l) => l.peerId === a.peerId)).toEqual([])
    expect((await a.rec()).leaves).toEqual([])
    await say(a, b, 'a->b again')
    const cJoin = (await c.rec()).joins.find((j) => j.peerId === a.peerId)
    console.log(`relay A killed: tab a saw it gone after ${Math.round(lostAt - killedAt)} ms, reserved on relay B after ${Math.round(reservedAt - killedAt)} ms; ` +
      `a tab opened on relay B then reached a directly ${Math.round((cJoin?.t ?? NaN) - c.joinedAt)} ms after joining (${reachedMs} ms after the kill)`)
  })
})
