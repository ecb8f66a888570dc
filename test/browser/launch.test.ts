/**
 * Chromium as the tests and the bench launch it (tabs.ts): the flags this machine needs and none
 * that change timers, backgrounding or WebRTC. Playwright adds switches of its own to every launch
 * unless told not to; this reads the browser process's real command line.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { launchChromiumProcess } from './tabs.js'

/** What users' browsers do not do: throttle-free timers, never-backgrounded renderers, no mDNS host candidates. */
const NOT_LIKE_USERS = [
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
  'WebRtcHideLocalIpsWithMdns'
]

describe('Chromium launched for tests and benches', () => {
  it('runs with the flags this machine needs and none that change timers, backgrounding or WebRTC', async () => {
    const { server, browser } = await launchChromiumProcess()
    try {
      const pid = server.process().pid
      expect(pid).toBeDefined()
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      expect(args).toContain('--no-sandbox')
      for (const flag of NOT_LIKE_USERS) expect(args.filter((a) => a.includes(flag))).toEqual([])
    } finally {
      await browser.close()
      await server.close()
    }
  })
})
