// Broadcasts over gossipsub that nobody forwards when the publisher reaches everyone itself.
//
// Agents flood-publish: a message goes from its publisher straight to every connected subscriber.
// Gossipsub then has every receiver forward it to its mesh neighbours, which already have it
// whenever the publisher is connected to every member (as it is in a cluster within the
// connection limit, once SWIM has probed everyone). Those forwards were three of every four
// copies of a catalog change: in the N=50 discovery bench, ~150 of ~200 gossip messages per
// registration. Without them a registration sent fewer than half the TCP segments (median 319
// against 730) and used less CPU (docs/benchmarks.md, fourteenth session).
//
// So each channel has two topics. TOPIC is forwarded by the mesh as before; TOPIC/direct is never
// forwarded (agent/node.ts runs gossipsub with asyncValidation and `forwardingPolicy` reports
// every message on a direct topic as "ignore": delivered here, not passed on, not penalised). A
// publisher uses the direct topic only when every member it believes alive is subscribed to it,
// i.e. connected to it and running an agent that knows the direct topic; otherwise (a cluster past
// the connection limit, a member just joined, an older agent) it publishes on TOPIC and the mesh
// carries the message on. What a direct publication misses (a connection that drops mid-send) is
// repaired by the channel's anti-entropy, as a lost forward always was.
import type { GossipSub } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';

/** Appended to a channel's topic for its never-forwarded twin. */
export const DIRECT_TOPIC_SUFFIX = '/direct';

/** Whether gossipsub should forward a message of `topic` to its mesh (see the header). */
export function forwardingPolicy(topic: string): 'accept' | 'ignore' {
  return topic.endsWith(DIRECT_TOPIC_SUFFIX) ? 'ignore' : 'accept';
}

/** What of gossipsub the forwarding policy needs (the class has it; its exported interface not). */
interface ValidationReporter {
  addEventListener(
    type: 'gossipsub:message',
    l: (e: CustomEvent<GossipMessageEvent>) => void,
  ): void;
  reportMessageValidationResult(
    msgId: string,
    propagationSource: string,
    acceptance: ReturnType<typeof forwardingPolicy>,
  ): void;
}

interface GossipMessageEvent {
  propagationSource: PeerId;
  msgId: string;
  msg: { topic: string };
}

/**
 * Reports every message gossipsub receives at once, by `forwardingPolicy`. The node must run
 * gossipsub with `asyncValidation: true`; without a report a message is never forwarded, so a
 * gossipsub without the report method is refused here rather than left silently not forwarding.
 */
export function applyForwardingPolicy(gossipsub: GossipSub): void {
  const pubsub = gossipsub as unknown as ValidationReporter;
  if (typeof (pubsub as Partial<ValidationReporter>).reportMessageValidationResult !== 'function')
    throw new Error(
      'gossipsub has no reportMessageValidationResult: cannot apply forwarding policy',
    );
  pubsub.addEventListener('gossipsub:message', (evt) => {
    const { msgId, propagationSource, msg } = evt.detail;
    pubsub.reportMessageValidationResult(
      msgId,
      propagationSource.toString(),
      forwardingPolicy(msg.topic),
    );
  });
}

export interface BroadcastMessage {
  data: Uint8Array;
  /** The publisher, when the message is signed (gossipsub has verified the signature). */
  from?: string;
}

export interface BroadcastComponents {
  pubsub: Pick<
    GossipSub,
    | 'subscribe'
    | 'unsubscribe'
    | 'publish'
    | 'getSubscribers'
    | 'addEventListener'
    | 'removeEventListener'
  >;
  /** Who a broadcast should reach: every member believed alive, other than us. */
  membership: {
    readonly selfId: string;
    members(): ReadonlyArray<{ id: string; state: string }>;
  };
}

/** One broadcast channel: a topic and its direct twin, published to and listened on as one. */
export class Broadcast {
  readonly topic: string;
  readonly directTopic: string;
  /** Publications per topic, for tests and debugging. */
  readonly published = { direct: 0, mesh: 0 };
  readonly #c: BroadcastComponents;
  readonly #onMessage: (m: BroadcastMessage) => void;
  #started = false;

  constructor(
    components: BroadcastComponents,
    topic: string,
    onMessage: (m: BroadcastMessage) => void,
  ) {
    this.#c = components;
    this.topic = topic;
    this.directTopic = topic + DIRECT_TOPIC_SUFFIX;
    this.#onMessage = onMessage;
  }

  readonly #listener = (evt: Event) => {
    const m = (
      evt as CustomEvent<{ topic: string; data: Uint8Array; type?: string; from?: PeerId }>
    ).detail;
    if (m.topic !== this.topic && m.topic !== this.directTopic) return;
    this.#onMessage({
      data: m.data,
      ...(m.type === 'signed' && m.from ? { from: m.from.toString() } : {}),
    });
  };

  start(): void {
    if (this.#started) return;
    this.#started = true;
    const { pubsub } = this.#c;
    pubsub.subscribe(this.topic);
    pubsub.subscribe(this.directTopic);
    pubsub.addEventListener('message', this.#listener);
  }

  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    const { pubsub } = this.#c;
    pubsub.removeEventListener('message', this.#listener);
    for (const t of [this.topic, this.directTopic]) {
      try {
        pubsub.unsubscribe(t);
      } catch {
        // gossipsub already stopped
      }
    }
  }

  /** Publishes `data` on the direct topic if that reaches every peer, else on the mesh topic. */
  async publish(data: Uint8Array): Promise<void> {
    const direct = this.#reachesAll();
    this.published[direct ? 'direct' : 'mesh']++;
    await this.#c.pubsub.publish(direct ? this.directTopic : this.topic, data);
  }

  /** Whether every alive member is subscribed to the direct topic (so flooding it reaches each). */
  #reachesAll(): boolean {
    const subscribed = new Set(this.#c.pubsub.getSubscribers(this.directTopic).map(String));
    const membership = this.#c.membership; // a class instance: members() needs its `this`
    for (const m of membership.members())
      if (m.state === 'alive' && m.id !== membership.selfId && !subscribed.has(m.id)) return false;
    return true;
  }
}
