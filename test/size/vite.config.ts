import { defineConfig } from 'vite'

// Builds test/size/app.ts as an app would ship it (minified, code-split): `npm test` checks with
// size-limit that its first chunk, assets/app.js, stays within budget; what a node loads later
// (files, media: src/extensions.ts) goes to chunks of their own.
const root = new URL('.', import.meta.url).pathname
export default defineConfig({
  root,
  logLevel: 'warn',
  build: {
    outDir: `${root}dist`,
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    rollupOptions: { output: { entryFileNames: 'assets/app.js', chunkFileNames: 'assets/lazy-[name]-[hash].js' } }
  }
})
