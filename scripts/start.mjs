#!/usr/bin/env node
/**
 * `npm start`: the demo, ready to open in several tabs.
 *
 *   1. builds src/ and relay/ if their dist/ is missing (`npm run build`);
 *   2. builds the demo page (web/) with Vite, minified, once per change of its sources: a built
 *      page loads in a few requests instead of the dev server's ~80 module requests;
 *   3. starts a real relay process (p2p-rooms-relay, via spawnRelay) on a fixed port with a key
 *      kept in .p2p-rooms/relay.key, so its multiaddr (and every link that names it) stays the
 *      same across restarts;
 *   4. serves the page with `vite preview`, whose /relay.json answers with that relay's multiaddr;
 *   5. prints where everything is, and stops both on Ctrl+C (SIGINT) or SIGTERM.
 *
 * Options:  --host [address]    listen on 0.0.0.0 (or the address given) instead of 127.0.0.1,
 *                               for other devices on the LAN; HOST=… does the same
 *           --port <n>          web server port (PORT=…); default 5173, or the next free one
 *           --relay-port <n>    the relay's WebSocket port (RELAY_PORT=…); default 9090; 0: any free one
 *           --admin-port <n>    the relay's HTTP port: admin page, /status, /metrics; default 9091; 0: any
 *           --relay-key <file>  the relay's key file; default .p2p-rooms/relay.key (git-ignored)
 *           --room <name>       room in the printed URL; default lobby
 *           --dev               the Vite dev server (hot reload) instead of the built page
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, InvalidArgumentError } from 'commander'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const WEB = join(ROOT, 'web')
/** Built pages, one folder per version of their sources: concurrent `npm start`s never share a half-built one. */
const BUILD_CACHE = join(ROOT, 'node_modules/.cache/p2p-rooms-web')
const DEFAULT_RELAY_PORT = 9090
const DEFAULT_ADMIN_PORT = 9091
const DEFAULT_RELAY_KEY = join(ROOT, '.p2p-rooms/relay.key')

const port = (v) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is an integer from 0 to 65535')
  return n
}
const envPort = (name, fallback) => process.env[name] !== undefined && process.env[name] !== '' ? port(process.env[name]) : fallback

function parseArgs (argv) {
  const program = new Command('npm start --')
    .description('Starts a local relay and the demo web app')
    .option('--host [address]', 'listen on this address instead of 127.0.0.1 (alone: 0.0.0.0, for other devices on the LAN)', process.env.HOST)
    .option('--port <n>', 'web server port; the next free one if taken', port, envPort('PORT', 5173))
    .option('--relay-port <n>', 'the relay\'s WebSocket port (0: any free one)', port, envPort('RELAY_PORT', DEFAULT_RELAY_PORT))
    .option('--admin-port <n>', 'the relay\'s HTTP port: admin page, /status, /metrics (0: any free one)', port, envPort('ADMIN_PORT', DEFAULT_ADMIN_PORT))
    .option('--relay-key <file>', 'the relay\'s private key file, created if missing', DEFAULT_RELAY_KEY)
    .option('--room <name>', 'room in the printed URL', 'lobby')
    .option('--dev', 'serve web/ with the Vite dev server (hot reload) instead of the built page')
    .parse(argv, { from: 'user' })
  const opts = program.opts()
  // `--host` alone means every interface, like Vite's own flag
  const host = opts.host === true ? '0.0.0.0' : (opts.host === undefined || opts.host === '' ? '127.0.0.1' : opts.host)
  return { host, port: opts.port, relayPort: opts.relayPort, adminPort: opts.adminPort, relayKey: resolve(opts.relayKey), room: opts.room, dev: opts.dev === true }
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

/** Every file under `dir` (skipping `skip`), for the build's fingerprint. */
function files (dir, skip = new Set()) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (skip.has(e.name)) return []
    return e.isDirectory() ? files(path, skip) : [path]
  })
}

/**
 * Builds web/ into the cache unless a build of the same sources is there, and returns its folder.
 * The fingerprint covers the page's sources, its config, the library's build and the lockfile.
 */
async function buildWeb (build) {
  const inputs = [
    ...files(WEB, new Set(['node_modules', 'dist'])),
    ...files(join(ROOT, 'src/dist')),
    join(ROOT, 'package-lock.json')
  ].filter((f) => existsSync(f)).sort()
  const hash = createHash('sha256')
  for (const f of inputs) {
    const s = statSync(f)
    hash.update(`${relative(ROOT, f)}\0${s.size}\0${s.mtimeMs}\n`)
  }
  const outDir = join(BUILD_CACHE, hash.digest('hex').slice(0, 16))
  if (existsSync(join(outDir, 'index.html'))) return { outDir, built: false, ms: 0 }
  const started = Date.now()
  const tmp = `${outDir}.tmp-${process.pid}`
  await build({ root: WEB, configFile: join(WEB, 'vite.config.ts'), logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } })
  try {
    renameSync(tmp, outDir)
  } catch {
    // another npm start built the same sources meanwhile: use theirs
    rmSync(tmp, { recursive: true, force: true })
  }
  // keep the newest few builds, for switching branches back and forth
  const old = readdirSync(BUILD_CACHE).filter((d) => !d.includes('.tmp-')).map((d) => join(BUILD_CACHE, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs).slice(5)
  for (const d of old) rmSync(d, { recursive: true, force: true })
  return { outDir, built: true, ms: Date.now() - started }
}

const isLoopback = (host) => host === 'localhost' || host === '::1' || host.startsWith('127.')

/** Resolves when `port` is free on `host`, rejects with the listen error (EADDRINUSE) when not. */
async function checkPortFree (host, p) {
  if (p === 0) return
  await new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen({ port: p, host, exclusive: true }, () => { probe.close(() => { resolve() }) })
  })
}

function portTaken (what, p, flag, err) {
  const why = err?.code === 'EADDRINUSE'
    ? `port ${p} is taken: another \`npm start\` (or another program) is using it`
    : `port ${p} cannot be used (${err?.code ?? err?.message ?? err})`
  console.error(`npm start: the ${what} cannot start: ${why}.
  Stop the other one, or pick another port:  npm start -- ${flag} ${p + 100}
  (links that name the relay's address only keep working on the same port)`)
  process.exit(1)
}

const opts = parseArgs(process.argv.slice(2))
ensureBuilt()

// imported only now: before the build above, relay/dist may not exist
const { spawnRelay } = await import('p2p-rooms-relay/spawn')
const vite = await import('vite')

const relayProto = opts.host.includes(':') ? 'ip6' : 'ip4'
await checkPortFree(opts.host, opts.relayPort).catch((err) => { portTaken('relay', opts.relayPort, '--relay-port', err) })
// the admin page stays on loopback even with --host: it is for whoever runs the relay
await checkPortFree('127.0.0.1', opts.adminPort).catch((err) => { portTaken('relay\'s admin page', opts.adminPort, '--admin-port', err) })

mkdirSync(join(opts.relayKey, '..'), { recursive: true, mode: 0o700 })
let relay
try {
  relay = await spawnRelay({
    listen: [`/${relayProto}/${opts.host}/tcp/${opts.relayPort}/ws`],
    args: ['--identity', opts.relayKey, '--http', `127.0.0.1:${opts.adminPort}`]
  })
} catch (err) {
  const text = String(err?.message ?? err)
  if (/EADDRINUSE/.test(text)) portTaken('relay', opts.relayPort, '--relay-port', { code: 'EADDRINUSE' })
  console.error(`npm start: the relay did not start: ${text.slice(0, 2000)}`)
  process.exit(1)
}

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

let buildNote = ''
try {
  // read by the relayJson plugin in web/vite.config.ts on every GET /relay.json
  process.env.P2P_ROOMS_RELAYS = relay.multiaddrs.join(',')
  // on 0.0.0.0 the relay's printed addresses may not be the one a LAN browser can reach: the
  // plugin then puts in the host the page itself was loaded from
  if (!isLoopback(opts.host)) process.env.P2P_ROOMS_RELAYS_REWRITE_HOST = '1'

  const configFile = join(WEB, 'vite.config.ts')
  if (opts.dev) {
    server = await vite.createServer({ root: WEB, configFile, clearScreen: false, server: { host: opts.host, port: opts.port, strictPort: false } })
    await server.listen()
    buildNote = 'Vite dev server (hot reload)'
  } else {
    const { outDir, built, ms } = await buildWeb(vite.build)
    buildNote = built ? `built and minified in ${ms} ms` : 'built page, unchanged since the last start'
    server = await vite.preview({ root: WEB, configFile, logLevel: 'warn', build: { outDir }, preview: { host: opts.host, port: opts.port, strictPort: false } })
  }
} catch (err) {
  console.error(`npm start: the web server did not start: ${err?.stack ?? err}`)
  await shutdown('error', 1)
}

const urls = [...(server.resolvedUrls?.local ?? []), ...(server.resolvedUrls?.network ?? [])]
const appUrl = (base) => `${base.replace(/\/$/, '')}/?room=${encodeURIComponent(opts.room)}`
const webPort = server.httpServer?.address()?.port
const relayMultiaddrs = relay.multiaddrs

console.log(`
p2p-rooms demo is running

  app               ${urls.map(appUrl).join('\n                    ')}
  page              ${buildNote}
  relay multiaddr   ${relayMultiaddrs.join('\n                    ')}
  relay admin       ${relay.httpUrl}/   (also /status, /metrics, /healthz)
  relay key         ${opts.relayKey.startsWith(ROOT) ? relative(ROOT, opts.relayKey) : opts.relayKey}   (same peer ID at every start)
${webPort !== undefined && webPort !== opts.port && opts.port !== 0 ? `\n  (port ${opts.port} was taken, using ${webPort})\n` : ''}
  open ${appUrl(urls[0])} in two or more tabs
  (the Rooms menu, or the URL, picks &type=one-way|pairwise, #secret=…, &identity=persistent|ephemeral)
  Ctrl+C stops everything
`)

// a phone on the LAN scans this instead of typing the address
const lanUrl = server.resolvedUrls?.network?.[0]
if (lanUrl !== undefined) {
  try {
    const QRCode = (await import('qrcode')).default
    console.log(`  scan to open ${appUrl(lanUrl)} on a phone:\n${await QRCode.toString(appUrl(lanUrl), { type: 'terminal', small: true })}`)
  } catch {}
}
