// Public surface of the SWIM + Lifeguard membership core. See core.ts for how a runtime drives it.
export { SwimCore, LEAVE_DIRECT_MAX } from './core.js';
export { type SwimInit, type SwimStats, MAX_INCARNATION, MAX_INCARNATION_JUMP } from './base.js';
export {
  type SwimConfig,
  type SwimConfigOverrides,
  type SwimPresetName,
  PUSH_PULL_SCALE_THRESHOLD,
  SWIM_PRESETS,
  pushPullIntervalFor,
  resolveSwimConfig,
  retransmitLimit,
  suspicionConfirmations,
  suspicionMaxTimeout,
  suspicionMinTimeout,
  swimConfigOverridesSchema,
} from './config.js';
export {
  MAX_PACKET_BYTES,
  MAX_PUSH_PULL_BYTES,
  MAX_PUSH_PULL_MEMBERS,
  MAX_UPDATES_PER_MESSAGE,
  WIRE_VERSION,
  decodeMessage,
  encodeMessage,
  maxBytesFor,
  tryDecodeMessage,
} from './codec.js';
export {
  MAX_ADDRS,
  MAX_ADDR_LENGTH,
  MAX_ID_LENGTH,
  MAX_META_BYTES,
  MAX_NAME_LENGTH,
  MAX_TAGS,
  MAX_TAG_KEY_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  metaBytes,
  metaEquals,
  metaProblem,
} from './meta.js';
export { IdInterner } from './interner.js';
export { suspicionTimeout } from './suspicion.js';
export {
  type AckMessage,
  type Effect,
  type GossipMessage,
  type Member,
  type MemberMeta,
  type MemberState,
  type MembershipEvent,
  type MembershipEventType,
  type NackMessage,
  type PingMessage,
  type PingReqMessage,
  type PushPullEntry,
  type PushPullMessage,
  type PushPullReplyMessage,
  type SwimMessage,
  type SwimMessageType,
  type Update,
  MEMBER_STATES,
} from './types.js';
