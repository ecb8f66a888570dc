/**
 * gossipsub as rooms and relays run it: speaking `/meshsub/1.2.0` alone.
 *
 * gossipsub 17.1.1 proposes its whole version ladder (`/meshsub/1.2.0`, `1.1.0`, `1.0.0`, and
 * `/floodsub/1.0.0`) on every stream it opens. With several protocols multistream-select waits for
 * the listener's answer, a round trip; with one, our patched multistream-select
 * (patches/@libp2p+multistream-select+7.0.28.patch) sends it and goes on. gossipsub opens its
 * outbound streams one peer at a time (its inflight queue): on a relay that a room's tabs reach
 * together, each tab's stream waited for the round trips to those before it, and discovery waits
 * for the relay's stream to each tab. Every p2p-rooms peer runs this gossipsub, so 1.2.0 is what
 * every negotiation picked anyway. Measured with 6 tabs opened together (`npm run bench`; the
 * figures are in test/bench/HISTORY.md).
 *
 * gossipsub's `protocols` option is declared but never read in 17.1.1 (pinned exactly); its
 * public `protocols` field is what it registers, proposes and checks streams against, and it reads
 * it only from `start()` on. test/node/pubsub-streams.test.ts checks that the streams speak 1.2.0.
 */
import { gossipsub, multicodec } from '@libp2p/gossipsub'
import type { GossipSub, GossipSubComponents, GossipsubOpts } from '@libp2p/gossipsub'

/** `gossipsub(init)`, speaking gossipsub's own `multicodec` (`/meshsub/1.2.0`) and nothing else. */
export function roomsGossipsub (init: Partial<GossipsubOpts> = {}): (components: GossipSubComponents) => GossipSub {
  const create = gossipsub({ ...init, fallbackToFloodsub: false })
  return (components) => {
    const pubsub = create(components)
    pubsub.protocols = [multicodec]
    return pubsub
  }
}
