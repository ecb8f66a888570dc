/**
 * PeerJS's PeerServer (the `peer` package) in a process of its own, as the meeting bench's anchor:
 * `node test/setup/peer-server.mjs` listens on 127.0.0.1, port 0, and prints `{"port":N}` on one
 * line once it does. The bench's setup (test/setup/bench.ts) starts it and kills it at the end.
 *
 * Its own process, like our relay: so that the bench compares two servers that each have a
 * process, and so that `BENCH_SERVER_SCHED` reads the PeerServer's own scheduler counters rather
 * than the test runner's. It also lets the runner exit: the PeerServer's cleanup timers have no
 * way to be stopped (peer 1.0), and kept the runner alive 10 s past every bench.
 */
import { PeerServer } from 'peer'

PeerServer({ host: '127.0.0.1', port: 0, path: '/' }, (server) => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`)
})
