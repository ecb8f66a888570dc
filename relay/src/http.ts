/**
 * The relay's inspection endpoint: `/metrics` (Prometheus text format), `/status` (JSON) and
 * `/healthz`. Off unless `--http` is given; bind it to loopback or a private interface.
 */
import { createServer } from 'node:http'
import type { Relay } from './index.js'
import type { AddressInfo } from 'node:net'

export interface HttpEndpoint {
  url: string
  close(): Promise<void>
}

export async function startHttp (relay: Relay, host: string, port: number): Promise<HttpEndpoint> {
  const server = createServer((req, res) => {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(body)
    }
    const path = new URL(req.url ?? '/', 'http://relay').pathname
    const reply = async (): Promise<void> => {
      if (path === '/metrics') send(200, relay.registry.contentType, await relay.registry.metrics())
      else if (path === '/status') send(200, 'application/json', JSON.stringify(await relay.status()))
      else if (path === '/healthz') send(200, 'text/plain', 'ok\n')
      else send(404, 'text/plain', 'not found\n')
    }
    reply().catch((err) => { send(500, 'text/plain', `${String(err?.message ?? err)}\n`) })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const { address, port: bound } = server.address() as AddressInfo
  const hostPart = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${hostPart}:${bound}`,
    close: async () => { await new Promise<void>((resolve) => { server.close(() => { resolve() }); server.closeAllConnections() }) }
  }
}
