/**
 * The relay's HTTP endpoint, on its own port, off unless `--http` is given:
 *
 * - `GET /`: the admin page for operators (admin-page.ts), or its data to `Accept: application/json`;
 * - `GET /metrics`: Prometheus text format (libp2p's metrics and the relay's, metrics.ts);
 * - `GET /status`: JSON, `RelayStatus` (counts only: never a room name or topic);
 * - `GET /healthz`: `ok` while the relay runs;
 * - `GET /ice-servers`: `{ iceServers: RTCIceServer[], ttl }` for browser nodes, with fresh TURN
 *   REST credentials on every request when a TURN secret is set; pages may fetch it only from
 *   the origins in `iceOrigins` (CORS), at most `iceRateLimit` times a minute per IP.
 *
 * No request takes the relay down: a request target that is not a path (`GET // HTTP/1.1` used
 * to end the process), a malformed or oversized head, a slow or idle client each get a 4xx or
 * are closed, counted by reason (refusals.ts); an error while answering is a 500, logged and
 * counted. Timeouts and a connection cap bound what slow clients hold (constants.ts `HTTP_*`).
 *
 * Bind it to loopback or a private interface; put only `/ice-servers` behind the public reverse
 * proxy (relay/README.md).
 */
import { createServer } from 'node:http'
import { createAdminPage } from './admin-page.js'
import { RateLimiter } from 'p2p-rooms/rate-limit'
import {
  DEFAULT_ICE_ORIGINS, DEFAULT_ICE_RATE_LIMIT, HTTP_HEADERS_TIMEOUT_MS, HTTP_IDLE_TIMEOUT_MS, HTTP_KEEP_ALIVE_TIMEOUT_MS,
  HTTP_MAX_CONNECTIONS, HTTP_MAX_HEADER_BYTES, HTTP_MAX_REQUESTS_PER_SOCKET, HTTP_REQUEST_TIMEOUT_MS,
  HTTP_MAX_TARGET_LENGTH, HTTP_TIMEOUT_CHECK_INTERVAL_MS, MAX_RATE_TRACKED_PEERS
} from './constants.js'
import { ipKey } from './refusals.js'
import { iceServers } from './turn.js'
import type { Relay } from './index.js'
import type { RefusalReason } from './refusals.js'
import type { IceServersInit } from './turn.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface HttpInit {
  host: string
  /** 0 for any free port. */
  port: number
  /** What `GET /ice-servers` hands out; an empty list when absent. */
  iceServers?: IceServersInit
  /** Origins whose pages may fetch `/ice-servers` (`*`: any). @default [] */
  iceOrigins?: string[]
  /** `/ice-servers` requests per minute per IP (IPv6: per /64). @default 30 */
  iceRateLimit?: number
  /** Called with an error the endpoint survived (a failed reply): log it. */
  onError?: (err: unknown) => void
}

export interface HttpEndpoint {
  /** Base URL, e.g. `http://127.0.0.1:9091`. */
  url: string
  close(): Promise<void>
}

export async function startHttp (relay: Relay, init: HttpInit): Promise<HttpEndpoint> {
  const admin = createAdminPage(relay)
  admin.start()
  const iceOrigins = init.iceOrigins ?? DEFAULT_ICE_ORIGINS
  const iceRate = init.iceRateLimit ?? DEFAULT_ICE_RATE_LIMIT
  const iceLimiter = new RateLimiter({ rate: iceRate / 60, burst: iceRate, maxKeys: MAX_RATE_TRACKED_PEERS })
  const refuse = (reason: RefusalReason, socket: Socket | undefined): void => {
    relay.countRefusal({ kind: 'http', reason, ip: socket?.remoteAddress })
  }

  // sockets with a request in progress, and sockets that were answered at least once: a socket
  // timing out between two requests is an ordinary keep-alive close, not a refusal
  const busy = new WeakSet<Socket>()
  const served = new WeakSet<Socket>()
  const server = createServer({
    headersTimeout: HTTP_HEADERS_TIMEOUT_MS,
    requestTimeout: HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: HTTP_KEEP_ALIVE_TIMEOUT_MS,
    connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_INTERVAL_MS,
    maxHeaderSize: HTTP_MAX_HEADER_BYTES
  }, (req, res) => {
    busy.add(req.socket)
    res.once('close', () => {
      busy.delete(req.socket)
      served.add(req.socket)
    })
    const reply = async (): Promise<void> => {
      const path = requestPath(req.url)
      if (path === undefined) {
        refuse('http-malformed', req.socket)
        send(res, 400, 'text/plain', 'bad request target\n', { connection: 'close' })
        return
      }
      if (path === '/ice-servers') {
        iceServersReply(req, res)
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
    reply().catch((err) => {
      relay.countError('http')
      init.onError?.(err)
      if (res.headersSent) res.destroy()
      else send(res, 500, 'text/plain', 'internal error\n', { connection: 'close' })
    })
  })
  server.maxConnections = HTTP_MAX_CONNECTIONS
  server.maxRequestsPerSocket = HTTP_MAX_REQUESTS_PER_SOCKET
  // a socket that sends nothing (before its first request, or between two) is closed
  server.setTimeout(HTTP_IDLE_TIMEOUT_MS, (socket: Socket) => {
    if (busy.has(socket) || !served.has(socket)) refuse('http-timeout', socket)
    socket.destroy()
  })
  server.on('drop', (data?: { remoteAddress?: string }) => {
    relay.countRefusal({ kind: 'http', reason: 'http-connections', ip: data?.remoteAddress })
  })
  // Node answers a request it cannot parse, or that timed out, here: the reason is counted
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Socket) => {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
    refuse(timeout ? 'http-timeout' : 'http-malformed', socket)
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const status = timeout ? '408 Request Timeout' : tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  })
  server.on('error', (err) => {
    relay.countError('http')
    init.onError?.(err)
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

  /** `/ice-servers`: only to pages of `iceOrigins`, at most `iceRateLimit` a minute per IP. */
  function iceServersReply (req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET'
    const cors = corsHeaders(req.headers.origin, iceOrigins)
    if (cors === undefined) {
      refuse('ice-origin', req.socket)
      send(res, 403, 'text/plain', 'origin not allowed\n', { vary: 'Origin' })
      return
    }
    const headers = { ...cors, 'access-control-allow-methods': 'GET, HEAD, OPTIONS' }
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...headers, 'access-control-max-age': '86400' })
      res.end()
      return
    }
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, 'text/plain', 'method not allowed\n', { ...headers, allow: 'GET, HEAD, OPTIONS' })
      return
    }
    const ip = ipKey(req.socket.remoteAddress) ?? 'unknown'
    if (!iceLimiter.take(ip)) {
      refuse('ice-rate', req.socket)
      send(res, 429, 'text/plain', 'too many requests\n', { ...headers, 'retry-after': String(Math.ceil(60 / iceRate)) })
      return
    }
    const body = init.iceServers === undefined
      ? { iceServers: [], ttl: 0 }
      : { iceServers: iceServers(init.iceServers), ttl: init.iceServers.turnTtl }
    send(res, 200, 'application/json', JSON.stringify(body), headers)
  }
}

function send (res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers })
  res.end(body)
}

/**
 * The path of a request target, or undefined when it is not one the relay serves: an
 * origin-form target (`/path?query`) or an absolute-form one (`http://host/path`, as a proxy may
 * send). Never throws: `GET // HTTP/1.1` once ended the relay because `new URL('//', base)` does.
 */
export function requestPath (target: unknown): string | undefined {
  if (typeof target !== 'string' || target.length === 0 || target.length > HTTP_MAX_TARGET_LENGTH) return undefined
  let url: URL
  try {
    // a leading `//` would read as a protocol-relative URL with the path as its host
    if (target.startsWith('/')) url = new URL(`http://relay${target}`)
    else if (/^https?:\/\//i.test(target)) url = new URL(target)
    else return undefined
  } catch {
    return undefined
  }
  return url.pathname
}

/**
 * The CORS headers for a request from `origin` (the `Origin` header), or undefined when that
 * origin may not read the answer. A request without `Origin` comes from no other site's page
 * (a same-origin page, curl, a server) and is answered without CORS headers. `*` in `allowed`
 * allows every origin, `null` (sandboxed frames, `file:`) included.
 */
export function corsHeaders (origin: unknown, allowed: readonly string[]): Record<string, string> | undefined {
  if (origin === undefined) return {}
  if (typeof origin !== 'string') return undefined
  if (allowed.includes('*')) return { 'access-control-allow-origin': '*' }
  if (!allowed.includes(origin)) return undefined
  return { 'access-control-allow-origin': origin, vary: 'Origin' }
}
