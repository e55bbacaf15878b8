// The one libp2p node of an agent: TCP, Noise, yamux, a private network keyed by the cluster key
// (private-network.ts), identify, ping, gossipsub for broadcasts and kad-dht under our own protocol prefix. All
// agent-to-agent traffic goes through it.
import { createHash } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { identify, type Identify } from '@libp2p/identify';
import type { PrivateKey } from '@libp2p/interface';
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import { applyForwardingPolicy } from '../membership/index.js';
import { pendingPerHostGate } from './inbound-gate.js';
import { toMultiaddr } from './peer-addr.js';
import { clusterKeyProtector } from './private-network.js';

/** Protocol prefix of everything edgeswarm speaks, so we never mix with the public IPFS DHT. */
export const PROTOCOL_PREFIX = '/edgeswarm';
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`;
/**
 * Kademlia's k: peers per routing-table bucket, peers a query converges on, and peers that hold
 * each provider record. The public DHT's 20 is sized for peers that come and go unannounced;
 * every agent here is a known member, and SWIM says when one dies. With 20, one provider
 * announcement walked ~20 peers (each answering with 20 peers that the asker merged into its
 * peer store) and sent 20 ADD_PROVIDERs. Measured with `npm run bench -- discovery --n 25` (25
 * agents on 2 cores, registrations streaming in), registration visible on every agent p50/p99:
 * k 20: 627-846 / 1,522-1,748 ms; k 8: 174-330 / 564-716 ms. At N=50 (`npm run bench --
 * discovery`): k 8: 748-1,498 / 2,082-3,350 ms in 3 runs; with announcements off 411 / 1,563;
 * k 4: 241-590 / 656-2,324 ms in 6 runs. A provider record lives on the 4 members closest to
 * its key and survives the loss of 3 of them before it is provided again; the catalog itself is
 * on every agent, so the DHT is only asked for names an agent has not seen.
 */
export const DHT_K = 4;
/** Gossipsub mesh degree (see the gossipsub options in createNode). */
export const GOSSIP_D = 3;

/**
 * Limits on inbound connections before they have shown the cluster key. Without the key nothing
 * completes a connection, but a TCP connection that sends nothing holds a pending slot until the
 * upgrade times out: 1,050 of them from one host (10 s upgrade timeout, 1,000 slots, 10,000 a
 * second per host allowed) made 22 of 25 members' dials fail. Mitigated, not prevented: many
 * hosts together can still fill the slots (docs/security.md).
 */
export const INBOUND_LIMITS = {
  /**
   * Inbound connections accepted per remote host per second (libp2p default 5). Every agent of a
   * test, a benchmark (50 on loopback) or a site behind one NAT address may share one address,
   * and all may dial one agent in the same second when they start: 4 times that.
   */
  inboundConnectionThreshold: 200,
  /**
   * Inbound connections in their handshake at once, from all hosts (libp2p default 10); one host
   * may hold at most MAX_PENDING_PER_HOST of them (inbound-gate.ts).
   */
  maxIncomingPendingConnections: 1000,
  /**
   * Time an inbound connection has to finish the cluster-key exchange, Noise and yamux (ms;
   * libp2p default 10 s). A handshake takes a few ms, and under load (2 cores, links shaped to
   * 100 Mbit/s in the lab) well under a second; 5 s keeps a wide margin and halves how long a
   * silent connection holds its slot.
   */
  inboundUpgradeTimeout: 5_000,
} as const;

/**
 * Connections the kernel may hold completed but not yet accepted by the agent (listen backlog;
 * Node's default 511, capped by net.core.somaxconn, 4096 on current kernels). Past it the kernel
 * drops the client's final ACK and the connection waits for a SYN-ACK retransmission (1 s, 3 s,
 * 7 s...): a burst of 1,050 connections from one host, with the agent short of CPU, overflowed
 * 511 about 540 times per burst and left connections unanswered for over 4 s. Refusing them is
 * the gates' job (INBOUND_LIMITS, inbound-gate.ts), which needs them accepted first.
 */
export const TCP_BACKLOG = 4096;

export interface NodeServices {
  identify: Identify;
  ping: Ping;
  pubsub: GossipSub;
  dht: KadDHT;
  [key: string]: unknown;
}

export type EdgeNode = Libp2p<NodeServices>;

export interface NodeOptions {
  privateKey: PrivateKey;
  /** The cluster key's 32 bytes (identity.ts parses the key file). */
  psk: Uint8Array;
  listen: string[];
  /** Maximum open connections before the connection manager prunes (default 1000). */
  maxConnections?: number;
  /** Dial timeout in ms (default 5000): a peer that never answers hangs until this. */
  dialTimeout?: number;
}

export async function createNode(opts: NodeOptions): Promise<EdgeNode> {
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    start: false,
    addresses: { listen: opts.listen.map((a) => toMultiaddr(a).toString()) },
    transports: [tcp({ backlog: TCP_BACKLOG })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: clusterKeyProtector(opts.psk),
    connectionManager: {
      maxConnections: opts.maxConnections ?? 1000,
      dialTimeout: opts.dialTimeout ?? 5000,
      ...INBOUND_LIMITS,
      maxParallelDials: 200,
    },
    // at most MAX_PENDING_PER_HOST connections of one address in their handshake
    connectionGater: pendingPerHostGate(),
    // Liveness comes from our own SWIM probes; libp2p's own monitor would only add noise.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify({ protocolPrefix: PROTOCOL_PREFIX.slice(1) }),
      ping: ping({ protocolPrefix: PROTOCOL_PREFIX.slice(1) }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // members send catalog and state broadcasts; gossipsub's scoring is tuned for the public
        // internet and would prune quiet cluster members, so keep its defaults but flood-publish
        floodPublish: true,
        // Every message is signed by its publisher and checked on receipt (gossipsub's default,
        // stated because the catalog and images gossip trust a message's `from`: see
        // decodeNodeCatalog in membership/catalog/codec.ts).
        globalSignaturePolicy: 'StrictSign',
        // Each received message is forwarded to the mesh only once reported, which
        // applyForwardingPolicy (membership/net/broadcast.ts) does at once: never for a direct
        // topic, whose publisher reached every member itself.
        asyncValidation: true,
        // IDONTWANT (gossipsub 1.2) goes to every mesh neighbour for each message of at least this
        // size (default 512 bytes), asking it not to forward a copy. On a direct topic nobody
        // forwards; on a forwarded one, with flood publishing, it mostly arrives after the copy it
        // was meant to stop. Kept for large messages only, where a copy costs more than a message.
        // (Reasoned, not measured alone: the bench's catalogs are under 512 bytes either way.)
        idontwantMinDataSize: 16 * 1024,
        // Mesh degree 3, kept between 2 and 6 (defaults 6, 4 and 12): with flood publishing every
        // member gets a message straight from its publisher, the mesh is the second path and
        // anti-entropy the third. Each mesh neighbour forwards one more copy of every message to
        // every member: measured with `npm run bench -- discovery --n 25`, registration visible
        // on every agent p50/p99 180-212 / 512-559 ms at 6, 134-145 / 298-362 ms at 3.
        D: GOSSIP_D,
        Dlo: 2,
        Dhi: 6,
        Dscore: 2,
        Dout: 1,
        // No IHAVE gossip (gossipsub's lazy repair). With flood publishing every subscriber gets
        // a message from its publisher and again from each mesh neighbour, so an IHAVE almost
        // never names a message its receiver lacks; yet every agent sent one to a quarter of
        // its non-mesh peers (at least Dlazy) at each of the 3 heartbeats after any message.
        // 30 agents, 40 registrations a second apart, TCP segments per registration on the
        // whole host (/proc/net/snmp, idle rate taken out): 756 and 795 with them, 347 and 186
        // without. `npm run bench -- discovery --only b` (N=50), one run with them and four
        // without, the same day: 2,485 against 805-866 segments (two runs), p50/p99 visible
        // everywhere 663/2,832 against 191-324/1,075-1,648 ms. What both paths miss, anti-entropy repairs: the catalog, KV
        // and images run their own.
        Dlazy: 0,
        gossipFactor: 0,
        // Gossipsub penalises more than 10 peers on one IP address (Sybil defence on the public
        // internet): with the default weight, 25 agents on one host, or a site of more than 10
        // agents behind one NAT address, graylisted each other and KV writes fell back to
        // anti-entropy (seconds instead of ms). pnet already keeps strangers out.
        scoreParams: { IPColocationFactorWeight: 0 },
        // A message reaches each member once per mesh neighbour; without a fast id every copy had
        // its ed25519 signature checked before being found a duplicate (a few % of an agent's CPU
        // while images replicate). The fast id hashes everything the signature covers, so a
        // forged copy never shadows the real message: it fails validation and is not cached.
        fastMsgIdFn: (msg) => {
          const h = createHash('sha256');
          for (const part of [msg.from, msg.seqno, msg.data]) if (part) h.update(part);
          return h.update(msg.topic).digest('base64');
        },
      }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        peerInfoMapper: passthroughMapper,
        clientMode: false,
        allowQueryWithZeroPeers: true,
        // Queries walk one path, three peers at a time (the defaults are 10 disjoint paths of 10,
        // S/Kademlia's defence against Sybil peers on the public DHT; behind the cluster key every
        // peer is a member). A provider announcement on 25 agents, at k 20: ~450 -> ~350 CPU-ms.
        alpha: 3,
        disjointPaths: 1,
        kBucketSize: DHT_K,
      }),
    },
  });
  applyForwardingPolicy(node.services.pubsub);
  return node as unknown as EdgeNode;
}
