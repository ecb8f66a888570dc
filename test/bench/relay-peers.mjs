/**
 * Simulated peers for the relay benchmark (test/bench/relay.bench.test.ts). The benchmark forks
 * several of these processes, because thousands of libp2p nodes in one process would make the
 * clients, not the relay, the bottleneck. Plain JavaScript: it runs in a bare `node`, not vitest.
 *
 * argv: <relay multiaddr> <profile> <ping interval ms> <gossipsub heartbeat ms>
 * - `room`: what a room node runs (src/node-config.ts), minus WebRTC: WebSockets, noise, yamux,
 *   the circuit-relay transport listening on `/p2p-circuit`, identify, ping, gossipsub subscribed
 *   to the relays topic, no abort on a failed ping. It dials the relay, learns its hop protocol
 *   through identify and reserves, as a browser tab does, then idles (joins no room).
 * - `bare`: WebSockets, noise and yamux only; it opens the relay's hop protocol itself and sends
 *   RESERVE (the transport cannot: it needs identify), so the relay sees nothing but a connection
 *   and a reservation: its floor per reserved peer.
 *
 * IPC: `{ type: 'attach', count, concurrency }` answers `{ type: 'attached', samples,
 * failures, memory }` (samples: ms from dial start until the reservation is held: the `room` node
 * lists its own `/p2p-circuit` address, the `bare` node read the relay's OK to RESERVE);
 * `{ type: 'abort' }` starts no more peers in the running attach; `{ type: 'stop' }` stops every
 * node and exits.
 */
import 'p2p-rooms-relay/polyfill'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { pbStream } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { RELAYS_TOPIC } from 'p2p-rooms/constants'

const [relayAddr, profile, pingMs, heartbeatMs] = process.argv.slice(2)
if (relayAddr === undefined || !['room', 'bare'].includes(profile) || !(Number(pingMs) >= 0) || !(Number(heartbeatMs) > 0)) {
  throw new Error('usage: relay-peers.mjs <relay multiaddr> room|bare <ping interval ms, 0: none> <gossipsub heartbeat ms>')
}

// the package exports no protobuf codecs; the transport's own generated ones are the wire truth
const { HopMessage, Status } = await import(new URL('./pb/index.js', import.meta.resolve('@libp2p/circuit-relay-v2')).href)
const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/**
 * How often each peer pings the relay, in ms (libp2p's connection monitor; 0: never). Browsers
 * use libp2p's 10 s; a longer interval spares the machine running thousands of peers, and spares
 * the relay the answers.
 */
const PING_INTERVAL_MS = Number(pingMs)

/**
 * gossipsub heartbeat of each peer, in ms (libp2p's default: 1 s). With the relay as its only
 * gossipsub peer and nothing to publish, a peer's heartbeat sends the relay next to nothing, but
 * thousands of them cost this machine a core: a longer one spares it without changing the relay's load.
 */
const HEARTBEAT_MS = Number(heartbeatMs)

/** A loaded relay answers slowly; libp2p's 5-10 s timeouts would measure our CPU, not a failure. */
const TIMEOUT_MS = 60_000

/** @type {import('libp2p').Libp2p[]} */
const nodes = []

function config () {
  const common = {
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { dialTimeout: TIMEOUT_MS, addressDialTimeout: TIMEOUT_MS },
    // as src/node-config.ts: a ping answered late on a busy machine does not drop the relay
    connectionMonitor: PING_INTERVAL_MS > 0
      ? { pingInterval: PING_INTERVAL_MS, abortConnectionOnPingFailure: false }
      : { enabled: false }
  }
  if (profile === 'bare') return { ...common, transports: [webSockets()] }
  return {
    ...common,
    transports: [webSockets(), circuitRelayTransport({ reservationCompletionTimeout: TIMEOUT_MS })],
    // as src/node-config.ts: reserve on whichever relay identify shows to speak hop
    addresses: { listen: ['/p2p-circuit'] },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ emitSelf: false, allowPublishToZeroTopicPeers: true, runOnLimitedConnection: false, scoreParams: { IPColocationFactorWeight: 0 }, heartbeatInterval: HEARTBEAT_MS })
    }
  }
}

const hasCircuitAddr = (node) => node.getMultiaddrs().some((ma) => ma.toString().includes('/p2p-circuit'))

/**
 * Resolves once `node` lists a `/p2p-circuit` address of its own, i.e. holds the reservation.
 * The circuit listener announces it with `transport:listening` right after the RESERVE reply;
 * `self:peer:update` would add up to a second (the address manager debounces it).
 */
async function reserved (node) {
  if (hasCircuitAddr(node)) return
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { done(); reject(new Error(`no reservation within ${TIMEOUT_MS} ms`)) }, TIMEOUT_MS)
    const onListening = () => { if (hasCircuitAddr(node)) { done(); resolve() } }
    function done () { clearTimeout(timer); node.removeEventListener('transport:listening', onListening) }
    node.addEventListener('transport:listening', onListening)
  })
}

/** Creates one peer and returns the ms from its dial start until it holds a reservation. */
async function attachOne () {
  const node = await createLibp2p(config())
  nodes.push(node)
  // a room node listens for the relays' peer records (src/relays.ts), which the relay publishes
  node.services.pubsub?.subscribe(RELAYS_TOPIC)
  const start = performance.now()
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  if (profile === 'bare') {
    await reserve(await node.dialProtocol(multiaddr(relayAddr), HOP_PROTOCOL, { signal }), signal)
  } else {
    await node.dial(multiaddr(relayAddr), { signal })
    await reserved(node)
  }
  return performance.now() - start
}

/** One hop RESERVE exchange, as the circuit-relay transport's reservation store does it. */
async function reserve (stream, signal) {
  const hop = pbStream(stream).pb(HopMessage)
  await hop.write({ type: HopMessage.Type.RESERVE }, { signal })
  const reply = await hop.read({ signal })
  if (reply.status !== Status.OK) throw new Error(`relay refused the reservation: status ${reply.status}`)
  await stream.close({ signal })
}

let aborted = false

/** Attaches `count` peers, at most `concurrency` reserving at once, until aborted. */
async function attach ({ count, concurrency }) {
  const samples = []
  const failures = []
  let next = 0
  aborted = false
  async function lane () {
    while (next < count && !aborted) {
      next++
      try {
        samples.push(await attachOne())
      } catch (err) {
        failures.push(String(err?.message ?? err))
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane))
  return { samples, failures, memory: process.memoryUsage() }
}

process.on('message', (msg) => {
  if (msg.type === 'attach') {
    attach(msg).then(
      (result) => { process.send({ type: 'attached', ...result }) },
      (err) => { process.send({ type: 'attached', samples: [], failures: [String(err?.stack ?? err)], memory: process.memoryUsage() }) }
    )
  } else if (msg.type === 'abort') {
    aborted = true
  } else if (msg.type === 'stop') {
    Promise.allSettled(nodes.map(async (n) => n.stop())).finally(() => {
      process.send({ type: 'stopped' }, () => { process.exit(0) })
    })
  }
})
// the benchmark going away (crash, Ctrl-C) must not leave thousands of nodes running
process.on('disconnect', () => { process.exit(0) })
process.send({ type: 'ready', pid: process.pid })
