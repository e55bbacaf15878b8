// A stand-in libp2p node for unit tests of a service (catalog, images): gossip is dispatched by
// hand on `pubsub` (an EventTarget), dials go to `dialProtocol`, nothing touches the network.
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';

export type StandInPubsub = EventTarget & Record<string, unknown>;

/** The node's gossipsub: messages it publishes are kept in `published`. */
export function standInPubsub(published: Uint8Array[] = []): StandInPubsub {
  const pubsub = new EventTarget() as StandInPubsub;
  Object.assign(pubsub, {
    subscribe() {},
    unsubscribe() {},
    getSubscribers: () => [],
    publish: async (_topic: string, data: Uint8Array) => void published.push(data),
  });
  return pubsub;
}

/** The parts of a node a service uses; dials fail unless `dialProtocol` is given. */
export function standInNode(
  self: PrivateKey,
  pubsub: StandInPubsub,
  dialProtocol: (peer: PeerId, protocol: string) => Promise<Stream> = async () => {
    throw new Error('no network in this test');
  },
) {
  return {
    peerId: peerIdFromPrivateKey(self),
    services: { pubsub, dht: {} },
    handle: async () => {},
    unhandle: async () => {},
    dialProtocol,
  };
}
