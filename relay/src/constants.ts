/** Every default of the relay lives here, resolved as `init.x ?? DEFAULT_X`. */

/** Where the relay listens when no `--listen` is given. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/9090/ws']

/**
 * Reservations held at once. libp2p's default of 15 is too few for a relay serving real rooms;
 * each idle reservation costs a connection and a few KiB.
 */
export const DEFAULT_MAX_RESERVATIONS = 1024

/** Inbound connections per second accepted from one IP; libp2p's 5/s breaks a burst of tabs on one host. */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 100

/** Connections held at once. */
export const DEFAULT_MAX_CONNECTIONS = 2048

/** Discovery topics (rooms) the relay follows at once; beyond this, new rooms are not followed. */
export const DEFAULT_MAX_ROOMS = 10_000

/** How long a followed room with no subscriber is kept before the relay unsubscribes, in ms. */
export const DEFAULT_ROOM_TTL_MS = 30_000

/**
 * gossipsub mesh degree of the relay. The relay is the hub that forwards discovery announcements
 * between browsers that are not yet connected to each other, so it keeps every room member of a
 * normal-size room in its mesh rather than relying on lazy gossip.
 */
export const RELAY_MESH_D = 16
export const RELAY_MESH_D_LO = 8
export const RELAY_MESH_D_HI = 32

/** How long a graceful shutdown (SIGTERM/SIGINT) may take before the process exits with 1, in ms. */
export const SHUTDOWN_TIMEOUT_MS = 10_000
