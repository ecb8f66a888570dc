#!/usr/bin/env node
// Makes sure coturn's `turnserver` exists for the TURN end-to-end test (test/browser/turn.test.ts):
// Debian's `coturn` package. Installs it when running as root, otherwise stops with the command
// to run. Installing the package does not start a TURN service: the test runs its own turnserver.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const path = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver'
if (existsSync(path)) process.exit(0)

if (process.env.TURNSERVER_PATH !== undefined) {
  console.error(`TURNSERVER_PATH=${path} does not exist`)
  process.exit(1)
}
if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
  console.error('coturn (turnserver) is missing. Install it with:\n  sudo apt-get update && sudo apt-get install -y coturn\nor point TURNSERVER_PATH at a turnserver binary.')
  process.exit(1)
}
console.error('coturn is missing: installing Debian\'s coturn package (apt-get)…')
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
  execFileSync('apt-get', ['install', '-y', '-qq', 'coturn'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
} catch (err) {
  console.error(`Installing coturn failed (${err.message}). Run: apt-get update && apt-get install -y coturn`)
  process.exit(1)
}
if (!existsSync(path)) {
  console.error(`apt-get finished but ${path} is still missing`)
  process.exit(1)
}
