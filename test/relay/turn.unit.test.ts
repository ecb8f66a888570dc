/**
 * TURN REST credentials (draft-uberti-behave-turn-rest-00 §2.2, as coturn's use-auth-secret
 * checks them), against HMAC-SHA1 values computed independently with
 * `printf '<username>' | openssl dgst -sha1 -hmac '<secret>' -binary | base64`.
 */
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { iceServers, mintTurnCredentials } from '../../relay/src/turn.js'

const NOW = 1_700_000_000_000 // ms

describe('TURN REST credentials', () => {
  it('names the user <expiry in Unix seconds>:<user> and signs it with base64(HMAC-SHA1(secret, username))', () => {
    const creds = mintTurnCredentials('s3cret', 86_400, 'alice', NOW)
    expect(creds).toEqual({ username: '1700086400:alice', credential: 'HJX0XIkrCiQCuU88Z0oeXj+QW60=', ttl: 86_400 })
  })

  it('agrees with openssl for other secrets, users and lifetimes', () => {
    for (const [secret, ttl, user] of [['another secret', 60, 'p2p-rooms'], ['x', 3600, 'bob'], ['ünïcödé', 1, 'tab-7']] as const) {
      const { username, credential } = mintTurnCredentials(secret, ttl, user, NOW)
      expect(username).toBe(`${NOW / 1000 + ttl}:${user}`)
      const expected = execFileSync('openssl', ['dgst', '-sha1', '-hmac', secret, '-binary'], { input: username })
      expect(credential).toBe(expected.toString('base64'))
    }
  })

  it('keeps colons out of the user part, where the expiry ends', () => {
    expect(mintTurnCredentials('s', 10, 'a:b', NOW).username).toBe('1700000010:ab')
  })
})

describe('iceServers', () => {
  const urls = ['stun:stun.example.com:3478', 'turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349']

  it('hands out STUN URLs as they are and TURN URLs with fresh credentials', () => {
    const servers = iceServers({ urls, turnSecret: 's3cret', turnTtl: 86_400 }, 'alice', NOW)
    expect(servers).toEqual([
      { urls: ['stun:stun.example.com:3478'] },
      { urls: ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349'], username: '1700086400:alice', credential: 'HJX0XIkrCiQCuU88Z0oeXj+QW60=' }
    ])
  })

  it('hands out TURN URLs without credentials when there is no secret, and nothing for no URLs', () => {
    expect(iceServers({ urls, turnTtl: 60 })).toEqual([{ urls: [urls[0]] }, { urls: urls.slice(1) }])
    expect(iceServers({ urls: [], turnSecret: 's', turnTtl: 60 })).toEqual([])
  })
})
