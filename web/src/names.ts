/**
 * Display names and colours.
 *
 * Everyone has a generated name by default, derived from their peer ID, so every tab shows the
 * same name for a member before it has sent a thing, and a tab's name is kept exactly as long as
 * its key is (per tab, per browser profile, or per load: the identity). A person may pick their
 * own name instead: it is kept in localStorage (every tab of the profile uses it) and carried in
 * the demo's room messages (payload.ts). Names are not authenticated: the peer ID, on hover, is.
 */

const ADJECTIVES = [
  'Amber', 'Brave', 'Bright', 'Calm', 'Clever', 'Cosmic', 'Crisp', 'Curious', 'Daring', 'Dusky', 'Eager', 'Fancy',
  'Fluffy', 'Gentle', 'Golden', 'Happy', 'Hazel', 'Humble', 'Jolly', 'Keen', 'Kind', 'Lively', 'Lucky', 'Lunar',
  'Mellow', 'Merry', 'Misty', 'Nimble', 'Noble', 'Olive', 'Plucky', 'Polar', 'Proud', 'Quick', 'Quiet', 'Rapid',
  'Rosy', 'Rusty', 'Sandy', 'Sharp', 'Shiny', 'Silent', 'Silver', 'Sleepy', 'Snowy', 'Solar', 'Spry', 'Stormy',
  'Sunny', 'Swift', 'Tidy', 'Tiny', 'Velvet', 'Vivid', 'Wandering', 'Warm', 'Wise', 'Witty', 'Young', 'Zesty',
  'Coral', 'Indigo', 'Maple', 'Cedar'
]
const ANIMALS = [
  'Otter', 'Falcon', 'Badger', 'Heron', 'Lynx', 'Panda', 'Koala', 'Beaver', 'Bison', 'Crane', 'Dolphin', 'Eagle',
  'Ferret', 'Fox', 'Gecko', 'Hare', 'Ibis', 'Jaguar', 'Kestrel', 'Lemur', 'Marten', 'Narwhal', 'Ocelot', 'Owl',
  'Puffin', 'Quail', 'Raven', 'Robin', 'Salmon', 'Seal', 'Sparrow', 'Stork', 'Swan', 'Tapir', 'Tiger', 'Toucan',
  'Turtle', 'Walrus', 'Whale', 'Wolf', 'Wombat', 'Yak', 'Zebra', 'Alpaca', 'Bear', 'Cheetah', 'Coyote', 'Deer',
  'Finch', 'Gazelle', 'Hedgehog', 'Ibex', 'Jackal', 'Kiwi', 'Llama', 'Magpie', 'Moose', 'Newt', 'Orca', 'Pelican',
  'Penguin', 'Rabbit', 'Squirrel', 'Weasel'
]

/** Longest display name carried or shown, in characters. */
export const MAX_NAME_LENGTH = 40
const STORAGE_KEY = 'p2p-rooms-demo:name'

/** FNV-1a over the peer ID's characters: stable across tabs and browsers. */
function hash (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** `Amber Otter`: the name every tab shows for `peerId` until its owner picks one. */
export function generatedName (peerId: string): string {
  const h = hash(peerId)
  return `${ADJECTIVES[h % ADJECTIVES.length]} ${ANIMALS[(h >>> 8) % ANIMALS.length]}`
}

/**
 * A name as received or typed: control and formatting characters removed (they could reorder
 * or hide text), spaces collapsed, cut to `MAX_NAME_LENGTH`. `undefined` when nothing is left.
 */
export function cleanName (raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined
  const name = raw.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '').replace(/\s+/g, ' ').trim()
  if (name === '') return undefined
  return [...name].slice(0, MAX_NAME_LENGTH).join('')
}

/** The name this person picked, kept in localStorage; `undefined` for the generated one. */
export function storedName (): string | undefined {
  try {
    return cleanName(localStorage.getItem(STORAGE_KEY) ?? undefined)
  } catch {
    return undefined
  }
}

/** Keeps (or, with `undefined`, forgets) the picked name. */
export function storeName (name: string | undefined): void {
  try {
    if (name === undefined) localStorage.removeItem(STORAGE_KEY)
    else localStorage.setItem(STORAGE_KEY, name)
  } catch {
    // private mode without storage: the name lasts as long as the page
  }
}

/** Initials for an avatar: `Amber Otter` → `AO`. */
export function initials (name: string): string {
  const words = name.split(/\s+/).filter((w) => w !== '')
  const letters = words.length >= 2 ? [words[0], words[words.length - 1]].map((w) => [...w][0]) : [...(words[0] ?? '?')].slice(0, 2)
  return letters.join('').toUpperCase()
}

/**
 * Hues far enough apart to tell people apart at a glance, in light and dark themes; a member
 * keeps its hue for as long as it is in the room.
 */
const HUES = [210, 350, 140, 35, 275, 185, 15, 95, 320, 250, 60, 165]

/**
 * Hands out hues so that members present at the same time never share one while there are
 * enough: each starts from the hue its peer ID picks and takes the next free one.
 */
export class Palette {
  private readonly taken = new Map<string, number>()

  hueOf (peerId: string): number {
    const had = this.taken.get(peerId)
    if (had !== undefined) return HUES[had]
    const used = new Set(this.taken.values())
    const start = hash(peerId) % HUES.length
    let index = start
    for (let i = 0; i < HUES.length; i++) {
      const candidate = (start + i) % HUES.length
      if (!used.has(candidate)) { index = candidate; break }
    }
    this.taken.set(peerId, index)
    return HUES[index]
  }

  /** A member left: its hue is free for the next one. */
  release (peerId: string): void {
    this.taken.delete(peerId)
  }
}

/**
 * Who is who: picked names as members announce them, generated ones otherwise, and a hue per
 * member. Two members with the same name get the end of their peer ID after it.
 */
export class Directory {
  private readonly picked = new Map<string, string>()
  readonly palette = new Palette()
  private readonly listeners = new Set<(peerId: string) => void>()
  private present = new Set<string>()

  /** Records the name `peerId` announced; `true` when it changed. */
  setPicked (peerId: string, name: string | undefined): boolean {
    const before = this.picked.get(peerId)
    if (name === undefined || name === generatedName(peerId)) this.picked.delete(peerId)
    else this.picked.set(peerId, name)
    const changed = before !== this.picked.get(peerId)
    if (changed) for (const l of this.listeners) l(peerId)
    return changed
  }

  /** The members shown now, for telling equal names apart. */
  setPresent (peerIds: Iterable<string>): void {
    this.present = new Set(peerIds)
  }

  /** The name without disambiguation. */
  baseName (peerId: string): string {
    return this.picked.get(peerId) ?? generatedName(peerId)
  }

  /** The name to show: `Ada`, or `Ada (…xRFome)` when another member present is also `Ada`. */
  nameOf (peerId: string): string {
    const base = this.baseName(peerId)
    for (const other of this.present) {
      if (other !== peerId && this.baseName(other) === base) return `${base} (…${peerId.slice(-6)})`
    }
    return base
  }

  onChange (listener: (peerId: string) => void): void {
    this.listeners.add(listener)
  }
}
