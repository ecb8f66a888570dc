#!/usr/bin/env node
/**
 * `npm start`: the demo, ready to open in several tabs.
 *
 *   1. builds src/ and relay/ if their dist/ is missing (`npm run build`);
 *   2. starts a real relay process (p2p-rooms-relay, via spawnRelay);
 *   3. starts the Vite dev server for web/, whose /relay.json answers with that relay's multiaddr;
 *   4. prints where everything is, and stops both on Ctrl+C (SIGINT) or SIGTERM.
 *
 * Options:  --host [address]   listen on 0.0.0.0 (or the address given) instead of 127.0.0.1,
 *                              for other devices on the LAN; HOST=… does the same
 *           --port <n>         web server port (PORT=…); default 5173, or the next free one
 *           --room <name>      room in the printed URL; default lobby
 */
import { spawnSync } from 'node:child_process'
import { Command, InvalidArgumentError } from 'commander'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const WEB = join(ROOT, 'web')

function parseArgs (argv) {
  const program = new Command('npm start --')
    .description('Starts a local relay and the demo web app')
    .option('--host [address]', 'listen on this address instead of 127.0.0.1 (alone: 0.0.0.0, for other devices on the LAN)', process.env.HOST)
    .option('--port <n>', 'web server port; the next free one if taken', (v) => {
      const n = Number(v)
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is an integer from 0 to 65535')
      return n
    }, process.env.PORT !== undefined && process.env.PORT !== '' ? Number(process.env.PORT) : 5173)
    .option('--room <name>', 'room in the printed URL', 'lobby')
    .parse(argv, { from: 'user' })
  const opts = program.opts()
  // `--host` alone means every interface, like Vite's own flag
  const host = opts.host === true ? '0.0.0.0' : (opts.host === undefined || opts.host === '' ? '127.0.0.1' : opts.host)
  return { host, port: opts.port, room: opts.room }
}

/** `npm run build` when a dist/ is missing; a hint when a source file is newer than its build. */
function ensureBuilt () {
  const outputs = [join(ROOT, 'src/dist/index.js'), join(ROOT, 'relay/dist/spawn.js'), join(ROOT, 'relay/dist/bin.js')]
  if (outputs.some((f) => !existsSync(f))) {
    console.log('src/dist or relay/dist is missing: running `npm run build`…')
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    const { status } = spawnSync(npm, ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
    if (status !== 0) {
      console.error('npm start: `npm run build` failed')
      process.exit(1)
    }
    return
  }
  const newest = (dir) => Math.max(...readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(dir, f)).mtimeMs))
  const built = (file) => statSync(file).mtimeMs
  if (newest(join(ROOT, 'src')) > built(outputs[0]) || newest(join(ROOT, 'relay/src')) > built(outputs[1])) {
    console.log('note: src/ or relay/src/ changed since the last build; run `npm run build` to pick the changes up')
  }
}

const isLoopback = (host) => host === 'localhost' || host === '::1' || host.startsWith('127.')

/** The relay's listen address: loopback by default, reachable from the LAN with --host. */
function relayListen (host) {
  if (isLoopback(host)) return undefined // spawnRelay's default, /ip4/127.0.0.1/tcp/0/ws
  const proto = host.includes(':') ? 'ip6' : 'ip4'
  return [`/${proto}/${host}/tcp/0/ws`]
}

const opts = parseArgs(process.argv.slice(2))
ensureBuilt()

// imported only now: before the build above, relay/dist may not exist
const { spawnRelay } = await import('p2p-rooms-relay/spawn')
const { createServer } = await import('vite')

const relay = await spawnRelay({ listen: relayListen(opts.host) })
let server
let stopping = false

async function shutdown (signal, code = 0) {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: stopping the web server and the relay…`)
  // a hung close must not keep the terminal hostage
  setTimeout(() => { console.error('npm start: forced exit after 5 s'); process.exit(1) }, 5000).unref()
  await Promise.allSettled([server?.close(), relay.stop()])
  console.log('stopped')
  process.exit(code)
}
process.on('SIGINT', () => { void shutdown('SIGINT') })
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
relay.process.once('exit', (code, signal) => {
  if (stopping) return
  console.error(`npm start: the relay exited unexpectedly (${signal ?? `code ${code}`})`)
  void shutdown('relay exit', 1)
})

try {
  // read by the relayJson plugin in web/vite.config.ts on every GET /relay.json
  process.env.P2P_ROOMS_RELAYS = relay.multiaddrs.join(',')
  // on 0.0.0.0 the relay's printed addresses may not be the one a LAN browser can reach: the
  // plugin then puts in the host the page itself was loaded from
  if (!isLoopback(opts.host)) process.env.P2P_ROOMS_RELAYS_REWRITE_HOST = '1'

  server = await createServer({
    root: WEB,
    configFile: join(WEB, 'vite.config.ts'),
    clearScreen: false,
    server: { host: opts.host, port: opts.port, strictPort: false }
  })
  await server.listen()
} catch (err) {
  console.error(`npm start: the web server did not start: ${err?.stack ?? err}`)
  await shutdown('error', 1)
}

const urls = [...(server.resolvedUrls?.local ?? []), ...(server.resolvedUrls?.network ?? [])]
const appUrl = (base) => `${base.replace(/\/$/, '')}/?room=${encodeURIComponent(opts.room)}`
const port = server.httpServer?.address()?.port
const relayMultiaddrs = relay.multiaddrs

console.log(`
p2p-rooms demo is running

  relay multiaddr   ${relayMultiaddrs.join('\n                    ')}
  relay status      ${relay.httpUrl}/status   (also /metrics, /healthz)
  app               ${urls.map(appUrl).join('\n                    ')}
${port !== undefined && port !== opts.port ? `\n  (port ${opts.port} was taken, using ${port})\n` : ''}
  open ${appUrl(urls[0])} in two or more tabs
  (the page's Room form, or the URL, picks &type=one-way|pairwise, #secret=…, &identity=persistent|ephemeral)
  Ctrl+C stops everything
`)
