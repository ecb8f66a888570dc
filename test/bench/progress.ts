/**
 * A bench page's progress as its record reports it (fixture/record.ts `benchProgress`), followed
 * on the page's own events instead of polling the page over the DevTools Protocol: a poller's CPU
 * lands on the cores the meeting needs, and in the very CPU profile that waits for it.
 */
import type { BenchProgress } from './fixture/record.js'
import type { Page } from 'playwright-core'

export interface PageProgress {
  /**
   * Resolves once `reached` holds for what the page last reported (at once if it already does);
   * rejects with the page's error, or after `timeoutMs` naming `what` was awaited.
   */
  until(reached: (progress: BenchProgress) => boolean, timeoutMs: number, what: string): Promise<void>
}

/** Follows `page`'s progress from its next navigation on; call it before `page.goto`. */
export async function followProgress (page: Page): Promise<PageProgress> {
  const last: BenchProgress = { joined: 0, first: 0 }
  const wake = new Set<() => void>()
  await page.exposeFunction('benchProgress', (p: BenchProgress) => {
    Object.assign(last, p)
    for (const check of wake) check()
  })
  return {
    async until (reached, timeoutMs, what) {
      let check = (): void => {}
      let timer: ReturnType<typeof setTimeout> | undefined
      try {
        await new Promise<void>((resolve, reject) => {
          check = () => {
            if (last.error !== undefined) reject(new Error(last.error))
            else if (reached(last)) resolve()
          }
          timer = setTimeout(() => { reject(new Error(`${what}: not within ${timeoutMs} ms`)) }, timeoutMs)
          wake.add(check)
          check()
        })
      } finally {
        clearTimeout(timer)
        wake.delete(check)
      }
    }
  }
}
