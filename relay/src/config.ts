/**
 * The relay's configuration, from command-line flags, `P2P_ROOMS_RELAY_*` environment variables
 * and a JSON config file (`--config`), in that order of precedence, then the defaults in
 * constants.ts. commander parses flags and environment variables (`Option.env`); the config file
 * fills in whatever neither set, through the same parsers, so a value means the same wherever it
 * comes from.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import {
  DEFAULT_ANNOUNCEMENTS_PER_SECOND, DEFAULT_CIRCUIT_DATA_LIMIT_BYTES, DEFAULT_CIRCUIT_DURATION_LIMIT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_ICE_ORIGINS, DEFAULT_ICE_RATE_LIMIT, DEFAULT_IDENTITY_FILE, DEFAULT_INBOUND_CONNECTION_THRESHOLD, DEFAULT_LISTEN,
  DEFAULT_LOG_LEVEL, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESERVATIONS, DEFAULT_MAX_RESERVATIONS_PER_IP, DEFAULT_MAX_ROOMS,
  DEFAULT_MAX_ROOMS_PER_IP, DEFAULT_MAX_ROOMS_PER_PEER, DEFAULT_PING_INTERVAL_MS, DEFAULT_ROOM_TTL_MS, DEFAULT_TURN_TTL_S,
  ENV_PREFIX, LOG_LEVELS
} from './constants.js'
import { InvalidConfigError } from './errors.js'

export type LogLevel = typeof LOG_LEVELS[number]

/** Everything the binary runs with; keys are the camelCase option names (and config file keys). */
export interface RelayConfig {
  /** The JSON config file read, if any. */
  config?: string
  listen: string[]
  announce?: string[]
  /** Path of the private key file. */
  identity: string
  tlsCert?: string
  tlsKey?: string
  http?: { host: string, port: number }
  logLevel: LogLevel
  maxReservations: number
  maxReservationsPerIp: number
  maxConnections: number
  /** ms */
  handshakeTimeout: number
  /** Inbound connections per second per IP. */
  inboundConnectionThreshold: number
  /** ms */
  circuitDurationLimit: number
  /** bytes */
  circuitDataLimit: number
  maxRooms: number
  maxRoomsPerPeer: number
  maxRoomsPerIp: number
  announcementsPerSecond: number
  /** ms */
  roomTtl: number
  /** ms */
  pingInterval: number
  /** STUN/TURN URLs served by `GET /ice-servers`. */
  iceServer: string[]
  /** Origins whose pages may fetch `GET /ice-servers` (`*`: any). */
  iceOrigins: string[]
  /** `GET /ice-servers` requests per minute per IP. */
  iceRateLimit: number
  turnSecret?: string
  /** seconds */
  turnTtl: number
  /** Other relays to federate with. */
  peer: string[]
  /** Path of the federation key file. */
  federationKey?: string
}

/** Where each option's value came from. */
export type ConfigSources = Partial<Record<keyof RelayConfig, 'cli' | 'env' | 'config' | 'default'>>

function positiveInteger (value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a positive integer')
  }
  return Number(value)
}

function hostPort (value: string): { host: string, port: number } {
  const match = /^(.+):(\d+)$/.exec(value.trim())
  if (match === null || Number(match[2]) > 65535) throw new InvalidArgumentError('expected host:port, e.g. 127.0.0.1:9091')
  return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) }
}

function anyMultiaddr (value: string): string {
  try {
    return multiaddr(value).toString()
  } catch (err: any) {
    throw new InvalidArgumentError(`not a multiaddr (${err?.message ?? err})`)
  }
}

/** A relay to federate with is named by its peer ID: the multiaddr must end in `/p2p/<peer ID>`. */
function peerMultiaddr (value: string): string {
  const ma = anyMultiaddr(value)
  if (!/\/p2p\/[^/]+$/.test(ma)) throw new InvalidArgumentError('expected a relay multiaddr ending in /p2p/<peer ID>, as the relay prints it')
  return ma
}

/** Browsers reach the relay only over WebSockets: `/ws`, or `/tls/ws` (`/wss`) with a certificate. */
function listenMultiaddr (value: string): string {
  const ma = anyMultiaddr(value)
  if (!/\/tcp\/\d+\/(ws|wss|tls\/ws)$/.test(ma)) {
    throw new InvalidArgumentError('expected a WebSockets listen multiaddr, e.g. /ip4/0.0.0.0/tcp/9090/ws, or /ip4/0.0.0.0/tcp/443/tls/ws with --tls-cert and --tls-key')
  }
  return ma
}

/** A web origin as browsers send it in `Origin` (`scheme://host[:port]`, no path), or `*`. */
function origin (value: string): string {
  if (value === '*') return value
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError('expected an origin, e.g. https://app.example.com, or *')
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.origin !== value.replace(/\/$/, '')) {
    throw new InvalidArgumentError('expected an origin, e.g. https://app.example.com (scheme, host and port only), or *')
  }
  return url.origin
}

function iceUrl (value: string): string {
  if (!/^(stun|stuns|turn|turns):\S+$/.test(value)) throw new InvalidArgumentError('expected a stun:, stuns:, turn: or turns: URL, e.g. turn:turn.example.com:3478?transport=udp')
  return value
}

/**
 * A list option: every flag occurrence, and an environment variable or config file string, may
 * hold several values separated by spaces or commas (neither occurs in multiaddrs or ICE URLs).
 */
function list (parse: (value: string) => string, defaultValue?: string[]) {
  return (value: string, previous: string[] | undefined): string[] => {
    const kept = previous === undefined || previous === defaultValue ? [] : previous
    return [...kept, ...value.split(/[\s,]+/).filter((v) => v !== '').map(parse)]
  }
}

/** `--max-reservations-per-ip` → `P2P_ROOMS_RELAY_MAX_RESERVATIONS_PER_IP` */
function envName (flag: string): string {
  return ENV_PREFIX + flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()
}

function option (flags: string, description: string): Option {
  const opt = new Option(flags, description)
  return opt.env(envName(opt.long as string))
}

/** The command-line interface; also the source of truth for option names, env names and help. */
function createProgram (): Command {
  const program = new Command('p2p-rooms-relay')
    .description('Circuit-relay-v2 relay and room discovery hub for p2p-rooms browser nodes. Prints each multiaddr ' +
      'browsers should use (ending in /p2p/<peer ID>) on stdout, one per line, once listening; logs JSON lines on stderr.')
    .version(version(), '--version', 'print the version and exit')
    .addOption(option('--config <file>', 'JSON file of options: keys are the camelCase option names, e.g. {"maxReservations": 512}')
      .default(undefined, 'none'))
    .addOption(option('--listen <multiaddr...>', 'WebSockets listen multiaddrs (/tls/ws needs --tls-cert and --tls-key)')
      .default(DEFAULT_LISTEN, DEFAULT_LISTEN.join(' ')).argParser(list(listenMultiaddr, DEFAULT_LISTEN)))
    .addOption(option('--announce <multiaddr...>', 'multiaddrs to advertise and print instead of the listen addresses, e.g. /dns4/relay.example.com/tcp/443/tls/ws behind a reverse proxy')
      .default(undefined, 'the listen addresses').argParser(list(anyMultiaddr)))
    .addOption(option('--identity <file>', 'private key file (created with mode 0600 if missing): keeps the peer ID across restarts')
      .default(DEFAULT_IDENTITY_FILE))
    .addOption(option('--tls-cert <file>', 'PEM certificate (chain) for /tls/ws listen addresses').default(undefined, 'none'))
    .addOption(option('--tls-key <file>', 'PEM private key of --tls-cert').default(undefined, 'none'))
    .addOption(option('--http <host:port>', 'serve /metrics, /status, /healthz and /ice-servers here; bind it to loopback or a private interface')
      .default(undefined, 'off').argParser(hostPort))
    .addOption(option('--log-level <level>', 'level of the JSON log lines on stderr').choices(LOG_LEVELS).default(DEFAULT_LOG_LEVEL))
    .addOption(option('--max-reservations <n>', 'circuit-relay reservations held at once (one per peer)')
      .default(DEFAULT_MAX_RESERVATIONS).argParser(positiveInteger))
    .addOption(option('--max-reservations-per-ip <n>', 'reservations held at once for peers on one IP address')
      .default(DEFAULT_MAX_RESERVATIONS_PER_IP).argParser(positiveInteger))
    .addOption(option('--max-connections <n>', 'connections held at once, counting inbound TCP connections still in their handshake; inbound ones beyond are closed')
      .default(DEFAULT_MAX_CONNECTIONS).argParser(positiveInteger))
    .addOption(option('--handshake-timeout <ms>', 'how long an inbound TCP connection may take to become a libp2p connection (WebSocket, Noise, yamux), in ms; it is closed then')
      .default(DEFAULT_HANDSHAKE_TIMEOUT_MS).argParser(positiveInteger))
    .addOption(option('--inbound-connection-threshold <n>', 'inbound connections accepted per second from one IP address')
      .default(DEFAULT_INBOUND_CONNECTION_THRESHOLD).argParser(positiveInteger))
    .addOption(option('--circuit-duration-limit <ms>', 'lifetime of one relayed connection, in ms')
      .default(DEFAULT_CIRCUIT_DURATION_LIMIT_MS).argParser(positiveInteger))
    .addOption(option('--circuit-data-limit <bytes>', 'bytes one relayed connection may carry, both directions together')
      .default(DEFAULT_CIRCUIT_DATA_LIMIT_BYTES).argParser(positiveInteger))
    .addOption(option('--max-rooms <n>', 'rooms (discovery topics) followed at once')
      .default(DEFAULT_MAX_ROOMS).argParser(positiveInteger))
    .addOption(option('--max-rooms-per-peer <n>', 'rooms one peer can make the relay follow (its discovery subscriptions counted)')
      .default(DEFAULT_MAX_ROOMS_PER_PEER).argParser(positiveInteger))
    .addOption(option('--max-rooms-per-ip <n>', 'rooms followed for the peers of one IP address together (IPv6: one /64)')
      .default(DEFAULT_MAX_ROOMS_PER_IP).argParser(positiveInteger))
    .addOption(option('--announcements-per-second <n>', 'announcements one peer may send per second (burst: --max-rooms-per-peer)')
      .default(DEFAULT_ANNOUNCEMENTS_PER_SECOND).argParser(positiveInteger))
    .addOption(option('--room-ttl <ms>', 'how long a room with no subscriber is still followed, in ms')
      .default(DEFAULT_ROOM_TTL_MS).argParser(positiveInteger))
    .addOption(option('--ping-interval <ms>', 'how often each connection is pinged to find dead peers, in ms')
      .default(DEFAULT_PING_INTERVAL_MS).argParser(positiveInteger))
    .addOption(option('--ice-server <url...>', 'STUN/TURN URLs handed to browsers by GET /ice-servers')
      .default(undefined, 'none').argParser(list(iceUrl)))
    .addOption(option('--ice-origins <origin...>', 'origins whose pages may fetch GET /ice-servers, e.g. https://app.example.com, or * for any; others get 403')
      .default(DEFAULT_ICE_ORIGINS, 'none').argParser(list(origin, DEFAULT_ICE_ORIGINS)))
    .addOption(option('--ice-rate-limit <n>', 'GET /ice-servers requests per minute from one IP address (IPv6: one /64); beyond, 429')
      .default(DEFAULT_ICE_RATE_LIMIT).argParser(positiveInteger))
    .addOption(option('--turn-secret <secret>', 'shared secret of the TURN server (coturn static-auth-secret): /ice-servers mints TURN REST credentials with it')
      .default(undefined, 'none'))
    .addOption(option('--turn-ttl <seconds>', 'lifetime of minted TURN credentials, in seconds')
      .default(DEFAULT_TURN_TTL_S).argParser(positiveInteger))
    .addOption(option('--peer <multiaddr...>', 'other relays to federate with (their multiaddrs, ending in /p2p/<peer ID>); each is trusted, and so is the federation its record declares')
      .default(undefined, 'none').argParser(list(peerMultiaddr)))
    .addOption(option('--federation-key <file>', 'federation private key file shared by the relays of one operator (created with mode 0600 if missing): relays proving it federate, and browsers trust them')
      .default(undefined, 'none'))
    .addHelpText('after', `
Every option can also be set by its environment variable or, in the --config file, by its
camelCase name. Precedence: flag > environment variable > config file > default. Lists
(--listen, --announce, --ice-server, --ice-origins, --peer) take several values; in an environment variable or
a config string separate them with spaces or commas. Exit codes: 0 after SIGTERM/SIGINT,
1 on a failure at run time, 2 on an invalid option, config file or identity file.`)
    .configureHelp({
      sortOptions: false,
      optionDescription: (opt) => {
        if (opt.envVar === undefined) return opt.description // --help, --version
        const extra = [
          ...(opt.argChoices !== undefined ? [`choices: ${opt.argChoices.join(', ')}`] : []),
          `default: ${opt.defaultValueDescription ?? (opt.defaultValue === undefined ? 'none' : String(opt.defaultValue))}`,
          `env: ${opt.envVar}`,
          ...(opt.long !== '--config' ? [`config: ${opt.attributeName()}`] : [])
        ]
        return `${opt.description} (${extra.join(', ')})`
      }
    })
    .allowExcessArguments(false)
    .exitOverride()
    // errors surface as InvalidConfigError, printed once by the binary
    .configureOutput({ outputError: () => {} })
  return program
}

function version (): string {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version
  } catch {
    return 'unknown'
  }
}

/**
 * Parses `argv` (the user arguments, without `node` and the script), the environment and the
 * config file. Returns undefined when `--help` or `--version` was printed; throws
 * `InvalidConfigError` on any invalid value.
 */
export function parseConfig (argv: string[]): { config: RelayConfig, sources: ConfigSources } | undefined {
  const program = createProgram()
  try {
    program.parse(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return undefined
      throw new InvalidConfigError(err.message.replace(/^error: /, ''))
    }
    throw err
  }
  const file = program.getOptionValue('config') as string | undefined
  if (file !== undefined) applyConfigFile(program, file)

  const config = program.opts<RelayConfig>()
  config.iceServer ??= []
  config.peer ??= []
  config.iceOrigins ??= []
  checkTls(config)
  const sources: ConfigSources = {}
  for (const opt of program.options) {
    const key = opt.attributeName() as keyof RelayConfig
    const source = program.getOptionValueSource(key)
    if (source === 'cli' || source === 'env' || source === 'config' || source === 'default') sources[key] = source as ConfigSources[typeof key]
  }
  return { config, sources }
}

/** Fills in, from the JSON file, every option that neither a flag nor an environment variable set. */
function applyConfigFile (program: Command, file: string): void {
  let content: unknown
  try {
    content = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err: any) {
    throw new InvalidConfigError(`config file ${file}: ${err?.code === 'ENOENT' ? 'no such file' : err?.message ?? err}`)
  }
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new InvalidConfigError(`config file ${file}: expected a JSON object of options, e.g. {"maxReservations": 512}`)
  }
  for (const [key, value] of Object.entries(content)) {
    const opt = program.options.find((o) => o.attributeName() === key)
    if (opt === undefined || key === 'config' || key === 'version') {
      throw new InvalidConfigError(`config file ${file}: unknown key "${key}" (keys are the camelCase option names, e.g. maxReservations; see --help)`)
    }
    const source = program.getOptionValueSource(key)
    if (source === 'cli' || source === 'env') continue
    const fail = (message: string): never => { throw new InvalidConfigError(`config file ${file}: ${key}: ${message}`) }
    const values = Array.isArray(value) ? value : [value]
    if ((Array.isArray(value) && !opt.variadic) || values.some((v) => !['string', 'number'].includes(typeof v))) {
      fail(opt.variadic ? 'expected a string or an array of strings' : 'expected a string or a number')
    }
    let parsed: unknown
    try {
      const parse = opt.parseArg as ((value: string, previous: unknown) => unknown) | undefined
      parsed = parse === undefined ? String(value) : values.reduce<unknown>((previous, v) => parse(String(v), previous), undefined)
    } catch (err: any) {
      fail(err?.message ?? String(err))
    }
    // paths in a config file are relative to the file, wherever the relay is started from
    if (['identity', 'tlsCert', 'tlsKey', 'federationKey'].includes(key)) parsed = resolve(dirname(file), parsed as string)
    program.setOptionValueWithSource(key, parsed, 'config')
  }
}

function checkTls (config: RelayConfig): void {
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new InvalidConfigError('--tls-cert and --tls-key go together: give both or neither')
  }
  const secure = config.listen.filter((ma) => /\/(tls\/ws|wss)$/.test(ma))
  if (secure.length > 0 && config.tlsCert === undefined) {
    throw new InvalidConfigError(`listening on ${secure.join(', ')} needs --tls-cert and --tls-key`)
  }
  if (secure.length === 0 && config.tlsCert !== undefined) {
    throw new InvalidConfigError('--tls-cert is given but no listen address uses TLS: listen on /tls/ws, e.g. /ip4/0.0.0.0/tcp/443/tls/ws')
  }
}
