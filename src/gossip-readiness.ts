/**
 * Whether a gossipsub publish on `topic` will reach `peer` right now.
 *
 * gossipsub marks a peer as subscribed as soon as its SUBSCRIBE arrives, but `publish` silently
 * skips peers whose *outbound* stream is not open yet (`sendRpc` returns false), so an app that
 * publishes on "peer subscribed" can reach nobody. gossipsub 17 has no event for "outbound stream
 * open", so we read its `streamsOutbound` map (gossipsub is pinned at 17.1.1 for this);
 * `test/node/rooms.test.ts` proves that a message
 * published right after `peer:join` arrives, and fails if this ever reads the wrong thing.
 */
import type { GossipSub } from '@libp2p/gossipsub'

interface GossipSubInternals {
  streamsOutbound?: Map<string, unknown>
}

export function canPublishTo (pubsub: GossipSub, topic: string, peer: string): boolean {
  if (!pubsub.getSubscribers(topic).some((p) => p.toString() === peer)) return false
  const outbound = (pubsub as unknown as GossipSubInternals).streamsOutbound
  return outbound === undefined ? true : outbound.has(peer)
}
