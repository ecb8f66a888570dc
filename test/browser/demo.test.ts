/**
 * The README's first command, as a newcomer runs it: `npm start` (scripts/start.mjs) starts a
 * relay and the demo; two Chromium tabs of the printed URL meet, go direct and chat.
 */
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './tabs.js'
import type { ChildProcess } from 'node:child_process'
import type { Browser, Page } from 'playwright-core'

const ROOT = new URL('../..', import.meta.url).pathname

let browser: Browser
let demo: ChildProcess | undefined
beforeAll(async () => { browser = await launchChromium() })
afterAll(async () => {
  demo?.kill('SIGKILL')
  await browser?.close()
})

/** Starts the demo and resolves with the app URL it prints. */
async function startDemo (room: string): Promise<string> {
  const child = demo = spawn(process.execPath, ['scripts/start.mjs', '--port', '0', '--room', room], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`npm start printed no URL within 60 s:\n${out}`)) }, 60_000)
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const url = /open (http\S+) in two or more tabs/.exec(out)?.[1]
      if (url !== undefined) {
        clearTimeout(timer)
        resolve(url)
      }
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.once('exit', (code) => { reject(new Error(`npm start exited with ${code}:\n${out}`)) })
  })
}

async function openDemo (url: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  await page.goto(url)
  return page
}

describe('npm start', () => {
  it('serves a demo whose tabs find the relay, go direct and chat, and stops on SIGTERM', async () => {
    const url = await startDemo(`demo-${Date.now()}`)
    const [one, two] = await Promise.all([openDemo(url), openDemo(url)])
    // each tab lists the other as ready over a direct path
    for (const page of [one, two]) {
      await page.locator('#peer-list li[data-path="direct"][data-state="ready"]').waitFor({ timeout: 60_000 })
    }
    await one.getByLabel('Message').fill('hello from the first tab')
    await one.getByLabel('Message').press('Enter')
    await two.getByText('hello from the first tab').waitFor({ timeout: 15_000 })

    demo?.removeAllListeners('exit')
    const exited = new Promise<number | null>((resolve) => demo?.once('exit', (code) => { resolve(code) }))
    demo?.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
