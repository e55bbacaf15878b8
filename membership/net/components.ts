// What a service shaped like a libp2p service takes from the agent: the node it speaks through
// and a logger. One definition for the catalog, the replicated KV and the image service.
import type { GossipSub } from '@libp2p/gossipsub';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { KadDHT } from '@libp2p/kad-dht';

/** Stream protocols on the libp2p node: what every protocol of ours needs of it. */
export interface StreamHandling {
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void | Promise<void>,
    opts?: {
      maxInboundStreams?: number;
      maxOutboundStreams?: number;
      runOnLimitedConnection?: boolean;
    },
  ): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  dialProtocol(
    peer: PeerId,
    protocols: string | string[],
    opts?: { signal?: AbortSignal },
  ): Promise<Stream>;
}

/** The part of the libp2p node a service uses; `Services` are the node services it needs. */
export interface ServiceNode<Services = { pubsub: GossipSub; dht: KadDHT }> extends StreamHandling {
  peerId: PeerId;
  services: Services;
}

export interface ServiceLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}
