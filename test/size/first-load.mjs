/**
 * What an app that only calls createRoomNode loads before it can start: test/size's assets/app.js
 * and every chunk it imports statically, transitively (not the `import()`s of src/extensions.ts),
 * concatenated into dist/first-load.js, which size-limit measures (`npm run size`).
 *
 * Measuring app.js alone is not enough: once the lazy chunks (files, media) share modules with the
 * core, the bundler moves those into a chunk of their own that app.js imports at once; app.js then
 * shrinks while the first load does not.
 */
import { readFileSync, writeFileSync } from 'node:fs'

const assets = new URL('./dist/assets/', import.meta.url)
/** `import … from"./x.js"`, `import"./x.js"`, `export … from"./x.js"`; never `import("./x.js")` */
const STATIC_IMPORT = /(?:^|[;\s}])(?:import|export)\s*(?:[^'"()]*?from\s*)?["']\.\/([^"']+\.js)["']/g

const seen = new Set()
const parts = []
function visit (name) {
  if (seen.has(name)) return
  seen.add(name)
  const code = readFileSync(new URL(name, assets), 'utf8')
  parts.push(code)
  for (const m of code.matchAll(STATIC_IMPORT)) visit(m[1])
}
visit('app.js')
writeFileSync(new URL('../first-load.js', assets), parts.join('\n'))
console.log(`first load: ${[...seen].join(', ')}`)
