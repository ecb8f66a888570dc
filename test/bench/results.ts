/** Where every bench writes what it measured: `bench-results/<name>.json`, and its table as `<name>.md`. */
import { mkdirSync, writeFileSync } from 'node:fs'

export function writeResults (name: string, data: Record<string, unknown>, md?: string): void {
  mkdirSync('bench-results', { recursive: true })
  writeFileSync(`bench-results/${name}.json`, JSON.stringify({ date: new Date().toISOString(), ...data }, null, 2))
  if (md !== undefined) writeFileSync(`bench-results/${name}.md`, `${md}\n`)
}
