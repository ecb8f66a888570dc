/**
 * The relay's WebSocket opened while the node is still being made.
 *
 * A new tab spends its first 250-400 ms making its key and its libp2p node (a 2-core machine
 * opening tabs together, timing marks in the meeting bench), and only then does
 * `@libp2p/websockets` open the socket to the relay: 70-230 ms more before the first byte of
 * noise can go out, where PeerJS's whole way to its server takes 40 ms. `createRoomNode` opens the
 * configured relays' sockets first thing, and the transport made by `preconnectedWebSockets` takes
 * an open (or opening) one for the same URI instead of opening its own, so the two waits overlap.
 *
 * Nothing else changes: the transport still upgrades the socket (noise, yamux) and checks the
 * relay's peer ID. A socket the transport does not take in time, or that the server spoke on first
 * (no libp2p listener does: multistream-select's dialer speaks first), is closed and never used.
 */
import { webSockets } from '@libp2p/websockets'
import { multiaddrToUri } from '@multiformats/multiaddr-to-uri'
import type { AbortOptions, Transport } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

type WebSocketsComponents = Parameters<ReturnType<typeof webSockets>>[0]
type WebSocketsInit = Parameters<typeof webSockets>[0]

/** The private step of @libp2p/websockets 10.1.21 (`WebSockets._connect`) that opens a socket and waits for `open`. */
type Connect = (ma: Multiaddr, options: AbortOptions) => Promise<WebSocket>

export interface PreconnectInit {
  /** An untaken socket is closed after this long, in ms (the node's `reservationTimeout`). */
  ttl: number
}

interface Preconnected {
  socket: WebSocket
  /** the server sent something before the transport took the socket, or it failed or closed */
  spoiled: boolean
  onSpoil: () => void
  timer: ReturnType<typeof setTimeout>
}

/** Sockets opened ahead of their dial, by URI; each is taken at most once. */
export class PreconnectedSockets {
  private readonly sockets = new Map<string, Preconnected>()
  private readonly ttl: number

  constructor (init: PreconnectInit) {
    this.ttl = init.ttl
  }

  /**
   * Opens a socket to each `ws`/`wss` multiaddr (others are skipped), where this environment
   * has a `WebSocket` (browsers; Node 22, or Node 20 with `--experimental-websocket`).
   */
  open (addrs: Multiaddr[]): void {
    if (typeof globalThis.WebSocket !== 'function') return
    for (const ma of addrs) {
      const uri = uriOf(ma)
      if (uri === undefined || this.sockets.has(uri)) continue
      let socket: WebSocket
      try {
        socket = new WebSocket(uri)
      } catch {
        continue // the transport's own dial reports what is wrong with it
      }
      socket.binaryType = 'arraybuffer'
      const entry: Preconnected = {
        socket,
        spoiled: false,
        onSpoil: () => { entry.spoiled = true },
        timer: setTimeout(() => { this.discard(uri) }, this.ttl)
      }
      // a libp2p listener waits for the dialer's multistream header: whatever spoke first is no
      // libp2p listener, and the transport would never see those bytes
      socket.addEventListener('message', entry.onSpoil)
      // Node 20's WebSocket (undici) fires `error` and never `close` when it cannot connect, its
      // `readyState` left at CONNECTING: a failure is remembered, not read from `readyState`
      socket.addEventListener('error', entry.onSpoil)
      socket.addEventListener('close', entry.onSpoil)
      this.sockets.set(uri, entry)
    }
  }

  /** The socket opened for `ma`'s URI, if it is still opening or open and unspoken; it is then the caller's. */
  take (ma: Multiaddr): WebSocket | undefined {
    const uri = uriOf(ma)
    const entry = uri === undefined ? undefined : this.sockets.get(uri)
    if (uri === undefined || entry === undefined) return undefined
    this.sockets.delete(uri)
    clearTimeout(entry.timer)
    const { socket } = entry
    for (const type of ['message', 'error', 'close']) socket.removeEventListener(type, entry.onSpoil)
    if (entry.spoiled || socket.readyState > WebSocket.OPEN) {
      socket.close()
      return undefined
    }
    return socket
  }

  /** Closes every socket not taken. */
  close (): void {
    for (const uri of [...this.sockets.keys()]) this.discard(uri)
  }

  private discard (uri: string): void {
    const entry = this.sockets.get(uri)
    if (entry === undefined) return
    this.sockets.delete(uri)
    clearTimeout(entry.timer)
    entry.socket.close()
  }
}

/**
 * `@libp2p/websockets`' transport, taking a socket from `sockets` where one was opened for the
 * address it dials; otherwise, or if that socket fails to open, it opens its own as usual (so a
 * failure is reported as the transport reports it). Where the transport has no `_connect` (a
 * version other than 10.1.x), it is returned unchanged: slower, not broken.
 */
export function preconnectedWebSockets (sockets: PreconnectedSockets, init?: WebSocketsInit): (components: WebSocketsComponents) => Transport {
  const factory = webSockets(init)
  return (components) => {
    const transport = factory(components) as Transport & { _connect?: Connect }
    const connect = transport._connect
    if (typeof connect !== 'function') return transport
    transport._connect = async (ma, options) => {
      const socket = sockets.take(ma)
      if (socket !== undefined) {
        try {
          await opened(socket, options)
          return socket
        } catch {
          socket.close()
          options.signal?.throwIfAborted()
        }
      }
      return connect.call(transport, ma, options)
    }
    return transport
  }
}

function uriOf (ma: Multiaddr): string | undefined {
  try {
    const uri = multiaddrToUri(ma)
    return /^wss?:\/\//.test(uri) ? uri : undefined
  } catch {
    return undefined
  }
}

/** Resolves once `socket` is open; rejects if it fails or closes first, or `options.signal` aborts. */
async function opened (socket: WebSocket, options: AbortOptions): Promise<void> {
  options.signal?.throwIfAborted()
  if (socket.readyState === WebSocket.OPEN) return
  if (socket.readyState !== WebSocket.CONNECTING) throw new Error('the preconnected socket closed')
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.removeEventListener('open', onOpen)
      socket.removeEventListener('error', onClose)
      socket.removeEventListener('close', onClose)
      options.signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onOpen = (): void => { done() }
    const onClose = (): void => { done(new Error('the preconnected socket failed or closed')) }
    const onAbort = (): void => { done(options.signal?.reason ?? new Error('aborted')) }
    socket.addEventListener('open', onOpen)
    socket.addEventListener('error', onClose)
    socket.addEventListener('close', onClose)
    options.signal?.addEventListener('abort', onAbort)
  })
}
