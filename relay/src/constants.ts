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
 * Inbound connections libp2p lets be mid-upgrade at once (its `maxIncomingPendingConnections`,
 * default 10): a relay restart has every tab reconnecting in the same second. The socket guard
 * (sockets.ts) bounds them per IP before this.
 */
export const MAX_INCOMING_PENDING_CONNECTIONS = 256

/**
 * Longest a ping of libp2p's connection monitor may go unanswered, in ms: a browser on a busy
 * machine answers late, and dropping it would drop its reservation.
 */
export const PING_MAX_TIMEOUT_MS = 30_000

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

/**
 * A newcomer's subscription can arrive before the relay's own gossipsub stream to it is open
 * (each side opens its stream once identify is done: a round trip or so). The hand-over of the
 * room's announcements is then tried again after `HANDOVER_FIRST_RETRY_MS`, the wait doubling up
 * to `HANDOVER_RETRY_MS`, for at most `HANDOVER_TIMEOUT_MS` in all (about 55 attempts). A fixed
 * 100 ms wait made a tab opened together with others wait a whole 100 ms more in most meetings
 * (the relay's debug log says which attempt handed over).
 */
export const HANDOVER_FIRST_RETRY_MS = 10
export const HANDOVER_RETRY_MS = 100
export const HANDOVER_TIMEOUT_MS = 5_000

/** How long a graceful shutdown (SIGTERM/SIGINT) may take before the process exits with 1, in ms. */
export const SHUTDOWN_TIMEOUT_MS = 10_000

/**
 * How long a graceful shutdown waits for each connection to close before aborting it, in ms: a
 * peer that never answers must not use up `SHUTDOWN_TIMEOUT_MS`.
 */
export const CONNECTION_CLOSE_TIMEOUT_MS = 2_000

/**
 * How long an inbound TCP connection on a WebSockets listen port may take to become a libp2p
 * connection (first byte, HTTP upgrade, WebSocket, Noise, yamux), in ms. A socket that never
 * sends a byte, or never finishes its upgrade, is closed then. Until then it counts toward
 * `maxConnections` like any connection.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000

/**
 * Inbound TCP connections from one IP address (IPv6: one /64) that may be mid-handshake at once
 * on the WebSockets port; beyond, new ones are closed at once (reason `handshakes-per-ip`). High
 * enough for a burst of tabs behind one NAT reconnecting after a relay restart.
 */
export const MAX_HANDSHAKES_PER_IP = 64

/**
 * Bytes the relay queues for one connection that does not read what it is sent (on top of the
 * WebSocket's own 4 MiB send buffer, @libp2p/websockets' default); beyond, the connection is
 * aborted (reason `outbound-buffer`). A relay sends little but gossip and circuit data, which
 * the circuit data limit already bounds.
 */
export const MAX_OUTBOUND_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * Rooms (discovery topics) one peer can make the relay follow, i.e. subscriptions of one peer
 * the relay counts. A tab joins a handful of rooms; beyond, its subscriptions are not followed
 * (reason `rooms-per-peer`). Federated relays are not limited.
 */
export const DEFAULT_MAX_ROOMS_PER_PEER = 64

/**
 * Rooms followed for the peers of one IP address (IPv6: one /64) together (reason
 * `rooms-per-ip`): every tab of a NAT shares it, so it is `maxReservationsPerIp` tabs of eight
 * rooms each.
 */
export const DEFAULT_MAX_ROOMS_PER_IP = 1024

/**
 * Announcements one peer may send per second on discovery topics (a token bucket refilled at
 * this rate, reason `announcement-rate`). A member announces each room every 10 s, and all its
 * rooms at once when its reservations change: the burst is `maxRoomsPerPeer`.
 */
export const DEFAULT_ANNOUNCEMENTS_PER_SECOND = 10

/** Peers (and IP addresses) whose announcement rate is tracked at once; the least recent is forgotten first. */
export const MAX_RATE_TRACKED_PEERS = 4096

/**
 * Origins (`scheme://host[:port]`) whose pages may fetch `GET /ice-servers`; `*` allows any.
 * None by default: TURN credentials are the operator's to hand out, so each app's origin is
 * named (requests without an `Origin` header, i.e. not from another site's page, are served).
 */
export const DEFAULT_ICE_ORIGINS: string[] = []

/** `GET /ice-servers` requests accepted per minute from one IP address (IPv6: one /64); beyond, 429. */
export const DEFAULT_ICE_RATE_LIMIT = 30

/** How long the HTTP endpoint waits for a request's headers, in ms (Node's default is 60 s). */
export const HTTP_HEADERS_TIMEOUT_MS = 5_000

/** How long the HTTP endpoint waits for a whole request, in ms (Node's default is 5 min). */
export const HTTP_REQUEST_TIMEOUT_MS = 10_000

/** How long an HTTP connection may sit idle (before its first request, or between two), in ms. */
export const HTTP_IDLE_TIMEOUT_MS = 5_000

/** How long an idle keep-alive HTTP connection is kept after a response, in ms (Node's default). */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 5_000

/** How often Node checks the HTTP timeouts above, in ms (Node's default of 30 s would let them overrun). */
export const HTTP_TIMEOUT_CHECK_INTERVAL_MS = 1_000

/** HTTP connections held at once; beyond, new ones are closed at once (reason `http-connections`). */
export const HTTP_MAX_CONNECTIONS = 256

/** Largest request head (request line and headers) the HTTP endpoint reads, in bytes; beyond, 431. */
export const HTTP_MAX_HEADER_BYTES = 8192

/** Requests served on one keep-alive HTTP connection before it is closed. */
export const HTTP_MAX_REQUESTS_PER_SOCKET = 100

/** Longest request target read, in characters (the head is bounded by `HTTP_MAX_HEADER_BYTES` anyway). */
export const HTTP_MAX_TARGET_LENGTH = 2048

/** How often the admin page (`GET /`) samples the relay's status for its charts, in ms. */
export const DEFAULT_ADMIN_SAMPLE_INTERVAL_MS = 10_000

/** How far back the admin page's charts go, in ms (an hour). */
export const DEFAULT_ADMIN_WINDOW_MS = 3_600_000

/**
 * How often a relay publishes its relay record on `RELAYS_TOPIC`, in ms, and once more as soon
 * as a peer subscribes to that topic (at most once per `RECORD_MIN_INTERVAL_MS`).
 */
export const RECORD_INTERVAL_MS = 10_000
export const RECORD_MIN_INTERVAL_MS = 1_000

/**
 * Relays federated with at once. Every relay connects to every trusted relay it learns of (a
 * room's announcements only cross relays that both follow it), so this bounds a federation.
 */
export const MAX_FEDERATED_RELAYS = 64

/** Relays whose failed dials a relay remembers (for their backoff) at once. */
export const MAX_REMEMBERED_RELAY_FAILURES = 256

/** First wait before re-dialing a relay that could not be reached, doubled up to the next, in ms. */
export const FEDERATION_REDIAL_MIN_MS = 1_000
export const FEDERATION_REDIAL_MAX_MS = 60_000

/** Value of a federated relay's peer store tag: the highest there is, so it is the last connection pruned. */
export const FEDERATION_TAG_VALUE = 100

/**
 * Log lines per second the binary writes for one kind of event (refusals by reason, errors by
 * source), with a burst of as many: a flood is counted in full in `/metrics` but must not flood
 * the log. Errors the relay survived (an exception nothing caught, a rejected promise nothing
 * handled, a failed HTTP reply) are logged and counted, never fatal.
 */
export const MAX_LOG_LINES_PER_SECOND = 10

/** Kinds of log line (reasons and sources) whose rate is tracked at once; there are a few dozen. */
export const MAX_LOG_LINE_KINDS = 256

/**
 * How long a second relay on the same identity file waits for the first one's lock to go stale
 * before giving up, in ms, and how often a running relay refreshes its lock. A relay killed with
 * SIGKILL leaves its lock behind; it counts as stale `IDENTITY_LOCK_STALE_MS` after its last
 * refresh, so a restart waits at most that long instead of being refused.
 */
export const IDENTITY_LOCK_STALE_MS = 5_000
export const IDENTITY_LOCK_UPDATE_MS = 1_000

/** How often a relay waiting for a held identity lock looks again, in ms. */
export const IDENTITY_LOCK_RETRY_MS = 250

/** Process exit code for an invalid option, environment variable, config file or key file. */
export const EXIT_INVALID_CONFIG = 2
