/**
 * Builds the browser fixture (test/browser/fixture) with Vite and serves it with `vite preview`
 * on port 0; tests read its URL with `inject('fixtureUrl')`.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, preview } from 'vite'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    fixtureUrl: string
  }
}

export default async function setup (project: TestProject): Promise<() => Promise<void>> {
  const configFile = new URL('../browser/fixture/vite.config.ts', import.meta.url).pathname
  const outDir = await mkdtemp(join(tmpdir(), 'p2p-rooms-fixture-'))
  await build({ configFile, build: { outDir } })
  const server = await preview({ configFile, build: { outDir }, preview: { host: '127.0.0.1', port: 0, strictPort: false } })
  const url = server.resolvedUrls?.local[0]
  if (url === undefined) throw new Error('vite preview reported no URL')
  project.provide('fixtureUrl', url)
  return async () => { await server.close() }
}
