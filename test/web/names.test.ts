import { describe, expect, it } from 'vitest'
import { Directory, Palette, cleanName, generatedName, initials } from '../../web/src/names.js'

const ids = Array.from({ length: 12 }, (_, i) => `12D3KooWPeer${i}xx${i * 7919}`)

describe('demo names', () => {
  it('generates the same name for a peer ID in every tab, and different ones for different peers', () => {
    expect(generatedName(ids[0])).toBe(generatedName(ids[0]))
    expect(generatedName(ids[0])).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/)
    expect(new Set(ids.map(generatedName)).size).toBeGreaterThan(9)
  })

  it('tells two members with the same picked name apart by the end of their peer ID', () => {
    const dir = new Directory()
    dir.setPicked(ids[0], 'Ada')
    dir.setPicked(ids[1], 'Ada')
    dir.setPresent([ids[0], ids[1]])
    expect(dir.nameOf(ids[0])).toBe(`Ada (…${ids[0].slice(-6)})`)
    dir.setPresent([ids[0]])
    expect(dir.nameOf(ids[0])).toBe('Ada')
  })

  it('gives members present at once distinct hues while there are enough', () => {
    const palette = new Palette()
    expect(new Set(ids.map((id) => palette.hueOf(id))).size).toBe(ids.length)
    // one leaves, one arrives: the newcomer takes the free hue, and the 12 present stay distinct
    palette.release(ids[3])
    const present = [...ids.filter((_, i) => i !== 3), '12D3KooWNewcomer']
    expect(new Set(present.map((id) => palette.hueOf(id))).size).toBe(present.length)
  })

  it('cleans names and makes initials', () => {
    expect(cleanName('  Ada\u200b   Lovelace\n')).toBe('Ada Lovelace')
    expect(cleanName(42)).toBeUndefined()
    expect(initials('Amber Otter')).toBe('AO')
    expect(initials('ada')).toBe('AD')
  })
})
