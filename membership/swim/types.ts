// The data types of the SWIM core: members, updates, wire messages, effects and events.
// Messages are plain objects with a `type` discriminant; the codec (codec.ts) turns them into bytes
// and back. Treat every message and update as immutable once created: the simulator hands the same
// object to several cores.

import type { Coordinate } from '../coordinates/index.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

/** What a member says about itself; spread with its `alive` updates. Limits: see meta.ts. */
export interface MemberMeta {
  /** Member name, unique in the cluster (the agent's --name). */
  name: string;
  /** Site (point of presence). */
  site: string;
  /** Multiaddrs the runtime dials to reach the member. */
  addrs: string[];
  tags: Record<string, string>;
  /** Optional load figure (0..1e9), for score-based discovery. */
  load?: number;
}

/** A member as one core sees it. */
export interface Member {
  /** The libp2p peer id string. */
  id: string;
  meta: MemberMeta;
  incarnation: number;
  state: MemberState;
  /** `now` (ms, the runtime's clock) at the last change of `state`. */
  stateChangedAt: number;
}

/**
 * A piece of membership news, piggybacked on ping/ack/ping-req and sent by gossip.
 * - alive: `id` is alive at `incarnation` with `meta` (also how a new member becomes known);
 * - suspect: `from` suspects `id` at `incarnation`;
 * - dead: `from` declared `id` dead at `incarnation`;
 * - left: `id` left the cluster gracefully at `incarnation`.
 * Precedence at the same incarnation: left/dead > suspect > alive; a higher incarnation wins.
 */
export type Update =
  | { kind: 'alive'; id: string; incarnation: number; meta: MemberMeta }
  | { kind: 'suspect'; id: string; incarnation: number; from: string }
  | { kind: 'dead'; id: string; incarnation: number; from: string }
  | { kind: 'left'; id: string; incarnation: number };

/** One member in a push-pull state exchange. */
export interface PushPullEntry {
  id: string;
  incarnation: number;
  state: MemberState;
  meta: MemberMeta;
}

/** Direct probe. The receiver answers with an ack carrying the same `seq`. */
export interface PingMessage {
  type: 'ping';
  seq: number;
  /** The id the sender means to probe: a receiver with another id ignores the ping. */
  target: string;
  updates: Update[];
}

/**
 * Indirect probe request: "ping `target` for me and relay its ack with my `seq`". With `nack`, the
 * relay answers with a nack if the target does not ack within its probe timeout (Lifeguard).
 */
export interface PingReqMessage {
  type: 'ping-req';
  seq: number;
  target: string;
  /** The target's addresses, so a relay that does not know it can still dial it. */
  targetAddrs: string[];
  nack: boolean;
  updates: Update[];
}

/** Answer to a ping (or relayed answer to a ping-req). */
export interface AckMessage {
  type: 'ack';
  seq: number;
  /** The responder's network coordinate, if it has one (absent on relayed acks). */
  coordinate?: Coordinate;
  updates: Update[];
}

/** A relay got no ack from the target of a ping-req in time. */
export interface NackMessage {
  type: 'nack';
  seq: number;
}

/** Dissemination only. */
export interface GossipMessage {
  type: 'gossip';
  updates: Update[];
}

/** Full state exchange, request. `join` marks the first exchange of a joining member. */
export interface PushPullMessage {
  type: 'push-pull';
  seq: number;
  join: boolean;
  members: PushPullEntry[];
}

/** Full state exchange, reply (same `seq` as the request). */
export interface PushPullReplyMessage {
  type: 'push-pull-reply';
  seq: number;
  members: PushPullEntry[];
}

export type SwimMessage =
  | PingMessage
  | PingReqMessage
  | AckMessage
  | NackMessage
  | GossipMessage
  | PushPullMessage
  | PushPullReplyMessage;

export type SwimMessageType = SwimMessage['type'];

/**
 * Membership events (never about the local member itself):
 * - member:up      a member became alive: first heard of, or back from dead/left (rejoin);
 * - member:alive   a suspect member refuted the suspicion (suspect -> alive);
 * - member:suspect a member is suspected (alive -> suspect);
 * - member:down    a member was declared dead (failed);
 * - member:left    a member left gracefully;
 * - member:update  an alive member changed its metadata (same state);
 * - member:reap    a dead or left member was forgotten after reconnectTimeout/tombstoneTimeout.
 * Every event carries a snapshot of the member after the change (meta included: take the latest
 * meta from any event, not only from member:update) and the state before it ('none' if unknown).
 */
export type MembershipEventType =
  | 'member:up'
  | 'member:alive'
  | 'member:suspect'
  | 'member:down'
  | 'member:left'
  | 'member:update'
  | 'member:reap';

export interface MembershipEvent {
  type: MembershipEventType;
  member: Member;
  previous: MemberState | 'none';
}

/**
 * What the core asks the runtime to do.
 * - send: deliver `msg` to member `to`, unreliably (it may be lost or late; never retry). `addrs`,
 *   when present, are dial hints for a peer the runtime may not know (ping-req relays, reconnects).
 * - event: a membership event to publish.
 * - rtt: a direct ping to `id` was answered after `rttMs`; `coordinate` is the responder's (feed
 *   both to a CoordinateClient, then call setLocalCoordinate with its new local coordinate).
 */
export type Effect =
  | { type: 'send'; to: string; msg: SwimMessage; addrs?: string[] }
  | { type: 'event'; event: MembershipEvent }
  | { type: 'rtt'; id: string; rttMs: number; coordinate?: Coordinate };
