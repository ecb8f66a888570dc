/**
 * The relay's HTTP endpoint, on its own port, off unless `--http` is given:
 *
 * - `GET /`: the admin page for operators (admin-page.ts), or its data to `Accept: application/json`;
 * - `GET /metrics`: Prometheus text format (libp2p's metrics and the relay's, metrics.ts);
 * - `GET /status`: JSON, `RelayStatus` (counts only: never a room name or topic);
 * - `GET /healthz`: `ok` while the relay runs;
 * - `GET /ice-servers`: `{ iceServers: RTCIceServer[], ttl }` for browser nodes, with
 *   `Access-Control-Allow-Origin: *` (pages on another origin fetch it) and fresh TURN REST
 *   credentials on every request when a TURN secret is set.
 *
 * Bind it to loopback or a private interface; put only `/ice-servers` behind the public reverse
 * proxy (relay/README.md).
 */
import { createServer } from 'node:http'
import { createAdminPage } from './admin-page.js'
import { iceServers } from './turn.js'
import type { Relay } from './index.js'
import type { IceServersInit } from './turn.js'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface HttpInit {
  host: string
  /** 0 for any free port. */
  port: number
  /** What `GET /ice-servers` hands out; an empty list when absent. */
  iceServers?: IceServersInit
}

export interface HttpEndpoint {
  /** Base URL, e.g. `http://127.0.0.1:9091`. */
  url: string
  close(): Promise<void>
}

export async function startHttp (relay: Relay, init: HttpInit): Promise<HttpEndpoint> {
  const admin = createAdminPage(relay)
  admin.start()
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://relay').pathname
    const reply = async (): Promise<void> => {
      if (path === '/ice-servers') {
        iceServersReply(res, req.method ?? 'GET', init.iceServers)
      } else if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' })
      } else if (path === '/metrics') {
        send(res, 200, relay.registry.contentType, await relay.registry.metrics())
      } else if (path === '/status') {
        send(res, 200, 'application/json', JSON.stringify(await relay.status()))
      } else if (path === '/') {
        await admin.handle(req, res)
      } else if (path === '/healthz') {
        send(res, 200, 'text/plain', 'ok\n')
      } else {
        send(res, 404, 'text/plain', 'not found\n')
      }
    }
    reply().catch((err) => { send(res, 500, 'text/plain', `${String(err?.message ?? err)}\n`) })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port, init.host, () => { server.off('error', reject); resolve() })
  })
  const { address, port: bound } = server.address() as AddressInfo
  const hostPart = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${hostPart}:${bound}`,
    close: async () => { admin.stop(); await new Promise<void>((resolve) => { server.close(() => { resolve() }); server.closeAllConnections() }) }
  }
}

function send (res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers })
  res.end(body)
}

/** Browsers on any origin may read it: it holds nothing but what every room node is handed anyway. */
function iceServersReply (res: ServerResponse, method: string, init: IceServersInit | undefined): void {
  const cors = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, HEAD, OPTIONS' }
  if (method === 'OPTIONS') {
    res.writeHead(204, { ...cors, 'access-control-max-age': '86400' })
    res.end()
    return
  }
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, 405, 'text/plain', 'method not allowed\n', { ...cors, allow: 'GET, HEAD, OPTIONS' })
    return
  }
  const body = init === undefined
    ? { iceServers: [], ttl: 0 }
    : { iceServers: iceServers(init), ttl: init.turnTtl }
  send(res, 200, 'application/json', JSON.stringify(body), cors)
}
