import { describe, expect, it } from 'vitest'
import { MAX_ROOM_NAME_LENGTH, checkRoomName, inviteUrl, newRoomSecret, settingsFromUrl, urlFor } from '../../web/src/config.js'

const page = (q: string): URL => new URL(`http://127.0.0.1:5173/${q}`)

describe('demo room names', () => {
  it('accepts 1 to MAX_ROOM_NAME_LENGTH characters after trimming, and says why not otherwise', () => {
    expect(checkRoomName('  lobby ')).toEqual({ ok: true, name: 'lobby' })
    expect(checkRoomName('x'.repeat(MAX_ROOM_NAME_LENGTH))).toEqual({ ok: true, name: 'x'.repeat(MAX_ROOM_NAME_LENGTH) })
    expect(checkRoomName('')).toEqual({ ok: false, problem: 'Give the room a name.' })
    expect(checkRoomName('    ')).toEqual({ ok: false, problem: 'A room name needs more than spaces.' })
    expect(checkRoomName('x'.repeat(5000))).toEqual({ ok: false, problem: 'Room names have at most 256 characters; this one has 5,000.' })
  })

  it('reads no room, an empty room and an overlong one from the URL as problems, never as lobby', () => {
    expect(settingsFromUrl(page('')).room).toBeUndefined()
    expect(settingsFromUrl(page('')).roomProblem).toBeUndefined()
    expect(settingsFromUrl(page('?room=')).roomProblem).toBe('This link names no room.')
    expect(settingsFromUrl(page('?room=%20%20')).roomProblem).toBe('This link names no room.')
    const long = settingsFromUrl(page(`?room=${'y'.repeat(5000)}`))
    expect(long.room).toBeUndefined()
    expect(long.roomProblem).toContain('at most 256 characters; this one has 5,000')
  })

  it('reads a private room from the fragment, and ?private without a secret as a request for it', () => {
    expect(settingsFromUrl(page('?room=a#secret=s3cret')).room).toEqual({ name: 'a', type: 'broadcast', secret: 's3cret' })
    expect(settingsFromUrl(page('?room=a&private')).needsSecret).toBe(true)
    expect(settingsFromUrl(page('?room=a&private#secret=s')).needsSecret).toBe(false)
  })
})

describe('demo invite links', () => {
  it('never carry identity= or a relay= that was not reached, and carry the secret only in the fragment', () => {
    const here = page('?room=x&identity=persistent&relay=/ip4/1.2.3.4/tcp/9/ws/p2p/12D3KooWBroken&type=one-way#secret=abc')
    const room = settingsFromUrl(here).room!
    const invite = inviteUrl(here, room, { withSecret: true, relays: [] })
    expect(invite.searchParams.has('identity')).toBe(false)
    expect(invite.searchParams.has('relay')).toBe(false)
    expect(invite.searchParams.get('type')).toBe('one-way')
    expect(invite.search).not.toContain('abc')
    expect(invite.hash).toBe('#secret=abc')
    const withoutSecret = inviteUrl(here, room, { withSecret: false, relays: [] })
    expect(withoutSecret.href).not.toContain('abc')
    expect(settingsFromUrl(withoutSecret).needsSecret).toBe(true)
    const reached = inviteUrl(here, room, { withSecret: true, relays: ['/ip4/1.2.3.4/tcp/9/ws/p2p/12D3KooWGood'] })
    expect(reached.searchParams.getAll('relay')).toEqual(['/ip4/1.2.3.4/tcp/9/ws/p2p/12D3KooWGood'])
  })

  it('moves a ?secret= typed into the query to the fragment of the address bar', () => {
    const url = urlFor(page('?room=a&secret=abc'), { name: 'a', type: 'broadcast', secret: 'abc' }, true)
    expect(url.searchParams.has('secret')).toBe(false)
    expect(url.hash).toBe('#secret=abc')
  })

  it('makes 128-bit secrets, never the same twice', () => {
    const secrets = new Set(Array.from({ length: 100 }, () => newRoomSecret()))
    expect(secrets.size).toBe(100)
    for (const s of secrets) expect(s).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })
})
