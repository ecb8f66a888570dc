import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        // our own pure logic: fast and deterministic, no network
        test: {
          name: 'unit',
          include: ['test/src/**/*.test.ts', 'test/relay/**/*.unit.test.ts', 'test/web/**/*.test.ts'],
          setupFiles: ['relay/src/polyfill.ts']
        }
      },
      {
        // a real relay process and real Node libp2p peers (node-datachannel for WebRTC)
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts', 'test/relay/**/*.int.test.ts'],
          setupFiles: ['relay/src/polyfill.ts'],
          globalSetup: ['test/setup/relay.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Node 20's global WebSocket, which @libp2p/websockets dials with, is behind a flag
          execArgv: ['--experimental-websocket']
        }
      },
      {
        // a real relay process and real Chromium pages (Debian's chromium via playwright-core)
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          setupFiles: ['relay/src/polyfill.ts'],
          globalSetup: ['test/setup/relay.ts', 'test/setup/fixture-server.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // several Chromium pages saturate 2 cores: one browser test file at a time
          fileParallelism: false
        }
      },
      {
        // `npm run bench`: meeting and latency in real Chromium tabs beside PeerJS, and relay cost
        // per peer; not part of `npm test`
        test: {
          name: 'bench',
          include: ['test/bench/**/*.bench.test.ts'],
          setupFiles: ['relay/src/polyfill.ts'],
          globalSetup: ['test/setup/relay.ts', 'test/setup/bench.ts', 'test/setup/fixture-server.ts'],
          testTimeout: 600_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          // the relay bench talks to the relay's V8 inspector over Node 20's flagged global WebSocket
          execArgv: ['--experimental-websocket']
        }
      }
    ]
  }
})
