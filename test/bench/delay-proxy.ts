/**
 * A TCP proxy that delays every chunk by a fixed time each way: a server (our relay, the PeerServer)
 * as far away as a network round trip, on a machine where everything runs on loopback. Used by the
 * meeting bench's `BENCH_SERVER_RTT_MS`. Order is kept: chunks leave in the order they came, each
 * once its delay is over. Traffic between the tabs (WebRTC) does not pass through it.
 */
import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'

export interface DelayProxy {
  /** The port the proxy listens on (127.0.0.1). */
  port: number
  /** Connections accepted so far. */
  connections: number
  close(): Promise<void>
}

/**
 * Listens on a free port of 127.0.0.1 and forwards each connection to `target`, holding every chunk
 * `oneWayMs` (half the round trip) in each direction.
 */
export async function startDelayProxy (target: { host: string, port: number }, oneWayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>()
  const proxy: DelayProxy = { port: 0, connections: 0, close }
  const server = createServer((inbound) => {
    proxy.connections++
    const outbound = connect(target.port, target.host)
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.setNoDelay(true)
      s.on('close', () => { sockets.delete(s) })
      s.on('error', () => { inbound.destroy(); outbound.destroy() })
    }
    forward(inbound, outbound, oneWayMs)
    forward(outbound, inbound, oneWayMs)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  proxy.port = (server.address() as { port: number }).port
  async function close (): Promise<void> {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }
  return proxy
}

function forward (from: Socket, to: Socket, delayMs: number): void {
  // One queue and one timer per direction. A timer per chunk does not keep their order: Node
  // orders timers by when they are due as it computes it (its cached loop time plus the delay),
  // so two chunks due within the same millisecond could leave swapped. On a WebSocket whose
  // frames each fit a chunk, that was a valid stream with two noise frames swapped: the tab's
  // noise failed with "invalid tag" and the relay connection was made anew, about one tab in 25.
  const queue: Array<{ due: number, deliver: () => void }> = []
  let timer: ReturnType<typeof setTimeout> | undefined
  const flush = (): void => {
    timer = undefined
    const now = Date.now()
    while (queue.length > 0 && queue[0].due <= now) queue.shift()?.deliver()
    if (queue.length > 0) timer = setTimeout(flush, queue[0].due - now)
  }
  /** Runs `deliver` `delayMs` from now, after everything queued before it. */
  const later = (deliver: () => void): void => {
    queue.push({ due: Date.now() + delayMs, deliver })
    timer ??= setTimeout(flush, delayMs)
  }
  from.on('data', (chunk) => { later(() => { if (!to.destroyed) to.write(chunk) }) })
  from.on('end', () => { later(() => { to.end() }) })
}
