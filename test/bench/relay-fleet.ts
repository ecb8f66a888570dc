/**
 * The relay benchmark's simulated peers: several child processes running relay-peers.mjs, each
 * holding its share of libp2p nodes with a reservation on the relay.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

export type PeerProfile = 'room' | 'bare'

export interface AttachResult {
  /** ms from dial start to the reservation, one per peer that got one. */
  samples: number[]
  failures: string[]
  /** Resident memory of all peer processes, in bytes. */
  clientRssBytes: number
}

export interface FleetInit {
  relayAddr: string
  profile: PeerProfile
  workers: number
  /** Reservations in flight per worker. */
  concurrency: number
  /** How often each peer pings the relay, in ms; 0: never. */
  pingInterval: number
  /** gossipsub heartbeat of each `room` peer, in ms. */
  heartbeatInterval: number
}

export interface Fleet {
  readonly size: number
  /** Adds `count` peers, spread evenly over the workers; after `signal` aborts, starts no more. */
  attach(count: number, signal?: AbortSignal): Promise<AttachResult>
  /** Stops every node and worker; workers that do not exit in time are killed. */
  stop(): Promise<void>
}

const WORKER = fileURLToPath(new URL('./relay-peers.mjs', import.meta.url))
const STOP_TIMEOUT_MS = 60_000

interface WorkerReply {
  type: string
  samples?: number[]
  failures?: string[]
  memory?: { rss: number }
}

/** The next message of `type` from `child`, rejecting if it exits first. */
async function reply (child: ChildProcess, type: string): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: WorkerReply): void => {
      if (msg.type !== type) return
      cleanup()
      resolve(msg)
    }
    const onExit = (code: number | null, signal: string | null): void => { cleanup(); reject(new Error(`peer worker exited (${code ?? signal}) while we waited for '${type}'`)) }
    function cleanup (): void { child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

export async function startFleet (init: FleetInit): Promise<Fleet> {
  const children = Array.from({ length: init.workers }, () => fork(WORKER, [init.relayAddr, init.profile, String(init.pingInterval), String(init.heartbeatInterval)], {
    // Node 20's global WebSocket, which @libp2p/websockets dials with, is behind a flag
    execArgv: ['--experimental-websocket'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  }))
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      const timer = setTimeout(() => { child.kill('SIGKILL') }, STOP_TIMEOUT_MS)
      // a worker whose IPC channel is already gone cannot be asked: it is killed
      child.send({ type: 'stop' }, (err) => { if (err !== null) child.kill('SIGKILL') })
      await exited
      clearTimeout(timer)
    }))
  }
  try {
    await Promise.all(children.map(async (child) => reply(child, 'ready')))
  } catch (err) {
    await stop()
    throw err
  }
  let size = 0
  return {
    get size () { return size },
    async attach (count, signal) {
      const abort = (): void => { for (const child of children) child.send({ type: 'abort' }, () => {}) }
      signal?.addEventListener('abort', abort, { once: true })
      const replies = await Promise.all(children.map(async (child, i) => {
        // the first `count % workers` workers take one peer more
        const share = Math.floor(count / children.length) + (i < count % children.length ? 1 : 0)
        const answer = reply(child, 'attached')
        // a failed send shows as the worker's exit, which `reply` reports
        child.send({ type: 'attach', count: share, concurrency: init.concurrency }, () => {})
        return answer
      })).finally(() => { signal?.removeEventListener('abort', abort) })
      const samples = replies.flatMap((r) => r.samples ?? [])
      size += samples.length
      return {
        samples,
        failures: replies.flatMap((r) => r.failures ?? []),
        clientRssBytes: replies.reduce((sum, r) => sum + (r.memory?.rss ?? 0), 0)
      }
    },
    stop
  }
}
