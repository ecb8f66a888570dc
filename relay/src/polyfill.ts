/**
 * `Promise.withResolvers` (ES2024, Node 22+) is called by several libp2p 3 dependencies.
 * Node 20 lacks it: every Node entry point imports this module before anything from libp2p.
 */
if (typeof (Promise as any).withResolvers !== 'function') {
  (Promise as any).withResolvers = function withResolvers<T> () {
    let resolve!: (value: T | PromiseLike<T>) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
    return { promise, resolve, reject }
  }
}

export {}
