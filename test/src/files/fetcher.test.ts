/**
 * The receiving side of files (src/files/fetcher.ts) against holders served by the real holder
 * code (src/files/server.ts) over mock libp2p stream pairs (`@libp2p/utils` `streamPair`), with
 * chunks kept in memory: several holders at once, bad chunks, a holder that leaves or breaks its
 * stream, a manifest that does not match, kept chunks that were damaged, no holder left.
 */
import { streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { MIN_FILE_CHUNK_BYTES } from '../../../src/constants.js'
import { Fetcher } from '../../../src/files/fetcher.js'
import { describeBlob } from '../../../src/files/manifest.js'
import { serveChunks, serveManifest } from '../../../src/files/server.js'
import { MemoryStore } from '../../../src/files/store.js'
import { readFrames } from '../../../src/files/stream-io.js'
import { OP_GET, OP_MANIFEST, decodeRequest, decodeWant, toHex } from '../../../src/files/wire.js'
import type { FetchContext } from '../../../src/files/fetcher.js'
import type { Manifest } from '../../../src/files/manifest.js'
import type { Servable } from '../../../src/files/server.js'
import type { Stream } from '@libp2p/interface'

const CHUNK = MIN_FILE_CHUNK_BYTES
const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as any

function randomFile (chunks: number, extra = 123): Uint8Array {
  const out = new Uint8Array(chunks * CHUNK + extra)
  for (let i = 0; i < out.byteLength; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(out.byteLength, i + 65536)))
  return out
}

interface Holder {
  servable: Servable
  /** Aborts its streams after serving this many chunks, once. */
  breakAfter?: number
  /** Serves this manifest instead of the file's own. */
  manifest?: Manifest
  streams: Stream[]
  served: number
  /** Per get stream, every chunk index asked for on it. */
  asked: number[][]
}

/** Holders reachable through mock stream pairs, answering as a node's file service would. */
function network (holders: Map<string, Holder>, present: Set<string>): FetchContext['open'] {
  return async (peer) => {
    const h = holders.get(peer)
    if (h === undefined || !present.has(peer)) throw new Error(`no connection to ${peer}`)
    const [out, inbound] = await streamPair({ delay: 0 })
    h.streams.push(inbound, out)
    void (async () => {
      const frames = readFrames(inbound, 4096)
      const first = await frames.next()
      const req = first.done === true ? undefined : decodeRequest(first.value)
      if (req?.op === OP_MANIFEST) await serveManifest(inbound, { ...h.servable, manifest: h.manifest ?? h.servable.manifest })
      if (req?.op === OP_GET) {
        const onSent = (): void => {
          h.served++
          if (h.breakAfter !== undefined && h.served >= h.breakAfter) {
            h.breakAfter = undefined
            inbound.abort(new Error('the holder\'s connection broke'))
          }
        }
        const asked: number[] = []
        h.asked.push(asked)
        const recorded = (async function * () {
          for await (const f of frames) {
            asked.push(...(decodeWant(f) ?? []))
            yield f
          }
        })()
        await serveChunks(inbound, recorded, { ...h.servable, onSent }, new AbortController().signal)
      }
    })().catch(() => {})
    return out
  }
}

async function setup (bytes: Uint8Array, peers: string[], opts: { store?: MemoryStore } = {}): Promise<{ fetcher: Fetcher, holders: Map<string, Holder>, present: Set<string>, manifest: Manifest, store: MemoryStore }> {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>])
  const manifest = await describeBlob(blob, CHUNK)
  const holders = new Map(peers.map((p) => [p, { servable: { blob, manifest }, streams: [], served: 0, asked: [] } as Holder]))
  const present = new Set(peers)
  const store = opts.store ?? new MemoryStore()
  const ctx: FetchContext = { label: 'room', store, log, open: network(holders, present), holders: () => [...present], isDirect: (p) => present.has(p) }
  const fetcher = new Fetcher(ctx, { size: bytes.byteLength, chunkSize: CHUNK, sha256: manifest.sha256, listSha256: manifest.listSha256, name: 'f', type: '' }, { onProgress: () => {}, onState: () => {} })
  return { fetcher, holders, present, manifest, store }
}

const bytesOf = async (file: File): Promise<Uint8Array> => new Uint8Array(await file.arrayBuffer())
/** Byte equality without a deep-equality diff of megabytes. */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

describe('fetching a file', () => {
  it('fetches from several holders at once and delivers the verified bytes', async () => {
    // more chunks than three windows: every holder gets some
    const bytes = randomFile(120)
    const { fetcher } = await setup(bytes, ['a', 'b', 'c'])
    expect(same(await bytesOf(await fetcher.run()), bytes)).toBe(true)
    const from = fetcher.bySource
    expect(Object.keys(from).sort()).toEqual(['a', 'b', 'c'])
    expect(from.a + from.b + from.c).toBe(bytes.byteLength)
  })

  it('asks again for a chunk that fails verification, from whichever holder is free', async () => {
    const bytes = randomFile(20)
    const { fetcher, holders } = await setup(bytes, ['a'])
    const bad = new Set([3, 7])
    holders.get('a')!.servable.corrupt = (i) => bad.delete(i)
    expect(same(await bytesOf(await fetcher.run()), bytes)).toBe(true)
    expect(fetcher.badChunks).toBe(2)
  })

  it('finishes from the other holders when one leaves, and when one\'s stream breaks', async () => {
    const bytes = randomFile(120)
    const { fetcher, holders, present } = await setup(bytes, ['a', 'b', 'c'])
    holders.get('b')!.breakAfter = 3
    holders.get('c')!.servable.onSent = undefined
    const running = fetcher.run()
    // c leaves once it served a few chunks
    const leave = setInterval(() => {
      if (holders.get('c')!.served < 4) return
      clearInterval(leave)
      present.delete('c')
      for (const s of holders.get('c')!.streams) s.abort(new Error('c left'))
      fetcher.sourcesChanged()
    }, 1)
    expect(same(await bytesOf(await running), bytes)).toBe(true)
    clearInterval(leave)
    expect(fetcher.bySource.a).toBeGreaterThan(0)
  })

  it('asks a holder whose stream broke for each missing chunk once, on its next stream', async () => {
    const bytes = randomFile(80)
    const { fetcher, holders } = await setup(bytes, ['a'])
    holders.get('a')!.breakAfter = 10
    expect(same(await bytesOf(await fetcher.run()), bytes)).toBe(true)
    const streams = holders.get('a')!.asked
    expect(streams.length).toBeGreaterThanOrEqual(2)
    for (const asked of streams) expect(new Set(asked).size).toBe(asked.length)
    // after the break, only what had not been verified was asked for
    const before = new Set(streams[0])
    const after = streams.slice(1).flat()
    expect(after.length).toBeLessThanOrEqual(fetcher.count - (streams[0].length - before.size))
    expect(new Set(after).size).toBe(after.length)
  })

  it('drops a holder whose manifest does not match the offer, and uses another', async () => {
    const bytes = randomFile(10)
    const { fetcher, holders } = await setup(bytes, ['liar', 'honest'])
    const other = await describeBlob(new Blob([randomFile(10) as Uint8Array<ArrayBuffer>]), CHUNK)
    holders.get('liar')!.manifest = other
    expect(same(await bytesOf(await fetcher.run()), bytes)).toBe(true)
    expect(fetcher.bySource.liar).toBeUndefined()
  })

  it('resumes from kept chunks, fetching again only the missing and the damaged ones', async () => {
    const bytes = randomFile(12, 0)
    const store = new MemoryStore()
    const first = await setup(bytes, ['a'], { store })
    const key = `${toHex(first.manifest.sha256)}.${CHUNK}`
    const kept = await store.open(key, bytes.byteLength, CHUNK, 12)
    for (const i of [0, 1, 2, 3, 4]) await kept.write(i, bytes.subarray(i * CHUNK, (i + 1) * CHUNK))
    // chunk 2 was damaged in storage
    await kept.write(2, new Uint8Array(CHUNK))
    await kept.close()

    const { fetcher } = await setup(bytes, ['a'], { store })
    expect(same(await bytesOf(await fetcher.run()), bytes)).toBe(true)
    expect(fetcher.keptBytes).toBe(5 * CHUNK)
    // 7 missing and 1 damaged chunk fetched, nothing else
    expect(fetcher.bySource.a).toBe(8 * CHUNK)
  })

  it('fails with FileUnavailableError once no holder is left, keeping what arrived', async () => {
    const bytes = randomFile(30)
    const { fetcher, holders, present, store } = await setup(bytes, ['a'])
    holders.get('a')!.breakAfter = 5
    const running = fetcher.run()
    const gone = setInterval(() => {
      if (holders.get('a')!.served < 5) return
      clearInterval(gone)
      present.delete('a')
      fetcher.sourcesChanged()
    }, 1)
    await expect(running).rejects.toMatchObject({ name: 'FileUnavailableError' })
    const kept = await store.open(fetcher.key, bytes.byteLength, CHUNK, fetcher.count)
    expect(kept.kept.reduce((n, k) => n + k, 0)).toBeGreaterThan(0)
  })

  it('fails with FileIntegrityError when the chunks match a manifest but not the file\'s SHA-256, and removes them', async () => {
    const bytes = randomFile(4)
    const { fetcher } = await setup(bytes, ['a'])
    // the offer names another whole-file hash than its chunks add up to
    ;(fetcher as any).target.sha256 = new Uint8Array(32)
    await expect(fetcher.run()).rejects.toMatchObject({ name: 'FileIntegrityError' })
  })
})
