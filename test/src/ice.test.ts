import { createServer } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchIceServers, resolveIceServers } from '../../src/ice.js'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'

// a real HTTP server on loopback: each path answers one way a relay's /ice-servers may answer
const answers: Record<string, { status: number, body: string }> = {
  '/ice-servers': { status: 200, body: JSON.stringify({ iceServers: [{ urls: ['turn:192.0.2.2:3478?transport=udp'], username: '1700000000:p2p-rooms', credential: 'c2VjcmV0', extra: 1 }], ttl: 86400 }) },
  '/string-urls': { status: 200, body: JSON.stringify({ iceServers: [{ urls: 'stun:192.0.2.2:3478' }] }) },
  '/not-found': { status: 404, body: 'no' },
  '/not-json': { status: 200, body: '<html>' },
  '/wrong-shape': { status: 200, body: JSON.stringify({ iceServers: [{ url: 'turn:x' }] }) }
}
let server: Server
let base: string

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hang') return // never answers
    const a = answers[req.url ?? ''] ?? { status: 500, body: '' }
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('ice servers from a relay', () => {
  it('appends the fetched servers to the configured ones, known fields only', async () => {
    const stun = { urls: 'stun:198.51.100.1:3478' }
    expect(await resolveIceServers([stun], `${base}/ice-servers`)).toEqual([
      stun,
      { urls: ['turn:192.0.2.2:3478?transport=udp'], username: '1700000000:p2p-rooms', credential: 'c2VjcmV0' }
    ])
  })

  it('accepts a single URL string', async () => {
    expect(await fetchIceServers(`${base}/string-urls`)).toEqual([{ urls: 'stun:192.0.2.2:3478' }])
  })

  it('uses the configured servers as they are without a URL', async () => {
    const servers = [{ urls: 'stun:198.51.100.1:3478' }]
    expect(await resolveIceServers(servers)).toBe(servers)
  })

  it.each([
    ['an HTTP error', '/not-found', /HTTP 404/],
    ['a body that is not JSON', '/not-json', /SyntaxError/],
    ['JSON of another shape', '/wrong-shape', /did not answer \{ iceServers/]
  ])('throws IceServersFetchError on %s', async (_, path, message) => {
    const err = await fetchIceServers(`${base}${path}`).catch((e) => e)
    expect(err.name).toBe('IceServersFetchError')
    expect(err.message).toMatch(message)
    expect(err.message).toContain(`${base}${path}`)
  })

  it('throws IceServersFetchError when nothing listens', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/ice-servers`
    await new Promise((resolve) => closed.close(resolve))
    const err = await fetchIceServers(url).catch((e) => e)
    expect(err.name).toBe('IceServersFetchError')
    expect(err.message).toContain(url)
  })

  it('gives up on a server that never answers', async () => {
    const err = await fetchIceServers(`${base}/hang`, 200).catch((e) => e)
    expect(err.name).toBe('IceServersFetchError')
    expect(err.message).toMatch(/no answer within 200 ms/)
  })
})
