/**
 * Vite config of the demo page.
 *
 * The page asks its own origin for `/relay.json` (`{ "relays": ["/ip4/…/ws/p2p/…"] }`) to learn
 * where the relay is. Here, in `vite` (dev) and `vite preview`, the `relayJson` plugin below
 * answers it from the `P2P_ROOMS_RELAYS` environment variable, which `npm start`
 * (scripts/start.mjs) sets to the multiaddrs of the relay it spawned.
 *
 * `vite build` writes a static site to web/dist with no relay.json in it: whatever serves
 * web/dist must also serve `/relay.json` for the relay it runs (a static file next to
 * index.html is enough). A page can always be pointed elsewhere with `?relay=<multiaddr>`.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Plugin } from 'vite'

/** Comma- or whitespace-separated relay multiaddrs, each ending in `/p2p/<relay peer ID>`. */
export const RELAYS_ENV = 'P2P_ROOMS_RELAYS'

/**
 * When `1`, the host part of every relay multiaddr is replaced with the host the page was
 * loaded from. `npm start -- --host` sets it: the relay then listens on all interfaces, and a
 * phone on the LAN that opened http://192.168.1.20:5173 must dial the relay at 192.168.1.20 too.
 */
export const REWRITE_HOST_ENV = 'P2P_ROOMS_RELAYS_REWRITE_HOST'

export function relayJson (): Plugin {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const configured = (process.env[RELAYS_ENV] ?? '').split(/[\s,]+/).filter((a) => a !== '')
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(`${JSON.stringify(body)}\n`)
    }
    if (configured.length === 0) {
      send(503, { error: `no relay configured: run \`npm start\` from the repository root, or set ${RELAYS_ENV} to the relay multiaddr` })
      return
    }
    const relays = process.env[REWRITE_HOST_ENV] === '1'
      ? [...new Set(configured.map((a) => withHost(a, requestHost(req))))]
      : configured
    send(200, { relays })
  }
  return {
    name: 'p2p-rooms:relay-json',
    // registered before Vite's own middlewares, so the SPA fallback never answers it
    configureServer (server) { server.middlewares.use('/relay.json', handler) },
    configurePreviewServer (server) { server.middlewares.use('/relay.json', handler) }
  }
}

/** The hostname the browser used to reach us, without port or IPv6 brackets. */
function requestHost (req: IncomingMessage): string | undefined {
  const host = req.headers.host
  if (host === undefined || host === '') return undefined
  try {
    return new URL(`http://${host}`).hostname.replace(/^\[|\]$/g, '')
  } catch {
    return undefined
  }
}

/** `/ip4/0.0.0.0/tcp/1234/ws/p2p/…` with `host` instead of its first (address) component. */
function withHost (addr: string, host: string | undefined): string {
  if (host === undefined) return addr
  if (host === 'localhost') host = '127.0.0.1'
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns'
  return addr.replace(/^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+/, `/${proto}/${host}`)
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [relayJson()],
  server: {
    // loopback unless asked otherwise (`npm start -- --host`, or `vite --host`)
    host: '127.0.0.1',
    port: 5173
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // libp2p and its dependencies are modern ESM (BigInt, class fields, AbortSignal.any, …)
    target: 'es2022',
    // libp2p, gossipsub, noise and WebRTC are about 720 kB minified (200 kB gzipped): expected
    chunkSizeWarningLimit: 1000
  }
})
