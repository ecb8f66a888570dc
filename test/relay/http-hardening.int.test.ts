/**
 * The HTTP endpoint of a real relay process against what no browser sends: raw sockets with
 * malformed, oversized, slow or silent requests, a connection flood, other sites' pages asking
 * for TURN credentials, and an error thrown inside the process. Each gets a 4xx or is closed,
 * is counted by reason, and the relay keeps serving.
 */
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HTTP_HEADERS_TIMEOUT_MS, HTTP_IDLE_TIMEOUT_MS, HTTP_MAX_CONNECTIONS } from '../../relay/src/constants.js'
import { idleSockets, metrics, rawExchange, value } from './clients.js'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'

/** Requests as a client could send them: well-formed ones, mutated ones, random bytes. */
function httpRequest (): fc.Arbitrary<Uint8Array> {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
  const method = fc.constantFrom('GET', 'HEAD', 'POST', 'OPTIONS', 'DELETE', 'PUT', 'CONNECT', 'TRACE', 'get', 'G\u00c9T', '')
  const target = fc.oneof(fc.constantFrom('/', '//', '/status', '/metrics', '/healthz', '/ice-servers', '/ice-servers?x=1', '*', '//x/y', 'http://relay/status', '/%', '/%zz', '/../../etc/passwd'), fc.string({ maxLength: 64 }))
  const header = fc.tuple(fc.constantFrom('Host', 'Origin', 'Content-Length', 'Transfer-Encoding', 'Connection', 'X-Forwarded-For', 'Expect'), fc.string({ maxLength: 40 }))
  const request = fc.tuple(method, target, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', ''), fc.array(header, { maxLength: 6 }), fc.string({ maxLength: 64 }))
    .map(([m, t, v, hs, body]) => enc(`${m} ${t} ${v}\r\n${hs.map(([k, x]) => `${k}: ${x}\r\n`).join('')}\r\n${body}`))
  const mutate = fc.tuple(request, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }))
    .map(([bytes, flips]) => { const out = Uint8Array.from(bytes); for (const [at, b] of flips) if (out.length > 0) out[at % out.length] = b; return out })
  return fc.oneof(request, mutate, fc.uint8Array({ minLength: 1, maxLength: 512 }))
}

const refusals = async (relay: SpawnedRelay, reason: string): Promise<number> =>
  value(await metrics(relay.httpUrl), 'p2p_rooms_relay_refusals_total', { reason })

/** The relay still answers, and its process is still there. */
async function alive (relay: SpawnedRelay): Promise<void> {
  expect(relay.process.exitCode).toBeNull()
  const res = await fetch(`${relay.httpUrl}/healthz`)
  expect(res.status).toBe(200)
}

describe('relay HTTP endpoint against malformed and slow requests', () => {
  let relay: SpawnedRelay
  beforeAll(async () => { relay = await spawnRelay() })
  afterAll(async () => { expect(await relay.stop()).toBe(0) })

  it('answers GET // with 404 instead of exiting', async () => {
    const { response } = await rawExchange(relay.httpUrl, ['GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
    expect(response).toMatch(/^HTTP\/1\.1 404 /)
    await alive(relay)
  })

  it('answers request targets that are no path with 400, and counts them', async () => {
    const before = await refusals(relay, 'http_malformed')
    for (const target of ['//relay/status', 'status', 'http:', '/%', 'ftp://x/y', '*']) {
      const { response } = await rawExchange(relay.httpUrl, [`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`])
      expect(response, target).toMatch(/^HTTP\/1\.1 (400|404) /)
    }
    const { response } = await rawExchange(relay.httpUrl, ['GET status HTTP/1.1\r\nHost: x\r\n\r\n'])
    expect(response).toMatch(/^HTTP\/1\.1 400 /)
    expect(await refusals(relay, 'http_malformed')).toBeGreaterThan(before)
    await alive(relay)
  })

  it('answers bytes that are not HTTP with 400 and an oversized head with 431', async () => {
    const junk = await rawExchange(relay.httpUrl, [new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])])
    expect(junk.closed).toBe(true)
    expect(junk.response).toMatch(/^HTTP\/1\.1 400 /)
    const big = await rawExchange(relay.httpUrl, [`GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16_384)}\r\n\r\n`])
    expect(big.response).toMatch(/^HTTP\/1\.1 431 /)
    await alive(relay)
  })

  it('closes a connection that never sends a byte, and one whose head trickles in', async () => {
    const before = await refusals(relay, 'http_timeout')
    const [silent, slow] = await Promise.all([
      rawExchange(relay.httpUrl, [], { timeoutMs: HTTP_IDLE_TIMEOUT_MS + 5_000 }),
      // one header line every 500 ms, never finished: a slowloris
      rawExchange(relay.httpUrl, ['GET /status HTTP/1.1\r\n', ...Array.from({ length: 40 }, (_, i) => `X-${i}: y\r\n`)], { gapMs: 500, timeoutMs: HTTP_HEADERS_TIMEOUT_MS + 8_000 })
    ])
    expect(silent.closed).toBe(true)
    expect(silent.ms).toBeLessThan(HTTP_IDLE_TIMEOUT_MS + 3_000)
    expect(slow.closed).toBe(true)
    expect(slow.ms).toBeLessThan(HTTP_HEADERS_TIMEOUT_MS + 3_000)
    expect(slow.response).toMatch(/^HTTP\/1\.1 408 /)
    expect(await refusals(relay, 'http_timeout')).toBeGreaterThanOrEqual(before + 2)
    await alive(relay)
  })

  it('answers 300 random and mutated requests with an HTTP status or a close, and keeps running', async () => {
    const before = (await metrics(relay.httpUrl)).find((m) => m.name === 'process_resident_memory_bytes')?.value ?? 0
    await fc.assert(fc.asyncProperty(httpRequest(), async (bytes) => {
      const { response, closed } = await rawExchange(relay.httpUrl, [bytes], { end: true, timeoutMs: 8_000 })
      expect(closed).toBe(true)
      if (response !== '') expect(response).toMatch(/^HTTP\/1\.1 [1-5]\d\d /)
    }), { numRuns: 300 })
    await alive(relay)
    const after = (await metrics(relay.httpUrl)).find((m) => m.name === 'process_resident_memory_bytes')?.value ?? 0
    console.log(`relay RSS before and after 300 random HTTP requests: ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB`)
  })

  it(`holds at most ${HTTP_MAX_CONNECTIONS} HTTP connections, and serves again once they go`, async () => {
    const { hostname, port } = new URL(relay.httpUrl)
    const before = await refusals(relay, 'http_connections')
    const flood = await idleSockets(hostname, Number(port), HTTP_MAX_CONNECTIONS + 20)
    // the ones beyond the cap are closed at once
    await expect.poll(() => flood.filter((s) => s.closedAt !== undefined).length, { timeout: 5_000 }).toBeGreaterThanOrEqual(20)
    for (const { socket } of flood) socket.destroy()
    await expect.poll(async () => refusals(relay, 'http_connections'), { timeout: 5_000 }).toBeGreaterThanOrEqual(before + 20)
    await alive(relay)
  })
})

describe('relay /ice-servers for other sites', () => {
  let relay: SpawnedRelay
  beforeAll(async () => {
    relay = await spawnRelay({
      args: ['--ice-server', 'turn:turn.example.com:3478', '--turn-secret', 'secret', '--ice-origins', 'https://app.example.com', '--ice-rate-limit', '3']
    })
  })
  afterAll(async () => { expect(await relay.stop()).toBe(0) })

  it('refuses a page whose origin is not allowed, without minting credentials', async () => {
    const res = await fetch(`${relay.httpUrl}/ice-servers`, { headers: { origin: 'https://evil.example.net' } })
    expect(res.status).toBe(403)
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
    expect(await res.text()).not.toContain('credential')
    const preflight = await fetch(`${relay.httpUrl}/ice-servers`, { method: 'OPTIONS', headers: { origin: 'null', 'access-control-request-method': 'GET' } })
    expect(preflight.status).toBe(403)
    expect(await refusals(relay, 'ice_origin')).toBe(2)
  })

  it('answers an allowed origin with that origin, and refuses beyond --ice-rate-limit a minute per IP', async () => {
    const ask = async (): Promise<Response> => fetch(`${relay.httpUrl}/ice-servers`, { headers: { origin: 'https://app.example.com' } })
    const first = await ask()
    expect(first.status).toBe(200)
    expect(first.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(first.headers.get('vary')).toMatch(/Origin/)
    expect((await first.json()).iceServers[0].username).toMatch(/^\d+:p2p-rooms$/)
    expect((await ask()).status).toBe(200)
    // a request without Origin (curl, a server) counts against the same IP
    expect((await fetch(`${relay.httpUrl}/ice-servers`)).status).toBe(200)
    const limited = await ask()
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await refusals(relay, 'ice_rate')).toBe(1)
  })
})

describe('relay process against unexpected errors', () => {
  it('logs and counts an uncaught exception and an unhandled rejection, and keeps running', async () => {
    const logs: Array<Record<string, any>> = []
    // a module loaded into the relay process that throws from a timer and rejects a promise
    // nobody awaits, as a bug in a library would
    const fault = fileURLToPath(new URL('./fixtures/throw-later.mjs', import.meta.url))
    const relay = await spawnRelay({ env: { ...process.env, NODE_OPTIONS: `--import ${fault}` }, onLog: (entry) => logs.push(entry) })
    try {
      await expect.poll(async () => {
        const samples = await metrics(relay.httpUrl)
        return [value(samples, 'p2p_rooms_relay_errors_total', { source: 'uncaught_exception' }), value(samples, 'p2p_rooms_relay_errors_total', { source: 'unhandled_rejection' })]
      }, { timeout: 10_000 }).toEqual([1, 1])
      expect(logs.some((l) => l.source === 'uncaught-exception' && /thrown later/.test(l.msg))).toBe(true)
      expect(logs.some((l) => l.source === 'unhandled-rejection' && /rejected later/.test(l.msg))).toBe(true)
      await alive(relay)
    } finally {
      expect(await relay.stop()).toBe(0)
    }
  })
})
