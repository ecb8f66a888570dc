/**
 * Every default of the browser node lives here, resolved as `init.x ?? DEFAULT_X`.
 * `test/src/constants.test.ts` checks that the `@default` tags in `index.ts` agree.
 */

/** Version segment of every topic and protocol; bump on an incompatible wire change. */
export const PROTOCOL_VERSION = '3'

/** Prefix of the per-room discovery topic the relay follows (announcements only, no room traffic). */
export const DISCOVERY_TOPIC_PREFIX = `/p2p-rooms/${PROTOCOL_VERSION}/discovery/`

/**
 * Prefix of a room's key: the label of its frames on `ROOM_PROTOCOL` (no pubsub topic: room
 * traffic goes straight to each member over the direct connection).
 */
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
 * Of two peers the one whose node started later dials (see direct.ts); the other takes over after
 * this long without a direct connection or a dial of the peer's arriving, in case the dialer
 * never heard of it or cannot reach it (no reservation), in ms. The relay hands every newcomer the
 * room's members, so normally the dialer knows at once; on a saturated CPU (ten tabs on two
 * cores) a WebRTC dial can take seconds just to start, and a takeover then only races it.
 */
export const DEFAULT_DIAL_TAKEOVER_MS = 5_000

/** Peers that reached us before any room wanted them whose meeting phases are kept; oldest forgotten first. */
export const MAX_EARLY_PEERS = 256

/** Largest announcement accepted on a discovery topic, in bytes. */
export const MAX_ANNOUNCEMENT_BYTES = 4096

/** Most multiaddrs accepted in one announcement. */
export const MAX_ANNOUNCED_ADDRS = 16

/** Largest room message accepted by `publish`, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

/** Session type of a room when `joinRoom` names none. */
export const DEFAULT_SESSION_TYPE = 'broadcast' as const

/** How often a member tells the others it is present (a heartbeat over the room topic), in ms. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000

/**
 * A member not heard from (heartbeat or message) for this long leaves with reason `'timeout'`, in ms.
 * Four missed heartbeats: one late heartbeat on a saturated CPU must not evict a live peer.
 */
export const DEFAULT_PRESENCE_TIMEOUT_MS = 8_000

/** Room messages (publish + send) a member may send per second, refilling its token bucket. */
export const DEFAULT_MESSAGES_PER_SECOND = 50

/** Room messages a member may send in one burst: the token bucket's capacity. */
export const DEFAULT_BURST = 100

/**
 * Control messages (heartbeats, handoffs) accepted per second from one member, and their burst;
 * a member sends one heartbeat per interval, so this only stops floods.
 */
export const CONTROL_MESSAGES_PER_SECOND = 5
export const CONTROL_BURST = 20

/** A room checks its members' presence at most this often, in ms. */
export const MIN_PRESENCE_CHECK_MS = 250

/** A hello to a member that failed while its connection looked open is tried again after this long, in ms. */
export const HELLO_RETRY_MS = 250

/**
 * A member answers a newcomer's announcement with its own after `REPLY_DELAY_MIN_MS` plus up to
 * `REPLY_DELAY_SPREAD_MS` at random, so the members of a room do not all answer at once, in ms.
 */
export const REPLY_DELAY_MIN_MS = 50
export const REPLY_DELAY_SPREAD_MS = 200

/**
 * An announcement gossipsub sent to nobody is published again after `ANNOUNCE_RETRY_MS`, at most
 * `ANNOUNCE_RETRY_ATTEMPTS` times, in ms. A relay's subscription can reach us before our own
 * gossipsub stream to it is open; publishing then reaches no one (`allowPublishToZeroTopicPeers`)
 * and, unanswered, the members would learn of us only at the next `announceInterval`.
 */
export const ANNOUNCE_RETRY_MS = 100
export const ANNOUNCE_RETRY_ATTEMPTS = 30

/**
 * Largest body of a control message (heartbeat, handoff) accepted, in bytes, whatever the room's
 * `maxMessageBytes`: a heartbeat with its most admissions (32) is about 2 KiB.
 */
export const MAX_CONTROL_BODY_BYTES = 4_096

/** Recent messages each member keeps for late joiners, per room. */
export const DEFAULT_HISTORY_SIZE = 100

/**
 * Backlog requests a member answers per requesting peer and minute, per room (a token bucket of
 * this rate and burst); a joiner asks once per join.
 */
export const DEFAULT_HISTORY_REQUESTS_PER_MINUTE = 10

/**
 * How long a member may take to write a whole backlog response before the stream is aborted, in
 * ms: a requester that stops reading cannot hold the response (at most `historySize` ×
 * (`maxMessageBytes` + `FRAME_OVERHEAD_BYTES`)) in memory for longer.
 */
export const HISTORY_WRITE_TIMEOUT_MS = 10_000

/** How long a joiner waits for a member's backlog before delivering live messages anyway, in ms. */
export const HISTORY_TIMEOUT_MS = 5_000

/** How long an out-of-order message waits for the ones before it, before those count as a gap, in ms. */
export const REORDER_WINDOW_MS = 1_000

/** Out-of-order messages held per sender; beyond, the missing ones count as a gap. */
export const MAX_HELD_PER_SENDER = 256

/**
 * Out-of-order messages (and numbers dropped by the rate limit) held per room, all senders
 * together; beyond, the oldest held ones are released and what they waited for counts as a gap.
 * Also bounds the live messages held while the backlog is fetched.
 */
export const MAX_HELD_PER_ROOM = 1_024

/** Bytes of held messages per room, all senders together (same release rule as `MAX_HELD_PER_ROOM`). */
export const MAX_HELD_BYTES_PER_ROOM = 8 * 1024 * 1024

/** Senders whose rate, sequence and incarnation a receiver tracks at once per room (least recently seen forgotten first). */
export const MAX_TRACKED_SENDERS = 4_096

/**
 * Protocol of every room frame (data, heartbeats, handoffs, leaves, of every session type): one
 * long-lived stream per direct peer, each frame labelled with its room. A message goes straight to
 * each member; nothing is forwarded, so nothing arrives twice and nothing needs a signature: the
 * direct connection authenticates its sender.
 */
export const ROOM_PROTOCOL = `/p2p-rooms/${PROTOCOL_VERSION}/room`

/** Earlier incarnations remembered per sender, so a late message of a session that restarted is dropped (`'stale'`). */
export const MAX_RETIRED_INCARNATIONS = 4

/**
 * A newcomer trusts the ranks it hears until it is settled (host.ts): this long after it first
 * heard its latest member, in ms. Members greet each other when they meet, so a newcomer hears
 * where the room ranks it well within it.
 */
export const RANK_SETTLE_MS = 5_000

/**
 * A member that has met nobody settles (and defends its rank) this long after joining, in ms; the
 * room uses at least `announceInterval` + 2 s: members re-announce themselves that often, and a
 * member that reloaded under the same peer ID finds the room through those announcements.
 */
export const RANK_SETTLE_ALONE_MS = 12_000

/**
 * A newcomer is settled at the latest this long after joining, in ms, even if a member it
 * discovered was never heard (unreachable): until then it does not count itself as host.
 */
export const RANK_DECIDE_WITHIN_MS = 30_000

// --- rooms: tunables that lived in room.ts, presence.ts, room-messages.ts, rate-limit.ts (issue 12)

/**
 * A room waits this much longer than the announce interval before a member that met nobody
 * settles (`RANK_SETTLE_ALONE_MS`), and than two announce intervals before a newcomer is decided
 * (`RANK_DECIDE_WITHIN_MS`): an announcement sent on time still arrives within it, in ms.
 */
export const RANK_ANNOUNCE_MARGIN_MS = 2_000

/**
 * A room looks for silent members this many times per `presenceTimeout` (at most every
 * `MIN_PRESENCE_CHECK_MS`): a member is dropped at most `presenceTimeout` and one such fraction
 * of it after it was last heard.
 */
export const PRESENCE_CHECKS_PER_TIMEOUT = 16

/** Sender keys of a private room cached at once (each is a small WebCrypto handle). */
export const MAX_CACHED_SENDER_KEYS = 256

/**
 * Most senders a `RateLimiter` (rate-limit.ts) tracks at once when `maxKeys` is not given. A room
 * holds far fewer members; the bound only stops a flood of made-up keys growing memory.
 */
export const DEFAULT_RATE_LIMIT_MAX_KEYS = 1024

/**
 * PBKDF2-HMAC-SHA-256 iterations deriving a private room's keys and topic ID from its secret:
 * OWASP's Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA256 (2023). Each guess of the
 * secret by someone who saw the topic ID costs this many HMACs. Changing it changes every
 * private room's topic.
 */
export const PRIVATE_ROOM_KDF_ITERATIONS = 600_000

/** Protocol a joiner asks a member for the room's recent messages with, over a direct connection. */
export const HISTORY_PROTOCOL = `/p2p-rooms/${PROTOCOL_VERSION}/history`

/** Bytes a frame on those protocols may carry beyond a message's payload (header, label, AES-GCM IV and tag). */
export const FRAME_OVERHEAD_BYTES = 1_024

/**
 * Frames on the shared room and history protocols are bounded before their room is known; each
 * room then applies its own `maxMessageBytes`, in bytes.
 */
export const HARD_MAX_FRAME_BYTES = 1024 * 1024 + FRAME_OVERHEAD_BYTES

/** A backlog is at most `historySize` messages; this bounds what a requester reads. */
export const MAX_HISTORY_FRAMES = 10_000

/** Longest room name `joinRoom` accepts, in characters. */
export const MAX_ROOM_NAME_LENGTH = 256

/** The session types a room can declare (see `SessionType`). */
export const SESSION_TYPES = ['broadcast', 'one-way', 'pairwise'] as const

/** Which key a node uses when it is given none: one per browser tab, kept across its reloads. */
export const DEFAULT_IDENTITY = 'tab'

/** The kinds of identity a node can ask for (see `IdentityKind`). */
export const IDENTITY_KINDS = ['tab', 'persistent', 'ephemeral'] as const

/** sessionStorage key of a tab's private key (libp2p protobuf, base64): per tab, survives its reloads. */
export const TAB_IDENTITY_STORAGE_KEY = 'p2p-rooms:peer-key'

/** IndexedDB database of the `'persistent'` identity (version 1, one object store). */
export const PERSISTENT_IDENTITY_DB = 'p2p-rooms'

/** Object store in that database holding the key (libp2p protobuf bytes). */
export const PERSISTENT_IDENTITY_STORE = 'identity'

/** Record key of the private key in that store. */
export const PERSISTENT_IDENTITY_KEY = 'peer-key'

/** Web Lock name prefix, followed by the peer ID: held by the page using that key, until `stop()`. */
export const IDENTITY_LOCK_PREFIX = 'p2p-rooms:peer:'

/**
 * How long a page waits for a stored key's Web Lock before using a fresh key instead, in ms. A
 * reload's new page can ask before the old page has unloaded and released it; another live tab
 * never releases it, so the wait is bounded.
 */
export const IDENTITY_LOCK_WAIT_MS = 500

/**
 * Topic on which the relays of a federation publish their peer records (libp2p pubsub peer
 * discovery); room nodes listen to it to learn relays they can fail over to.
 */
export const RELAYS_TOPIC = `/p2p-rooms/${PROTOCOL_VERSION}/relays`

/** Relay reservations a node holds at once. */
export const DEFAULT_MAX_RELAYS = 2

/** Relays a node remembers (configured and learned from the federation). */
export const MAX_KNOWN_RELAYS = 64

/** First wait before dialing a relay again after a failed dial, doubled per failure up to the next, in ms. */
export const RELAY_REDIAL_MIN_MS = 1_000
export const RELAY_REDIAL_MAX_MS = 60_000

/**
 * How long after we connected to a relay its reservation counts as on its way (identify, then
 * circuit-relay-v2's RESERVE, which it gives 5 s), before another relay is dialed instead, in ms.
 */
export const RELAY_RESERVATION_GRACE_MS = 6_000

/**
 * While a node holds no reservation at all (its relays are down), the longest it waits between
 * two dials of a relay, in ms (before jitter): a relay back on its address has every node again
 * within about this long, however long it was gone. With a reservation held, failed relays back
 * off up to `RELAY_REDIAL_MAX_MS`.
 */
export const RELAY_OUTAGE_REDIAL_MAX_MS = 2_000

/**
 * How long after identify a connection may go without its two gossipsub streams (one each way)
 * before it is closed and made anew, in ms (pubsub-streams.ts; tabs on their relay connections,
 * relays on every connection). gossipsub opens them within a round trip or two; the margin is for
 * a saturated CPU, where a tab that is meeting ten others answers seconds late. Also the shortest
 * life of a connection closed that way.
 */
export const RELAY_PUBSUB_GRACE_MS = 15_000

/** Each relay redial wait is stretched by up to this fraction at random, so the tabs of a restarted relay spread out. */
export const RELAY_REDIAL_JITTER = 0.2

/**
 * When the browser comes back online, how long each relay connection has to answer a ping
 * before it is taken for dead and closed (its reservation then made again), in ms.
 */
export const RELAY_ONLINE_PING_TIMEOUT_MS = 3_000

/**
 * Every this often each relay connection is pinged, in ms (relays.ts): a relay whose host lost
 * power or its network leaves a WebSocket that looks open until TCP notices, which takes hours,
 * and the connection monitor only measures (node-config.ts).
 */
export const RELAY_LIVENESS_INTERVAL_MS = 15_000

/** How long a relay has to answer one of those pings, in ms: ten times a round trip to a relay on a saturated machine. */
export const RELAY_LIVENESS_TIMEOUT_MS = 5_000

/** Pings in a row a relay may miss before its connection is closed and its reservation made elsewhere or again. */
export const RELAY_LIVENESS_MISSES = 2

/** Addresses a node remembers per relay (configured or learned from relay records). */
export const MAX_RELAY_ADDRS = 16

// --- dials, streams and the node's libp2p config (dialer.ts, streams.ts, node-config.ts) ---------

/**
 * Each direct-dial retry delay (`dialBackoff * 2^(attempt - 2)`) is multiplied by a factor drawn
 * from this range, so peers that failed together do not retry together.
 */
export const DIAL_BACKOFF_JITTER = [0.5, 1.5] as const

/** How long a responder waits for the request on a new room or history stream, in ms. */
export const REQUEST_TIMEOUT_MS = 10_000

/**
 * Largest WebRTC data channel message, in bytes, instead of @libp2p/webrtc's 16 KiB: the most
 * Chromium accepts (its SDP's `a=max-message-size:262144`; node-datachannel's too). Per message
 * the sender, both browsers' network threads and the receiver pay a fixed cost; a file moved
 * 12-15 MiB/s in 16 KiB messages against 16-18 MiB/s in 64 KiB ones beside a raw data channel's
 * 16-24, and a file chunk now travels as one message (`FILE_CHUNK_BYTES`).
 */
export const WEBRTC_MAX_MESSAGE_BYTES = 256 * 1024

/** Inbound connections per second libp2p accepts from one IP: a room of tabs on one host all connect from one IP. */
export const INBOUND_CONNECTION_THRESHOLD = 100

// --- files: `room.sendFile`, `room.shareFile` (src/files/) ---------------------------------------

/**
 * Protocol of file transfers: offers, manifests, chunks and notices, each exchange on its own
 * stream, over direct WebRTC connections only (never a relay's circuit).
 */
export const FILE_PROTOCOL = `/p2p-rooms/${PROTOCOL_VERSION}/file`

/**
 * Bytes per chunk of a file we send or share: the unit that is hashed, verified, kept and re-sent.
 * 256 KiB less 64 bytes, so that a chunk's frame (varint length, type, index: 8 bytes) inside
 * @libp2p/webrtc's message (protobuf field and lengths: 9 bytes) fits one data channel message of
 * `WEBRTC_MAX_MESSAGE_BYTES`: the receiver then gets each chunk as a view of the message that
 * carried it, with nothing to join.
 */
export const FILE_CHUNK_BYTES = 256 * 1024 - 64

/** Smallest chunk size a receiver accepts in an offer, in bytes (smaller means a larger manifest). */
export const MIN_FILE_CHUNK_BYTES = 16 * 1024

/** Largest chunk size a receiver accepts in an offer, in bytes: the most one chunk frame holds in memory. */
export const MAX_FILE_CHUNK_BYTES = 1024 * 1024

/** Largest file a node accepts (`maxFileBytes`); larger offers are refused with `FileTooLargeError`, in bytes. */
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024

/** Files offered to us with `sendFile` that a room holds, not yet accepted or rejected (`maxPendingFiles`). */
export const DEFAULT_MAX_PENDING_FILES = 32

/** Files shared with `shareFile` by others that a room remembers; the oldest is forgotten first. */
export const MAX_FILE_OFFERS = 256

/**
 * How long the verified chunks of a file that did not finish are kept for a resume, after the
 * page that fetched them is gone (`keptFileTtl`), in ms.
 */
export const DEFAULT_KEPT_FILE_TTL_MS = 24 * 60 * 60 * 1000

/**
 * How long a sender keeps a transfer open for a receiver that left the room (a reload, a crash),
 * waiting for it to come back and resume (`fileResumeWindow`), in ms.
 */
export const DEFAULT_FILE_RESUME_WINDOW_MS = 60_000

/** Where a receiver keeps chunks: `'auto'` is OPFS, else IndexedDB, else memory (`fileStorage`). */
export const DEFAULT_FILE_STORAGE = 'auto'

/** Chunks a fetcher asks one source for ahead of those it received: its window (flow control). */
export const FILE_WINDOW_CHUNKS = 32

/** Chunks from one source that may fail verification before that source is dropped. */
export const MAX_BAD_CHUNKS_PER_SOURCE = 3

/** Longest file name (UTF-8 bytes) and media type (bytes) an offer may carry. */
export const MAX_FILE_NAME_BYTES = 1024
export const MAX_FILE_TYPE_BYTES = 255

/** Chunk hashes per manifest frame (32 bytes each). */
export const MANIFEST_HASHES_PER_FRAME = 2048

/** Chunk indices per request frame of a fetcher. */
export const MAX_WANT_INDICES = 256

/** Largest frame on `FILE_PROTOCOL`: a chunk and its header, in bytes. */
export const MAX_FILE_FRAME_BYTES = MAX_FILE_CHUNK_BYTES + 64

/** How often a node removes kept files whose page is gone and that were delivered or are past their TTL, in ms. */
export const FILE_SWEEP_INTERVAL_MS = 60 * 60 * 1000

/** OPFS directory (and IndexedDB database) where a receiver keeps chunks, one entry per file. */
export const FILE_STORE_NAME = 'p2p-rooms-files'

/** Web Lock name prefix, followed by a kept file's directory name: held by the page receiving it. */
export const FILE_LOCK_PREFIX = 'p2p-rooms:file:'

// --- media: `room.addStream`, `room.replaceTrack` (src/media/) -----------------------------------

/**
 * Protocol of media signalling: SDP offers and answers, ICE candidates and stream announcements
 * for each member's media RTCPeerConnection, over direct WebRTC connections only (never a relay's
 * circuit). The media itself flows on that RTCPeerConnection, never through libp2p.
 */
export const MEDIA_PROTOCOL = `/p2p-rooms/${PROTOCOL_VERSION}/media`

/** Largest media signalling frame (room key and JSON message), in bytes: an SDP of many tracks fits. */
export const MAX_MEDIA_FRAME_BYTES = 64 * 1024

/** Longest SDP a signalling message may carry, in UTF-16 code units. */
export const MAX_SDP_LENGTH = 60_000

/** Longest ICE candidate line (and its `sdpMid`, `usernameFragment`) a signalling message may carry. */
export const MAX_CANDIDATE_LENGTH = 1024

/** Largest `metadata` of a stream, as JSON, in bytes. */
export const MAX_STREAM_METADATA_BYTES = 4096

/** Streams one member may announce to us in one room at once; further announcements are dropped. */
export const MAX_STREAMS_PER_PEER = 16

/** Signalling frames held for a peer that is not a joined member yet (its offer can beat its hello). */
export const MAX_EARLY_MEDIA_FRAMES = 64

/**
 * Media signals waiting for one member while its direct connection heals (an SDP and its ICE
 * candidates are about a dozen); past it, new signals to that member are dropped and logged.
 */
export const MAX_MEDIA_OUTBOX_FRAMES = 256

/**
 * A media signal whose stream failed while its member still looked direct is tried again after
 * `MEDIA_SIGNAL_RETRY_MS`, at most `MEDIA_SIGNAL_RETRY_ATTEMPTS` times in a row; then it waits for
 * the member's next heal or our next signal to it, in ms.
 */
export const MEDIA_SIGNAL_RETRY_MS = 250
export const MEDIA_SIGNAL_RETRY_ATTEMPTS = 8

/** Peers whose early signalling frames a room holds at once. */
export const MAX_EARLY_MEDIA_PEERS = 32

/**
 * Longest the polite side of a media connection waits for its own offer's ICE gathering before
 * rolling that offer back for the other side's, in ms (src/media/peer.ts says why it waits).
 */
export const MEDIA_ROLLBACK_GATHER_WAIT_MS = 10_000

/** How often each media peer connection's stats are read for `room.stats()`, in ms. */
export const MEDIA_STATS_INTERVAL_MS = 1000
