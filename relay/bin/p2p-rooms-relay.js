#!/usr/bin/env node
// Committed launcher: exists (and is executable) before `npm run build` emits dist/.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/bin.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('p2p-rooms-relay is not built yet: run `npm run build` in the repository root\n')
  process.exit(1)
}
await import(entry.href)
