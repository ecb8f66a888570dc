/**
 * Secure WebSockets: with --tls-cert/--tls-key the relay serves TLS on its /tls/ws listen
 * addresses. The certificate is self-signed, made by openssl here; the client is a separate Node
 * process that trusts it through NODE_EXTRA_CA_CERTS (read only at process start) — and one that
 * does not trust it is refused, so TLS is really checked. SIGHUP reloads the certificate files.
 */
import { execFile, execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { spawnRelay } from 'p2p-rooms-relay/spawn'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SpawnedRelay } from 'p2p-rooms-relay/spawn'

const DIAL = new URL('./fixtures/dial.mjs', import.meta.url).pathname

/** Dials and pings `ma` from a fresh Node process with `env`. */
async function dialFromProcess (ma: string, env: NodeJS.ProcessEnv): Promise<{ rtt?: number, error?: string }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--experimental-websocket', DIAL, ma], { env, timeout: 30_000 })
  return JSON.parse(stdout.trim().split('\n').pop() as string)
}

describe('relay over secure WebSockets', () => {
  let dir: string
  let relay: SpawnedRelay
  const reloaded = Promise.withResolvers<void>()

  /** A self-signed certificate for 127.0.0.1 in `<name>-cert.pem`, its key in `<name>-key.pem`. */
  function selfSigned (name: string): void {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, `${name}-key.pem`), '-out', join(dir, `${name}-cert.pem`),
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'
    ], { stdio: 'ignore' })
  }
  const trusting = (name: string): NodeJS.ProcessEnv => ({ ...process.env, NODE_EXTRA_CA_CERTS: join(dir, `${name}-cert.pem`) })
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2p-rooms-relay-tls-'))
    selfSigned('a')
    selfSigned('b')
    // the files the relay reads: certificate a now, b after the reload test renews them
    copyFileSync(join(dir, 'a-cert.pem'), join(dir, 'cert.pem'))
    copyFileSync(join(dir, 'a-key.pem'), join(dir, 'key.pem'))
    relay = await spawnRelay({
      listen: ['/ip4/127.0.0.1/tcp/0/tls/ws'],
      args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')],
      onLog: (entry) => { if (entry.msg === 'reloaded the TLS certificate') reloaded.resolve() }
    })
  })
  afterAll(async () => {
    expect(await relay?.stop()).toBe(0)
    rmSync(dir, { recursive: true, force: true })
  })

  it('prints a /tls/ws multiaddr and serves a client that trusts its certificate', async () => {
    expect(relay.multiaddrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/tls\/ws\/p2p\/12D3KooW\w+$/)
    const result = await dialFromProcess(relay.multiaddrs[0], trusting('a'))
    expect(result.error).toBeUndefined()
    expect(result.rtt).toBeGreaterThanOrEqual(0)
  })

  it('is refused by a client that does not trust its certificate', async () => {
    const env = { ...process.env }
    delete env.NODE_EXTRA_CA_CERTS
    const result = await dialFromProcess(relay.multiaddrs[0], env)
    expect(result.error).toBeDefined()
    expect(result.rtt).toBeUndefined()
  })

  it('serves a renewed certificate after SIGHUP, without a restart', async () => {
    copyFileSync(join(dir, 'b-cert.pem'), join(dir, 'cert.pem'))
    copyFileSync(join(dir, 'b-key.pem'), join(dir, 'key.pem'))
    relay.process.kill('SIGHUP')
    await reloaded.promise
    expect((await dialFromProcess(relay.multiaddrs[0], trusting('b'))).rtt).toBeGreaterThanOrEqual(0)
    expect((await dialFromProcess(relay.multiaddrs[0], trusting('a'))).error).toBeDefined()
  })
})
