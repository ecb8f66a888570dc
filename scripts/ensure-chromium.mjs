#!/usr/bin/env node
// Makes sure a Chromium for the browser tests exists: Debian's `chromium` package, driven by
// playwright-core (`npx playwright install` cannot download here). Installs it when running as
// root, otherwise stops with the command to run.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
if (existsSync(path)) process.exit(0)

if (process.env.CHROMIUM_PATH !== undefined) {
  console.error(`CHROMIUM_PATH=${path} does not exist`)
  process.exit(1)
}
if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
  console.error('Chromium is missing. Install it with:\n  sudo apt-get update && sudo apt-get install -y chromium\nor point CHROMIUM_PATH at a Chromium binary.')
  process.exit(1)
}
console.error('Chromium is missing: installing Debian\'s chromium package (apt-get)…')
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
} catch (err) {
  console.error(`Installing chromium failed (${err.message}). Run: apt-get update && apt-get install -y chromium`)
  process.exit(1)
}
if (!existsSync(path)) {
  console.error(`apt-get finished but ${path} is still missing`)
  process.exit(1)
}
