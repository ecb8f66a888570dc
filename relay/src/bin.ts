#!/usr/bin/env node
/**
 * `p2p-rooms-relay`: prints each listen multiaddr (ending in `/p2p/<peer ID>`) on stdout, one per
 * line, once listening; everything else is a JSON log line on stderr.
 */
import './polyfill.js'
import { Command, InvalidArgumentError } from 'commander'
import { pino } from 'pino'
import { startHttp } from './http.js'
import { DEFAULT_LISTEN, DEFAULT_MAX_RESERVATIONS, SHUTDOWN_TIMEOUT_MS } from './constants.js'
import { createRelay } from './index.js'

// Logs go through Node's own stderr stream, not pino.destination(2): sonic-boom 4.2.1's sync
// write loop retries a non-retryable error such as EPIPE forever, blocking the event loop, so a
// relay whose log reader went away could not even shut down (the same guard is flagged in
// oven-sh/bun#34505's port of that code; no sonic-boom issue found). A lost log reader must
// neither hang nor crash the relay: its write errors are dropped.
process.stderr.on('error', () => {})
process.stdout.on('error', () => {})
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' }, process.stderr)

function hostPort (value: string): { host: string, port: number } {
  const match = /^(.*):(\d+)$/.exec(value)
  if (match === null) throw new InvalidArgumentError('expected host:port, e.g. 127.0.0.1:9091')
  return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) }
}

const program = new Command('p2p-rooms-relay')
  .description('Circuit-relay-v2 relay and room discovery hub for p2p-rooms browser nodes')
  .option('--listen <multiaddr...>', 'WebSockets listen multiaddr(s)', DEFAULT_LISTEN)
  .option('--http <host:port>', 'serve /metrics, /status and /healthz here (off when absent)', hostPort)
  .option('--max-reservations <n>', 'circuit-relay reservations held at once', (v) => Number.parseInt(v, 10), DEFAULT_MAX_RESERVATIONS)
  .parse()

const opts = program.opts<{ listen: string[], http?: { host: string, port: number }, maxReservations: number }>()

const relay = await createRelay({ listen: opts.listen, maxReservations: opts.maxReservations })
for (const ma of relay.getMultiaddrs()) process.stdout.write(`${ma}\n`)
logger.info({ peerId: relay.peerId, multiaddrs: relay.getMultiaddrs() }, 'relay listening')

const http = opts.http === undefined ? undefined : await startHttp(relay, opts.http.host, opts.http.port)
if (http !== undefined) logger.info({ url: http.url }, 'http listening')

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
    logger.info({ signal }, 'shutting down')
    await http?.close()
    await relay.stop()
    logger.info('stopped')
  } catch (err) {
    code = 1
    logger.error({ err }, 'shutdown failed')
  } finally {
    process.exit(code)
  }
}
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
process.on('SIGINT', () => { void shutdown('SIGINT') })
