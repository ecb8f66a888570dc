/**
 * Every default of the relay lives here, resolved as `init.x ?? DEFAULT_X` (`createRelay`) or used
 * as the command-line default (`config.ts`). `test/relay/constants.unit.test.ts` checks that the
 * `@default` tags in `index.ts` agree.
 */

/** Where the relay listens when no `--listen` is given. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/9090/ws']

/**
 * Where the relay keeps its private key, relative to its working directory. Keeping it makes the
 * peer ID, and so every multiaddr handed to browsers, survive restarts.
 */
export const DEFAULT_IDENTITY_FILE = 'p2p-rooms-relay.key'

/** pino level of the JSON log lines on stderr. */
export const DEFAULT_LOG_LEVEL = 'info'

/** The log levels `--log-level` accepts (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Prefix of every environment variable the relay reads: `P2P_ROOMS_RELAY_MAX_RESERVATIONS`. */
export const ENV_PREFIX = 'P2P_ROOMS_RELAY_'

/**
 * Reservations held at once. libp2p's default of 15 is too few for a relay serving real rooms;
 * each idle reservation costs a connection and a few KiB.
 */
export const DEFAULT_MAX_RESERVATIONS = 1024

/**
 * Reservations held at once for peers connecting from one IP address. Every tab of a host, or of
 * an office or campus behind one NAT, shares an address: high enough for them, low enough that
 * one address cannot take more than an eighth of the default relay.
 */
export const DEFAULT_MAX_RESERVATIONS_PER_IP = 128

/** Inbound connections per second accepted from one IP; libp2p's 5/s breaks a burst of tabs on one host. */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 100

/** Connections held at once. */
export const DEFAULT_MAX_CONNECTIONS = 2048

/**
 * How far past `maxConnections` libp2p's own connection limit sits. The relay refuses inbound
 * connections at `maxConnections` itself (libp2p would refuse them first, without saying why);
 * the headroom is for its own outbound connections (federation peers), and libp2p prunes the
 * least valuable connections only beyond it.
 */
export const LIBP2P_CONNECTION_HEADROOM = 64

/**
 * Most relayed (circuit) connection lifetime, in ms: libp2p's default of 2 minutes is plenty for
 * SDP and ICE, and too short to carry a room.
 */
export const DEFAULT_CIRCUIT_DURATION_LIMIT_MS = 120_000

/** Most bytes one relayed (circuit) connection carries, both directions together: libp2p's 128 KiB. */
export const DEFAULT_CIRCUIT_DATA_LIMIT_BYTES = 131_072

/** Discovery topics (rooms) the relay follows at once; beyond this, new rooms are not followed. */
export const DEFAULT_MAX_ROOMS = 10_000

/** How long a followed room with no subscriber is kept before the relay unsubscribes, in ms. */
export const DEFAULT_ROOM_TTL_MS = 30_000

/**
 * How often the relay pings each connection to find dead ones (libp2p's connection monitor),
 * in ms. libp2p's 10 s makes pings the largest idle cost of a relay with thousands of tabs
 * (`npm run bench:relay`); a dead peer's reservation waits at most this long longer.
 */
export const DEFAULT_PING_INTERVAL_MS = 30_000

/** Lifetime of the TURN credentials `GET /ice-servers` mints, in seconds (a day, like coturn's examples). */
export const DEFAULT_TURN_TTL_S = 86_400

/**
 * gossipsub mesh degree of the relay. The relay is the hub that forwards discovery announcements
 * between browsers that are not yet connected to each other: every subscriber of a room belongs
 * in its mesh, at once. gossipsub 17 grafts a subscriber the moment it subscribes only while the
 * mesh is below D_lo, and fills it at heartbeats otherwise (a second per hop, and lazy gossip
 * beyond), so D_lo is set past any room's size: announcements go to every subscriber without
 * waiting, and there are no non-mesh peers to gossip to. Messages on these topics are small
 * announcements, a few per member every 10 s.
 */
export const RELAY_MESH_D = 1024
export const RELAY_MESH_D_LO = 1024
export const RELAY_MESH_D_HI = 2048

/**
 * Announcements the relay keeps per room for newcomers (its most recent senders), handed to a new
 * subscriber at once (announcements.ts); ~0.5 KiB each.
 */
export const MAX_CACHED_ANNOUNCEMENTS_PER_ROOM = 64

/** Announcements the relay keeps over every room (~25 MiB at most); each expires after `ANNOUNCEMENT_CACHE_TTL_MS`. */
export const MAX_CACHED_ANNOUNCEMENTS = 50_000

/**
 * How long a cached announcement is handed out, in ms: members re-announce every 10 s, and a
 * browser forgets a member not re-announced for 35 s (its `peerTtl`).
 */
export const ANNOUNCEMENT_CACHE_TTL_MS = 35_000

/** How long a graceful shutdown (SIGTERM/SIGINT) may take before the process exits with 1, in ms. */
export const SHUTDOWN_TIMEOUT_MS = 10_000

/**
 * How long a graceful shutdown waits for each connection to close before aborting it, in ms: a
 * peer that never answers must not use up `SHUTDOWN_TIMEOUT_MS`.
 */
export const CONNECTION_CLOSE_TIMEOUT_MS = 2_000

/** Process exit code for an invalid option, environment variable, config file or key file. */
export const EXIT_INVALID_CONFIG = 2
