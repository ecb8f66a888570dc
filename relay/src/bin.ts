#!/usr/bin/env node
/**
 * `p2p-rooms-relay`: prints each multiaddr browsers should use (ending in `/p2p/<peer ID>`) on
 * stdout, one per line, once listening; everything else is a JSON log line on stderr. Exit codes:
 * 0 after SIGTERM/SIGINT, 1 on a failure at run time, 2 on an invalid configuration.
 */
import './polyfill.js'
import { readFile } from 'node:fs/promises'
import { pino } from 'pino'
import { RateLimiter } from 'p2p-rooms/rate-limit'
import { parseConfig } from './config.js'
import { EXIT_INVALID_CONFIG, MAX_LOG_LINE_KINDS, MAX_LOG_LINES_PER_SECOND, SHUTDOWN_TIMEOUT_MS } from './constants.js'
import { IdentityInUseError, InsecureIdentityFileError, InvalidConfigError, InvalidIdentityFileError } from './errors.js'
import { startHttp } from './http.js'
import { loadOrCreateIdentity, lockIdentity } from './identity.js'
import { createRelay } from './index.js'
import type { ErrorSource } from './refusals.js'
import type { RelayConfig } from './config.js'
import type { HttpEndpoint } from './http.js'
import type { Relay } from './index.js'

// Logs go through Node's own stderr stream, not pino.destination(2): sonic-boom 4.2.1's sync
// write loop retries a non-retryable error such as EPIPE forever, blocking the event loop, so a
// relay whose log reader went away could not even shut down (the same guard is flagged in
// oven-sh/bun#34505's port of that code; no sonic-boom issue found). A lost log reader must
// neither hang nor crash the relay: its write errors are dropped.
process.stderr.on('error', () => {})
process.stdout.on('error', () => {})

/** An invalid configuration: one line on stderr, no stack trace, exit code 2. */
function invalid (err: Error): never {
  process.stderr.write(`p2p-rooms-relay: error: ${err.message}\n(see p2p-rooms-relay --help)\n`)
  process.exit(EXIT_INVALID_CONFIG)
}

const isConfigError = (err: any): boolean =>
  [InvalidConfigError.name, InsecureIdentityFileError.name, InvalidIdentityFileError.name, IdentityInUseError.name].includes(err?.name)

let parsed
try {
  parsed = parseConfig(process.argv.slice(2))
} catch (err: any) {
  if (isConfigError(err)) invalid(err)
  throw err
}
if (parsed === undefined) process.exit(0) // --help or --version was printed
const { config, sources } = parsed
const logger = pino({ level: config.logLevel }, process.stderr)

/** One token bucket per kind of log line: a flood is counted in /metrics, not written out line by line. */
const logLines = new RateLimiter({ rate: MAX_LOG_LINES_PER_SECOND, burst: MAX_LOG_LINES_PER_SECOND, maxKeys: MAX_LOG_LINE_KINDS })

/** Errors seen before the relay exists are logged only; after, they are counted too. */
let countError: (source: ErrorSource) => void = () => {}

// An unexpected error anywhere (a library's timer throwing, a promise nobody awaited) must not
// end a public server: it is logged and counted in p2p_rooms_relay_errors_total, and the relay
// carries on. Configuration errors at start still exit with 2, below.
process.on('uncaughtException', (err) => { survived('uncaught-exception', err) })
process.on('unhandledRejection', (err) => { survived('unhandled-rejection', err) })

function survived (source: ErrorSource, err: unknown): void {
  countError(source)
  if (logLines.take(`error:${source}`)) logger.error({ err, source }, `survived an unexpected error: ${(err as Error)?.message ?? String(err)}`)
}

async function readPem (file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err: any) {
    throw new InvalidConfigError(`cannot read ${flag} ${file}: ${err?.code === 'ENOENT' ? 'no such file' : err?.message ?? err}`)
  }
}

async function start (config: RelayConfig): Promise<void> {
  const identity = await loadOrCreateIdentity(config.identity)
  // one relay per key: a second one on this file waits for a dead relay's lock to go stale, and
  // refuses (exit 2) if its holder is alive
  const release = await lockIdentity(config.identity, (err) => {
    countError('identity-lock')
    logger.error({ err, identity: config.identity }, `lost the lock on the identity file (${err.message}): another relay may start on this key`)
  })
  const federationKey = config.federationKey === undefined ? undefined : await loadOrCreateIdentity(config.federationKey, 'federation key')
  const tls = config.tlsCert === undefined || config.tlsKey === undefined
    ? undefined
    : { cert: await readPem(config.tlsCert, '--tls-cert'), key: await readPem(config.tlsKey, '--tls-key') }
  logger.info({
    identity: identity.path,
    created: identity.created,
    config: config.config,
    // where each value came from, for an operator puzzled by one (the TURN secret is not logged)
    options: Object.fromEntries(Object.entries(sources).map(([k, source]) => [k, { value: k === 'turnSecret' ? '(set)' : (config as any)[k], source }]))
  }, identity.created ? 'created a new relay identity' : 'loaded the relay identity')

  let relay: Relay
  try {
    relay = await createRelay({
      listen: config.listen,
      announce: config.announce,
      privateKey: identity.privateKey,
      tls,
      maxReservations: config.maxReservations,
      maxReservationsPerIp: config.maxReservationsPerIp,
      maxConnections: config.maxConnections,
      inboundConnectionThreshold: config.inboundConnectionThreshold,
      circuitDurationLimit: config.circuitDurationLimit,
      circuitDataLimit: config.circuitDataLimit,
      maxRooms: config.maxRooms,
      roomTtl: config.roomTtl,
      pingInterval: config.pingInterval,
      handshakeTimeout: config.handshakeTimeout,
      maxRoomsPerPeer: config.maxRoomsPerPeer,
      maxRoomsPerIp: config.maxRoomsPerIp,
      announcementsPerSecond: config.announcementsPerSecond,
      peers: config.peer,
      federationKey: federationKey?.privateKey
    })
  } catch (err: any) {
    if (isConfigError(err)) throw err
    // e.g. EADDRINUSE: a runtime failure, not an invalid value
    logger.fatal({ err, listen: config.listen }, `the relay could not start: ${err?.message ?? err}`)
    process.exit(1)
  }
  countError = (source) => { relay.countError(source) }
  if (federationKey !== undefined) {
    logger.info({ federationKey: federationKey.path, created: federationKey.created, federation: relay.libp2p.services.federation.federations()[0] },
      federationKey.created ? 'created a new federation key: copy it to the other relays of this federation' : 'loaded the federation key')
  }
  // Every refusal is counted; the log gets at most MAX_LOG_LINES_PER_SECOND per reason. What a
  // flood would produce by the thousand (rates, handshakes, room quotas, HTTP) is debug.
  const QUIET: string[] = ['connection-rate', 'handshake-timeout', 'handshakes-per-ip', 'rooms-per-peer', 'rooms-per-ip', 'announcement-rate', 'http-malformed', 'http-timeout', 'http-connections', 'ice-rate']
  for (const [kind, msg] of [['connection', 'connection refused'], ['reservation', 'reservation refused'], ['room', 'room refused'], ['announcement', 'announcement refused'], ['http', 'http request refused']] as const) {
    relay.addEventListener(`${kind}:refuse`, (evt) => {
      if (!logLines.take(`refusal:${evt.detail.reason}`)) return
      logger[QUIET.includes(evt.detail.reason) ? 'debug' : 'info'](evt.detail, msg)
    })
  }

  let http: HttpEndpoint | undefined
  let stopping = false
  async function shutdown (signal: string): Promise<void> {
    if (stopping) return
    stopping = true
    // a peer that never answers a close must not keep the process alive
    setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'graceful shutdown timed out')
      process.exit(1)
    }, SHUTDOWN_TIMEOUT_MS).unref()
    let code = 0
    try {
      const connections = relay.libp2p.getConnections().length
      logger.info({ signal, connections }, 'shutting down')
      await relay.stop()
      await http?.close()
      await release().catch(() => {})
      logger.info('stopped')
    } catch (err) {
      code = 1
      logger.error({ err }, 'shutdown failed')
    } finally {
      process.exit(code)
    }
  }
  // Signal handlers go in before anything says the relay is up: whoever started it may signal it
  // as soon as it reads that, and an unhandled SIGTERM or SIGHUP kills the process outright.
  process.on('SIGTERM', () => { void shutdown('SIGTERM') })
  process.on('SIGINT', () => { void shutdown('SIGINT') })
  // A renewed certificate (e.g. Let's Encrypt) is picked up without a restart: new TLS
  // connections get it, open ones keep theirs.
  const { tlsCert, tlsKey } = config
  if (tlsCert !== undefined && tlsKey !== undefined) {
    process.on('SIGHUP', () => {
      Promise.all([readPem(tlsCert, '--tls-cert'), readPem(tlsKey, '--tls-key')])
        .then(([cert, key]) => {
          relay.renewCertificate({ cert, key })
          logger.info({ cert: tlsCert }, 'reloaded the TLS certificate')
        })
        .catch((err) => { logger.error({ err }, `kept the old TLS certificate: ${err?.message ?? err}`) })
    })
  }

  for (const ma of relay.getMultiaddrs()) process.stdout.write(`${ma}\n`)
  logger.info({ peerId: relay.peerId, multiaddrs: relay.getMultiaddrs() }, 'relay listening')

  if (config.http !== undefined) {
    try {
      http = await startHttp(relay, {
        ...config.http,
        iceServers: { urls: config.iceServer, turnSecret: config.turnSecret, turnTtl: config.turnTtl },
        iceOrigins: config.iceOrigins,
        iceRateLimit: config.iceRateLimit,
        onError: (err) => { if (logLines.take('error:http')) logger.error({ err }, `http: ${(err as Error)?.message ?? String(err)}`) }
      })
    } catch (err: any) {
      logger.fatal({ err }, `the HTTP endpoint could not start: ${err?.message ?? err}`)
      await relay.stop()
      process.exit(1)
    }
    logger.info({ url: http.url }, 'http listening')
  }
}

try {
  await start(config)
} catch (err: any) {
  if (isConfigError(err)) invalid(err)
  logger.fatal({ err }, `the relay could not start: ${err?.message ?? err}`)
  process.exit(1)
}
