/**
 * Puts every TCP connection the WebSockets listener accepts through the relay's admission check
 * (limits.ts `admitSocket`) before the listener sees it.
 *
 * @libp2p/websockets 10.1.x accepts sockets on a plain `net.Server` and waits, with no timeout,
 * for each one's first byte before it even reaches the HTTP server, and libp2p's connection
 * limits only see a connection once its WebSocket is open: a socket that never sends a byte was
 * held for ever and counted nowhere (hundreds of them stayed open against `maxConnections` 10).
 * The listener exposes no hook for this, so this service takes over the `connection` listeners
 * of its `net.Server` (the private field `server`, checked at run time: if a new version moves
 * it, the relay logs an error and counts it under `libp2p`, and
 * test/relay/sockets.int.test.ts fails).
 */
import { Server } from 'node:net'
import type { ComponentLogger, Libp2pEvents, Listener, Startable } from '@libp2p/interface'
import type { TypedEventTarget } from 'main-event'
import type { Socket } from 'node:net'

export interface SocketGuardInit {
  /** Admits the socket or destroys it (limits.ts). */
  admit(socket: Socket): void
  /** Called when a listener could not be guarded. */
  onUnguarded(err: Error): void
}

export interface SocketGuardComponents {
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** `services: { sockets: socketGuard({ admit }) }`: guards every WebSockets listener as it starts listening. */
export function socketGuard (init: SocketGuardInit): (components: SocketGuardComponents) => Startable {
  return (components) => new SocketGuard(components, init)
}

const GUARDED = Symbol('p2p-rooms-relay:guarded')

class SocketGuard implements Startable {
  private readonly components: SocketGuardComponents
  private readonly init: SocketGuardInit
  private started = false

  constructor (components: SocketGuardComponents, init: SocketGuardInit) {
    this.components = components
    this.init = init
    this.onListening = this.onListening.bind(this)
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    // services start before the transport manager listens: every listener is seen
    this.components.events.addEventListener('transport:listening', this.onListening)
    this.started = true
  }

  stop (): void {
    this.components.events.removeEventListener('transport:listening', this.onListening)
    this.started = false
  }

  private onListening (evt: CustomEvent<Listener>): void {
    const listener = evt.detail as Listener & { server?: unknown }
    const server = listener.server
    if (!(server instanceof Server)) {
      // the circuit relay transport's listener has no socket of its own
      if (!listener.getAddrs().some((ma) => ma.getComponents().some((c) => c.name === 'ws' || c.name === 'wss'))) return
      this.init.onUnguarded(new Error('the WebSockets listener has no net.Server in `server`: its sockets are not admission-checked'))
      return
    }
    if ((server as any)[GUARDED] === true) return
    ;(server as any)[GUARDED] = true
    const accept = server.listeners('connection') as Array<(socket: Socket) => void>
    server.removeAllListeners('connection')
    server.on('connection', (socket: Socket) => {
      this.init.admit(socket)
      if (socket.destroyed) return
      for (const listen of accept) listen.call(server, socket)
    })
  }
}
