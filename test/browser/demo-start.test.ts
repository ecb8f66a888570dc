/**
 * `npm start` as its README paragraph promises: a built page (not the dev server), and a relay
 * that keeps its port and peer ID across restarts, or says plainly that its port is taken.
 * No browser: the page is fetched as a browser would first fetch it.
 */
import { rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startDemo, tempKeyFile } from './demo-helpers.js'
import type { Server } from 'node:net'

/** A port free right now (the OS picks it; the test then asks for it by number). */
async function freePort (): Promise<number> {
  const server = await listen(0)
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function listen (port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { resolve(server) })
  })
}

describe('npm start', () => {
  it('serves the built, minified page and its relay.json', async () => {
    const demo = await startDemo()
    try {
      const html = await (await fetch(demo.appUrl)).text()
      expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/[^"]+\.js">/)
      expect(html).not.toContain('/src/main.ts')
      expect(html).not.toContain('@vite/client')
      const entry = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] ?? ''
      const js = await (await fetch(new URL(entry, demo.appUrl))).text()
      // minified: long lines, no indentation
      expect(js.split('\n').length).toBeLessThan(js.length / 500)
      const relays = await (await fetch(new URL('/relay.json', demo.appUrl))).json()
      expect(relays.relays).toEqual([demo.relayMultiaddr])
      expect(demo.output()).toMatch(/page\s+(built and minified in \d+ ms|built page, unchanged since the last start)/)
    } finally {
      await demo.stop()
    }
  })

  it('keeps the relay\'s port and peer ID across restarts, from its key file', async () => {
    const key = tempKeyFile()
    const [relayPort, adminPort] = [await freePort(), await freePort()]
    const args = ['--port', '0', '--relay-port', String(relayPort), '--admin-port', String(adminPort), '--relay-key', key]
    const first = await startDemo({ args })
    expect(first.relayMultiaddr).toMatch(new RegExp(`^/ip4/127.0.0.1/tcp/${relayPort}/ws/p2p/12D3KooW`))
    expect(first.adminUrl).toBe(`http://127.0.0.1:${adminPort}/`)
    expect(await first.stop()).toBe(0)
    const second = await startDemo({ args })
    try {
      expect(second.relayMultiaddr).toBe(first.relayMultiaddr)
      expect((await (await fetch(`${second.adminUrl}status`)).json()).peerId).toBe(first.relayMultiaddr.split('/p2p/')[1])
    } finally {
      await second.stop()
      rmSync(dirname(key), { recursive: true, force: true })
    }
  })

  it('says so, and exits, when the relay\'s port is taken', async () => {
    const taken = await listen(0)
    const port = (taken.address() as { port: number }).port
    try {
      const key = tempKeyFile()
      const demo = await startDemo({ args: ['--port', '0', '--relay-port', String(port), '--admin-port', '0', '--relay-key', key], until: /cannot start/ })
      const code = await new Promise((resolve) => {
        if (demo.process.exitCode !== null) resolve(demo.process.exitCode)
        else demo.process.once('exit', resolve)
      })
      expect(code).toBe(1)
      expect(demo.output()).toContain(`the relay cannot start: port ${port} is taken`)
      expect(demo.output()).toContain('--relay-port')
      rmSync(dirname(key), { recursive: true, force: true })
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  })
})
