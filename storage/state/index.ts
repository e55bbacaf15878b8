// storage/state: the replicated key/value state core. Hybrid logical clocks, the last-writer-wins
// merge, per-origin version tracking for anti-entropy, the durable state store on a KvStore, and the
// compact wire encodings. The runtime (gossip, streams, HTTP, watches) is built on this surface.
export * from './config.js';
export {
  compareHlc,
  hlcFromBytes,
  hlcFromString,
  hlcToBigInt,
  hlcToBytes,
  hlcToString,
  HLC_MAX_COUNTER,
  HLC_MAX_WALL,
  HybridClock,
  isHlc,
  type Hlc,
  type HybridClockOptions,
} from './hlc.js';
export {
  compareRecords,
  isTombstone,
  merge,
  mergeAll,
  sameRecord,
  type StateRecord,
} from './merge.js';
export { RangeSet, VersionVector, type Range } from './versions.js';
export { planDiff, type BatchLimits, type DiffPlan } from './diff.js';
export {
  decodeBatch,
  decodeCleared,
  decodeSummary,
  encodeBatch,
  encodeCleared,
  encodeSummary,
  isValidOrigin,
  messageType,
  MSG_BATCH,
  MSG_CLEARED,
  MSG_SUMMARY,
  SUMMARY_DIGEST_BYTES,
  summaryDigest,
  type ChangeBatch,
  type DecodeLimits,
} from './codec.js';
export {
  StateStore,
  type ApplyOptions,
  type ApplyResult,
  type ChangesOptions,
  type ListEntry,
  type StateChange,
  type StateEntry,
  type StateStats,
  type StateStoreOptions,
} from './state-store.js';
export type { GcResult } from './gc.js';
export { SyncReceiver, syncOneWay, syncPair, type OneWayResult, type SyncOptions } from './sync.js';
export {
  ClockDriftError,
  InvalidKeyError,
  StateDecodeError,
  ValueTooLargeError,
} from '../errors.js';
