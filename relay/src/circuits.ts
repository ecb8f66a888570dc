/**
 * Counts relayed connections (circuits) and how they end. A circuit is one STOP stream the relay
 * opens to a reserved destination for a CONNECT request; the relay pipes the source's HOP stream
 * into it until an endpoint closes it or a limit aborts it.
 *
 * The relay cannot see inside a circuit (it is Noise-encrypted end to end), so it cannot see a
 * WebRTC connection being set up over it. What it can see is how a circuit ends: a room node
 * closes its circuit as soon as the direct WebRTC connection is up, seconds after opening it,
 * while a circuit that keeps carrying traffic runs into a limit. `upgrades` counts circuits
 * closed by an endpoint within half the duration limit and under the data limit: an estimate of
 * WebRTC upgrades, an upper bound (an endpoint that gave up early looks the same).
 */
import { RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Libp2p } from '@libp2p/interface'

/** How a circuit ended. */
export type CircuitEnd = 'endpoint' | 'duration-limit' | 'data-limit' | 'relay'

export const CIRCUIT_ENDS: CircuitEnd[] = ['endpoint', 'duration-limit', 'data-limit', 'relay']

export interface CircuitCounts {
  opened: number
  /** Circuits open now. */
  open: number
  closed: Record<CircuitEnd, number>
  /** Circuits closed by an endpoint early: the estimate of WebRTC upgrades described above. */
  upgrades: number
}

export interface CircuitTracker {
  readonly counts: CircuitCounts
  /** Circuits closed from now on count as closed by the relay. */
  close(): void
}

export interface CircuitTrackerInit {
  /** ms */
  durationLimit: number
}

export function trackCircuits (libp2p: Libp2p, init: CircuitTrackerInit): CircuitTracker {
  const counts: CircuitCounts = {
    opened: 0,
    open: 0,
    closed: Object.fromEntries(CIRCUIT_ENDS.map((e) => [e, 0])) as Record<CircuitEnd, number>,
    upgrades: 0
  }
  let stopping = false
  // Middleware runs for every STOP stream the relay opens; the relay never accepts STOP streams
  // (it is no relay client), which matters: libp2p 3.3.11 appends the protocol handler to the
  // registered middleware array on every *inbound* stream.
  libp2p.use(RELAY_V2_STOP_CODEC, (stream, connection, next) => {
    const opened = Date.now()
    counts.opened++
    counts.open++
    stream.addEventListener('close', (evt) => {
      counts.open--
      const end = endOf(evt.error, stopping)
      counts.closed[end]++
      if (end === 'endpoint' && Date.now() - opened < init.durationLimit / 2) counts.upgrades++
    }, { once: true })
    next(stream, connection)
  })
  return {
    counts,
    close: () => { stopping = true }
  }
}

/** The limit errors are circuit-relay-v2's `DurationLimitError` and `TransferLimitError`. */
function endOf (error: Error | undefined, stopping: boolean): CircuitEnd {
  if (error?.name === 'DurationLimitError') return 'duration-limit'
  if (error?.name === 'TransferLimitError') return 'data-limit'
  return stopping ? 'relay' : 'endpoint'
}
