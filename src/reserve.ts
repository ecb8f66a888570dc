/**
 * Reserving on a relay as soon as we are connected to it. circuit-relay-v2's transport reserves
 * on a relay it discovers through the registrar's topology for the hop protocol, which only fires
 * once identify has run both ways: a round trip or two after the connection, on the path of every
 * first meeting (a peer can dial us only through our reservation). This service asks the
 * transport's reservation store for the same reservation the topology would, at once; when the
 * topology fires later, the store finds it made (or queued) and does nothing more.
 *
 * The store is the transport's own (not part of its public interface), read defensively: without
 * it, reserving simply waits for the topology, as before.
 */
import type { ComponentLogger, Logger, PeerId, Transport } from '@libp2p/interface'

export interface RelayReserver {
  /** Reserves on `relay` (a trusted relay we are connected to) now, if a reservation slot is free. */
  reserve(relay: PeerId): void
}

interface ReserverComponents {
  logger: ComponentLogger
  transportManager: { getTransports(): Transport[] }
}

interface ReservationStore {
  addRelay(peerId: PeerId, type: 'discovered'): Promise<unknown>
}

const CIRCUIT_TRANSPORT = '@libp2p/circuit-relay-v2-transport'

export function relayReserver (): (components: ReserverComponents) => RelayReserver {
  return (components) => {
    const log: Logger = components.logger.forComponent('p2p-rooms:reserve')
    return {
      reserve (relay) {
        const transport = components.transportManager.getTransports().find((t) => t[Symbol.toStringTag] === CIRCUIT_TRANSPORT)
        const store = (transport as unknown as { reservationStore?: Partial<ReservationStore> } | undefined)?.reservationStore
        if (typeof store?.addRelay !== 'function') {
          log('no reservation store to ask: the transport reserves once identify is done')
          return
        }
        store.addRelay(relay, 'discovered').catch((err: Error) => {
          // enough relays already, or one queued: the topology's own attempt would say the same
          if (err.name !== 'HadEnoughRelaysError' && err.name !== 'RelayQueueFullError') log('could not reserve on %p at once - %e', relay, err)
        })
      }
    }
  }
}
