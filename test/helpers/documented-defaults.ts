/**
 * Checks that every `@default` documented on an option in `sources` is the value of the constant
 * the option resolves to (`x: init.x ?? DEFAULT_X`). js-libp2p's documented defaults drifted
 * from its constants; this keeps ours honest.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

export function describeDocumentedDefaults (label: string, sources: URL | URL[], constants: Record<string, unknown>): void {
  // options may be documented in one file (the public types) and resolved in another
  const text = [sources].flat().map((s) => readFileSync(s, 'utf8')).join('\n')
  const documented = [...text.matchAll(/@default ([^*]+?) \*\/\s*\n\s*(\w+)\?:/g)].map((m) => ({ value: m[1].trim(), option: m[2] }))
  const resolved = new Map([...text.matchAll(/(\w+): init\.\1 \?\? (DEFAULT_\w+)/g)].map((m) => [m[1], m[2]]))

  describe(`${label} documented defaults`, () => {
    it('documents a default for every option resolved from a constant', () => {
      expect(resolved.size).toBeGreaterThan(0)
      for (const option of resolved.keys()) expect(documented.map((d) => d.option)).toContain(option)
    })

    it('matches each documented default with its constant', () => {
      for (const { option, value } of documented) {
        const constant = resolved.get(option)
        if (constant === undefined) continue
        expect(JSON.stringify(constants[constant]), `${option} (${constant})`).toBe(JSON.stringify(JSON.parse(value.replace(/'/g, '"'))))
      }
    })
  })
}
