/**
 * Every default of the browser node lives here, resolved as `init.x ?? DEFAULT_X`.
 * `test/src/constants.test.ts` checks that the `@default` tags in `index.ts` agree.
 */

/** Version segment of every topic and protocol; bump on an incompatible wire change. */
export const PROTOCOL_VERSION = '1'

/** Prefix of the per-room discovery topic the relay follows (announcements only, no room traffic). */
export const DISCOVERY_TOPIC_PREFIX = `/p2p-rooms/${PROTOCOL_VERSION}/discovery/`

/** Prefix of the per-room data topic, carried only over direct connections. */
export const ROOM_TOPIC_PREFIX = `/p2p-rooms/${PROTOCOL_VERSION}/room/`

/** How often a member re-announces itself on the room's discovery topic, in ms. */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 10_000

/** A member not re-announced and not directly connected for this long is expired, in ms. */
export const DEFAULT_PEER_TTL_MS = 35_000

/** How long to wait for the first relay reservation in `createRoomNode`, in ms. */
export const DEFAULT_RESERVATION_TIMEOUT_MS = 15_000

/** Attempts to open a direct WebRTC connection before giving up on a peer. */
export const DEFAULT_DIAL_ATTEMPTS = 6

/** First retry delay of the direct dial; doubles per attempt, with jitter, in ms. */
export const DEFAULT_DIAL_BACKOFF_MS = 250

/** Upper bound of one direct dial attempt (SDP + ICE + DTLS), in ms. */
export const DEFAULT_DIAL_TIMEOUT_MS = 20_000

/**
 * The peer with the smaller peer ID dials; the other one takes over after this long
 * without a direct connection, in case the dialer never heard of it, in ms.
 */
export const DEFAULT_DIAL_TAKEOVER_MS = 4_000

/** Largest announcement accepted on a discovery topic, in bytes. */
export const MAX_ANNOUNCEMENT_BYTES = 4096

/** Most multiaddrs accepted in one announcement. */
export const MAX_ANNOUNCED_ADDRS = 16

/** Largest room message accepted by `publish`, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
