/**
 * Plain Node libp2p clients for relay tests: what is tested is the relay, so the clients carry
 * only what a browser node uses to talk to it (WebSockets, Noise, yamux, circuit relay, ping).
 */
import { connect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport, RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { pbStream } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
// the HOP message codec is not exported by the package; tests read the wire status with it
import { HopMessage, Status as CircuitStatus, StopMessage } from '../../node_modules/@libp2p/circuit-relay-v2/dist/src/pb/index.js'
import type { GossipSub, GossipsubOpts } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Connection, Stream } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Libp2p } from 'libp2p'
import type { Socket } from 'node:net'

export { CircuitStatus, HopMessage, StopMessage }

export type Client = Libp2p<{ identify: Identify, ping: Ping }>

const clients: Client[] = []

/** A client; with `listenVia`, it also reserves a slot on that relay and listens through it. */
export async function client (listenVia?: string): Promise<Client> {
  const node = await createLibp2p({
    addresses: { listen: listenVia === undefined ? [] : [`${listenVia}/p2p-circuit`] },
    transports: [webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), ping: ping() }
  })
  clients.push(node)
  return node
}

/**
 * A plain gossipsub node dialed to `relayAddr`, standing in for a room member's discovery
 * subscriptions; stopped by `stopClients` or by the caller. As a tab's node (src/node-config.ts),
 * it keeps its relay connection through a ping answered late on a saturated CPU.
 *
 * @param pubsub - gossipsub's options, over its defaults
 */
export async function gossipClient (relayAddr: string, pubsub: Partial<GossipsubOpts> = {}): Promise<Libp2p<{ identify: Identify, pubsub: GossipSub }>> {
  const node = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    connectionMonitor: { abortConnectionOnPingFailure: false },
    services: { identify: identify(), pubsub: gossipsub(pubsub) }
  })
  clients.push(node as unknown as Client)
  await node.dial(multiaddr(relayAddr))
  return node
}

/**
 * A circuit's far end and nothing more: a client that reserves on `relayAddr` by hand and hands
 * every STOP stream the relay opens to it to `onStop` (no circuit transport answers for it).
 * Stopped by `stopClients`.
 */
export async function stopHandler (relayAddr: string, onStop: (stream: Stream) => void): Promise<Libp2p> {
  const node = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify() }
  })
  clients.push(node as unknown as Client)
  await node.handle(RELAY_V2_STOP_CODEC, onStop, { runOnLimitedConnection: true })
  const status = await reserve(node, relayAddr)
  if (status !== 'OK') throw new Error(`the relay answered the reservation with ${status}`)
  return node
}

/** Stops every client made so far (call in `afterAll`/`afterEach`). */
export async function stopClients (): Promise<void> {
  await Promise.all(clients.splice(0).map(async (c) => { await c.stop() }))
}

/** Resolves once `node` listens on a `/p2p-circuit` address, i.e. holds its reservation. */
export async function reserved (node: Libp2p, timeoutMs = 20_000): Promise<string> {
  const find = (): string | undefined => node.getMultiaddrs().map(String).find((ma) => ma.includes('/p2p-circuit'))
  const deadline = Date.now() + timeoutMs
  while (find() === undefined) {
    if (Date.now() > deadline) throw new Error(`no reservation within ${timeoutMs} ms`)
    await new Promise<void>((resolve) => {
      const done = (): void => { clearTimeout(timer); node.removeEventListener('self:peer:update', done); resolve() }
      const timer = setTimeout(done, 500)
      node.addEventListener('self:peer:update', done)
    })
  }
  return find() as string
}

/**
 * Sends one circuit-relay-v2 RESERVE to the relay at `relayAddr` (dialing it if needed) and
 * returns the status it answers: 'OK', 'RESERVATION_REFUSED', 'PERMISSION_DENIED', …
 */
export async function reserve (node: Libp2p, relayAddr: string): Promise<string> {
  const conn = await node.dial(multiaddr(relayAddr))
  const stream = await conn.newStream(RELAY_V2_HOP_CODEC)
  const messages = pbStream(stream).pb(HopMessage)
  await messages.write({ type: HopMessage.Type.RESERVE })
  const response = await messages.read({ signal: AbortSignal.timeout(10_000) })
  await stream.close().catch(() => {})
  return String(response.status)
}

/**
 * Sends `bytes` bytes over one ping stream on `conn` (the ping handler echoes whatever it reads)
 * and resolves once they all came back. Unlike `ping.ping(peer)`, which dials a new connection
 * when the only one is limited, this stays on `conn`, a relayed (limited) connection included.
 */
export async function echo (conn: Connection, bytes: number): Promise<void> {
  const stream = await conn.newStream('/ipfs/ping/1.0.0', { runOnLimitedConnection: true })
  let received = 0
  const done = new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      received += evt.data.byteLength
      if (received >= bytes) resolve()
    })
    stream.addEventListener('close', (evt) => { reject(evt.error ?? new Error(`stream closed after ${received} of ${bytes} bytes`)) })
  })
  for (let sent = 0; sent < bytes; sent += 1024) stream.send(new Uint8Array(Math.min(1024, bytes - sent)))
  await done
  // closed both ways before it returns: ping allows one outbound stream per connection, and with
  // optimistic protocol selection the next stream is counted before any round trip could let the
  // remote's end of this one arrive
  const ended = new Promise<void>((resolve) => { stream.addEventListener('close', () => { resolve() }, { once: true }) })
  await stream.close().catch(() => {})
  if (stream.status !== 'closed' && stream.status !== 'aborted' && stream.status !== 'reset') await ended
}

/** This machine's first non-loopback IPv4 address: a second source address for per-IP tests. */
export function otherIp (): string | undefined {
  return Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address
}

/** The multiaddr among `multiaddrs` on `ip`. */
export function on (multiaddrs: string[], ip: string): string {
  const ma = multiaddrs.find((m) => m.startsWith(`/ip4/${ip}/`))
  if (ma === undefined) throw new Error(`no multiaddr on ${ip} in ${multiaddrs.join(' ')}`)
  return ma
}

export interface Sample { name: string, labels: Record<string, string>, value: number }

/** Fetches `/metrics` and parses it with a Prometheus text-format parser. */
export async function metrics (httpUrl: string): Promise<Sample[]> {
  const res = await fetch(`${httpUrl}/metrics`)
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`)
  const families = parsePrometheusTextFormat(await res.text())
  return families.flatMap((f) => f.metrics.map((m) => ({ name: f.name, labels: m.labels ?? {}, value: Number(m.value) })))
}

/** The value of metric `name` (with `labels`) in `samples`, 0 when absent. */
export function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0
}

/** Fetches `/status`. */
export async function status (httpUrl: string): Promise<any> {
  return (await fetch(`${httpUrl}/status`)).json()
}

export interface RawExchange {
  /** Everything the server sent before it closed (or before `timeoutMs`). */
  response: string
  /** Whether the server closed the connection. */
  closed: boolean
  /** ms from connecting until the server closed (or `timeoutMs`). */
  ms: number
}

/**
 * Opens a raw TCP connection to `url`'s host and port, writes `chunks` (each after `gapMs`; with
 * `end`, then half-closes it), and resolves once the server closes it, or after `timeoutMs` (then
 * `closed` is false). What a
 * browser or curl would never send is sent as is.
 */
export async function rawExchange (url: string, chunks: Array<string | Uint8Array>, { gapMs = 0, timeoutMs = 10_000, end = false } = {}): Promise<RawExchange> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname.replace(/^\[|\]$/g, ''))
  const started = Date.now()
  let response = ''
  socket.setEncoding('latin1')
  socket.on('data', (d: string) => { response += d })
  socket.on('error', () => {})
  return new Promise((resolve) => {
    const timer = setTimeout(() => { finish(false) }, timeoutMs)
    socket.once('close', () => { finish(true) })
    function finish (closed: boolean): void {
      clearTimeout(timer)
      socket.destroy()
      resolve({ response, closed, ms: Date.now() - started })
    }
    socket.once('connect', () => {
      void (async () => {
        for (const chunk of chunks) {
          if (socket.destroyed) return
          socket.write(chunk)
          if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs))
        }
        // half-close: the server answers what it has and closes
        if (end && !socket.destroyed) socket.end()
      })()
    })
  })
}

/** Opens `n` TCP connections to `host:port` that never send a byte; each records when it was closed. */
export async function idleSockets (host: string, port: number, n: number): Promise<Array<{ socket: Socket, closedAt?: number }>> {
  const sockets = Array.from({ length: n }, () => {
    const entry: { socket: Socket, closedAt?: number } = { socket: connect(port, host) }
    entry.socket.on('error', () => {})
    entry.socket.once('close', () => { entry.closedAt = Date.now() })
    return entry
  })
  await Promise.all(sockets.map(async ({ socket }) => new Promise<void>((resolve) => {
    if (socket.destroyed) { resolve(); return }
    socket.once('connect', () => { resolve() })
    socket.once('close', () => { resolve() })
  })))
  return sockets
}
