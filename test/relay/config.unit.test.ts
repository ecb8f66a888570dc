/**
 * The relay's configuration: flag > environment variable > config file > default, one parser for
 * all three, and a named error for every invalid value.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../../relay/src/config.js'
import { DEFAULT_IDENTITY_FILE, DEFAULT_LISTEN, DEFAULT_MAX_RESERVATIONS } from '../../relay/src/constants.js'

const dir = mkdtempSync(join(tmpdir(), 'p2p-rooms-relay-config-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const set: string[] = []
/** Sets environment variables for one test. */
function env (vars: Record<string, string>): void {
  for (const [k, v] of Object.entries(vars)) {
    process.env[k] = v
    set.push(k)
  }
}
afterEach(() => { for (const k of set.splice(0)) delete process.env[k] })

function file (name: string, content: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

const parse = (argv: string[]): ReturnType<typeof parseConfig> => parseConfig(argv)

const PEER_A = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const PEER_B = '12D3KooWCksQj9otAbv5CYtyRXUULNe66jhziporpktCieXQ8nFb'

describe('relay configuration', () => {
  it('uses the defaults from constants.ts when nothing is set', () => {
    const { config, sources } = parse([]) as NonNullable<ReturnType<typeof parseConfig>>
    expect(config.listen).toEqual(DEFAULT_LISTEN)
    expect(config.identity).toBe(DEFAULT_IDENTITY_FILE)
    expect(config.maxReservations).toBe(DEFAULT_MAX_RESERVATIONS)
    expect(config.http).toBeUndefined()
    expect(config.iceServer).toEqual([])
    expect(config.peer).toEqual([])
    expect(sources.maxReservations).toBe('default')
  })

  it('takes a flag over an environment variable over the config file over the default', () => {
    const config = file('precedence.json', { maxReservations: 1, maxRooms: 2, roomTtl: 3 })
    env({ P2P_ROOMS_RELAY_MAX_RESERVATIONS: '10', P2P_ROOMS_RELAY_MAX_ROOMS: '20' })
    const parsed = parse(['--config', config, '--max-reservations', '100'])
    expect(parsed?.config).toMatchObject({ maxReservations: 100, maxRooms: 20, roomTtl: 3, maxConnections: 2048 })
    expect(parsed?.sources).toMatchObject({ maxReservations: 'cli', maxRooms: 'env', roomTtl: 'config', maxConnections: 'default' })
  })

  it('finds the config file from its environment variable too', () => {
    env({ P2P_ROOMS_RELAY_CONFIG: file('from-env.json', { turnTtl: 60 }) })
    expect(parse([])?.config.turnTtl).toBe(60)
  })

  it('reads lists from repeated flags, from space- or comma-separated strings, and from JSON arrays', () => {
    expect(parse(['--listen', '/ip4/0.0.0.0/tcp/1/ws', '--listen', '/ip6/::/tcp/1/ws'])?.config.listen).toEqual(['/ip4/0.0.0.0/tcp/1/ws', '/ip6/::/tcp/1/ws'])
    expect(parse(['--listen', '/ip4/0.0.0.0/tcp/1/ws', '/ip4/0.0.0.0/tcp/2/ws'])?.config.listen).toEqual(['/ip4/0.0.0.0/tcp/1/ws', '/ip4/0.0.0.0/tcp/2/ws'])
    env({ P2P_ROOMS_RELAY_ICE_SERVER: 'stun:a.example:3478, turn:b.example:3478?transport=udp' })
    expect(parse([])?.config.iceServer).toEqual(['stun:a.example:3478', 'turn:b.example:3478?transport=udp'])
    const [a, b] = [`/dns4/a.example/tcp/443/tls/ws/p2p/${PEER_A}`, `/dns4/b.example/tcp/443/tls/ws/p2p/${PEER_B}`]
    const config = file('lists.json', { peer: [a, b], announce: '/dns4/relay.example/tcp/443/tls/ws' })
    expect(parse(['--config', config])?.config).toMatchObject({
      peer: [a, b],
      announce: ['/dns4/relay.example/tcp/443/tls/ws']
    })
  })

  it('reads numbers given as JSON numbers or strings, and host:port', () => {
    const config = file('numbers.json', { maxConnections: '12', circuitDataLimit: 4096, http: '[::1]:9091' })
    expect(parse(['--config', config])?.config).toMatchObject({ maxConnections: 12, circuitDataLimit: 4096, http: { host: '::1', port: 9091 } })
  })

  it('resolves file paths in the config file against its directory', () => {
    const config = file('paths.json', { identity: 'keys/relay.key' })
    expect(parse(['--config', config])?.config.identity).toBe(join(dir, 'keys/relay.key'))
  })

  it('throws InvalidConfigError naming the option and its source on an invalid value', () => {
    const invalid = (argv: string[]): string => {
      try {
        parse(argv)
      } catch (err: any) {
        expect(err.name).toBe('InvalidConfigError')
        return err.message
      }
      throw new Error('no error')
    }
    expect(invalid(['--max-rooms', '1.5'])).toMatch(/--max-rooms <n>.*expected a positive integer/)
    expect(invalid(['--http', '9091'])).toMatch(/expected host:port/)
    expect(invalid(['--peer', 'not-a-multiaddr'])).toMatch(/not a multiaddr/)
    // a relay to federate with is named by its peer ID
    expect(invalid(['--peer', '/dns4/a.example/tcp/443/tls/ws'])).toMatch(/ending in \/p2p\/<peer ID>/)
    expect(invalid(['--ice-origins', 'https://app.example.com/path'])).toMatch(/expected an origin/)
    expect(invalid(['--ice-origins', 'app.example.com'])).toMatch(/expected an origin/)
    expect(invalid(['--tls-cert', 'c.pem'])).toMatch(/--tls-cert and --tls-key go together/)
    expect(invalid(['--tls-cert', 'c.pem', '--tls-key', 'k.pem'])).toMatch(/no listen address uses TLS/)
    expect(invalid(['--config', file('array.json', [1])])).toMatch(/expected a JSON object/)
    expect(invalid(['--config', file('syntax.json', '{"maxRooms": ')])).toMatch(/syntax\.json: .*JSON/)
    expect(invalid(['--config', file('type.json', { maxRooms: [1, 2] })])).toMatch(/maxRooms: expected a string or a number/)
    expect(invalid(['--config', file('nested.json', { config: 'other.json' })])).toMatch(/unknown key "config"/)
    env({ P2P_ROOMS_RELAY_TURN_TTL: 'forever' })
    expect(invalid([])).toMatch(/P2P_ROOMS_RELAY_TURN_TTL.*expected a positive integer/)
  })

  it('reads the /ice-servers origin allow-list, none by default', () => {
    expect(parse([])?.config.iceOrigins).toEqual([])
    expect(parse(['--ice-origins', 'https://a.example.com', 'http://localhost:5173'])?.config.iceOrigins).toEqual(['https://a.example.com', 'http://localhost:5173'])
    env({ P2P_ROOMS_RELAY_ICE_ORIGINS: '*' })
    expect(parse([])?.config.iceOrigins).toEqual(['*'])
  })

  it('accepts secure WebSockets listen addresses with a certificate and key', () => {
    expect(parse(['--listen', '/ip4/0.0.0.0/tcp/443/tls/ws', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'])?.config).toMatchObject({
      listen: ['/ip4/0.0.0.0/tcp/443/tls/ws'], tlsCert: 'c.pem', tlsKey: 'k.pem'
    })
  })
})
