/**
 * Keeps a connection's gossipsub streams, or closes the connection so that it is made anew.
 *
 * gossipsub keeps one long-lived stream each way per peer. It opens its own once identify has run
 * (or once the remote opened one to us) and never again while the connection stays open: a stream
 * reset under it (a yamux or transport error, the relay's per-stream write buffer limit) or one
 * that failed to open leaves that direction silent for the rest of the connection (gossipsub
 * 17.1.1; libp2p/js-libp2p#3531 restores streams on reconnection and leaves this case open, see
 * libp2p/js-libp2p#2771). Between a tab and its relay that means rooms never announced, or a
 * newcomer never heard of: a room member on it is never met (test/node/pubsub-streams.test.ts).
 *
 * So: `graceMs` after identify says a peer speaks gossipsub over a connection, that connection must
 * have a gossipsub stream each way, and must keep both while it is open. When it does not, the
 * connection is aborted with `PubSubStreamLostError`, and made anew by whoever keeps it: a tab's
 * relay set dials its relay again at once (relays.ts), a tab whose relay closed it does the same,
 * and a relay's federated relays are redialed (relay/src/federation.ts). Tabs run this on their
 * relay connections (the only ones they identify), relays on every connection. A connection is
 * closed at most once per `graceMs` of its life, so a peer that keeps resetting our streams is
 * reconnected at that pace at most.
 */
import { PubSubStreamLostError } from './errors.js'
import type { Connection, IdentifyResult, Libp2pEvents, Logger, Startable, Stream } from '@libp2p/interface'
import type { TypedEventTarget } from 'main-event'

export interface PubSubStreamGuardComponents {
  /** `peer:identify` tells which connections gossipsub runs over. */
  events: Pick<TypedEventTarget<Libp2pEvents>, 'addEventListener' | 'removeEventListener'>
  log: Logger
}

export interface PubSubStreamGuardInit {
  /** gossipsub's protocols (its `protocols`): a stream on one of them is one of its streams. */
  protocols: string[]
  /** How long after identify a connection may go without its two streams, in ms. */
  graceMs: number
}

export class PubSubStreamGuard implements Startable {
  private readonly components: PubSubStreamGuardComponents
  private readonly protocols: Set<string>
  private readonly graceMs: number
  /** connections watched, with the timer of their first check while it is pending */
  private readonly watched = new Map<Connection, ReturnType<typeof setTimeout> | undefined>()
  /** streams whose `close` we listen to */
  private readonly listened = new WeakSet<Stream>()
  private started = false
  /** Connections aborted for a missing gossipsub stream since construction. */
  aborted = 0

  constructor (components: PubSubStreamGuardComponents, init: PubSubStreamGuardInit) {
    this.components = components
    this.protocols = new Set(init.protocols)
    this.graceMs = init.graceMs
    this.onIdentify = this.onIdentify.bind(this)
  }

  isStarted (): boolean {
    return this.started
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.components.events.addEventListener('peer:identify', this.onIdentify)
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    this.components.events.removeEventListener('peer:identify', this.onIdentify)
    for (const timer of this.watched.values()) clearTimeout(timer)
    this.watched.clear()
  }

  private onIdentify (evt: CustomEvent<IdentifyResult>): void {
    const { connection, protocols } = evt.detail
    // gossipsub opens no stream over a limited connection (node-config.ts)
    if (connection.limits != null || connection.status !== 'open' || this.watched.has(connection)) return
    if (!protocols.some((p) => this.protocols.has(p))) return
    this.watched.set(connection, setTimeout(() => {
      this.watched.set(connection, undefined)
      this.check(connection)
    }, this.graceMs))
    connection.addEventListener('close', () => {
      clearTimeout(this.watched.get(connection))
      this.watched.delete(connection)
    }, { once: true })
  }

  /** `conn` has a gossipsub stream each way (and we listen for their end), or is aborted. */
  private check (conn: Connection): void {
    if (!this.started || conn.status !== 'open' || !this.watched.has(conn)) return
    const streams = conn.streams.filter((s) => this.protocols.has(s.protocol ?? '') && s.status === 'open')
    const missing = (['inbound', 'outbound'] as const).filter((direction) => !streams.some((s) => s.direction === direction))
    if (missing.length > 0) {
      const err = new PubSubStreamLostError(`no ${missing.join(' or ')} gossipsub stream on the open connection to ${conn.remotePeer.toString()}: reconnecting`)
      this.components.log('%s', err.message)
      this.aborted++
      conn.abort(err)
      return
    }
    for (const stream of streams) {
      if (this.listened.has(stream)) continue
      this.listened.add(stream)
      // a macrotask later: a connection that is closing closes its streams before its own status
      // changes, and it is nothing to repair
      stream.addEventListener('close', () => { setTimeout(() => { this.check(conn) }, 0) }, { once: true })
    }
  }
}
