// Tunables of the replicated key/value state, each with its unit, default and reason. The state
// store and the codec take them as options; these are the defaults.

/**
 * Largest lead of a peer's HLC over the local physical clock that is accepted, in ms. Default
 * 60 s. A change stamped further ahead is refused and counted (ApplyResult.rejected), not applied:
 * accepting it would drag every local clock forward with it (an HLC never goes back), so one node
 * with a bad clock could make all later writes in the cluster look older than its own. Anti-entropy
 * offers the change again, and it is taken once local time has caught up. 60 s is far above NTP
 * error (ms) and below "the clock is plainly wrong".
 */
export const DEFAULT_MAX_DRIFT_MS = 60_000;

/**
 * How long a tombstone is kept at most, in ms since its HLC time. Default 7 days. A tombstone is
 * dropped earlier once every live member has it (the stable version vector). After the horizon it
 * goes even if some member never confirmed it, so a member cut off for longer than the horizon
 * must rejoin with an empty data directory, or a value it still holds for a deleted key may come
 * back (the Cassandra gc_grace_seconds rule). 7 days covers a site cut off over a long weekend with
 * margin, and keeps deleted keys from piling up for ever.
 */
export const DEFAULT_TOMBSTONE_HORIZON_MS = 7 * 24 * 3600 * 1000;

/** Largest value accepted, in bytes. Default 1 MiB (the limit; the HTTP API enforces it). */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/**
 * The largest value any node may be configured to accept, and what every node takes from a peer,
 * in bytes: 3 MiB, so that one record travels in a message (DEFAULT_MAX_MESSAGE_BYTES) with room.
 * Records from peers are checked against this, not the local limit: a node configured lower than
 * the writer refused the record, never held its version, and was sent it again at every
 * anti-entropy round; a value over the message size broke every session that carried it.
 */
export const MAX_VALUE_BYTES_LIMIT = 3 * 1024 * 1024;

/**
 * Largest key, in UTF-8 bytes. Default 4 KiB: keys travel in URL paths (HTTP servers commonly cap
 * a request line at 8 KiB) and are repeated in every record on the wire.
 */
export const DEFAULT_MAX_KEY_BYTES = 4096;

/** Largest node id (origin), in UTF-8 bytes. Default 256: a libp2p peer id string is ~52. */
export const MAX_ORIGIN_BYTES = 256;

/**
 * A change batch produced by changesSince() is closed once its records' keys and values reach this
 * many bytes, in bytes. Default 256 KiB: big enough that the receiver's one fsync per batch is
 * amortised over ~2,000 small records (10k-key catch-up = 5 batches), small enough to keep a
 * stream responsive. One record larger than this travels alone.
 */
export const DEFAULT_BATCH_MAX_BYTES = 256 * 1024;

/** A change batch holds at most this many records. Default 4096 (bounds per-batch work). */
export const DEFAULT_BATCH_MAX_RECORDS = 4096;

/**
 * Largest encoded message the decoders accept, in bytes. Default 4 MiB: one maximal batch
 * (DEFAULT_BATCH_MAX_BYTES) plus one maximal record (1 MiB value + key) fits with room.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Most records the decoder accepts in one change batch. Default 65,536 (16x the batch size). */
export const DEFAULT_MAX_MESSAGE_RECORDS = 65_536;

/**
 * Most ranges, over all origins, the decoder accepts in one summary or cleared-ranges list.
 * Default 1,000,000 (the decoder's memory bound; a healthy summary has a few per origin).
 */
export const DEFAULT_MAX_MESSAGE_RANGES = 1_000_000;

/** Tombstones deleted per storage batch by collectGarbage. Default 1024 (bounds one batch). */
export const GC_BATCH = 1024;

/** Records written per storage batch at most when local writes are grouped (group commit). */
export const WRITE_GROUP_MAX = 1024;

/**
 * How far above this node's own last version a peer's claim to have versions of this node's
 * origin is followed. Unit: versions. Default 2^20 (1,048,576). A claim above the last version
 * proves that this data directory was restored from an older copy (its later writes are out
 * there) or that someone made records in this node's name: this node's next writes take versions
 * above the claim, which the claimants lack and will fetch, instead of versions they believe they
 * have; the claimed records themselves it fetches and takes like any others (every other member
 * takes them too). Records and claims further ahead are ignored, so a claim cannot use up this
 * node's versions. One batch or summary moves the next version by at most this much (a session
 * may carry many batches, so a member lying in one can move it further: by 2^20 a batch).
 */
export const MAX_OWN_CLAIM_AHEAD = 1 << 20;

/**
 * Most ranges the cleared versions of this node's own origin that a batch brings may add to its
 * own version set. Unit: ranges. Default 16. A restored node's own versions come back as records
 * and, in the last batch, cleared versions that fill the holes between them (fewer ranges, not
 * more); cleared versions scattered over what it has are someone's claim, and marked as laid out
 * they made its own set too big for any summary a peer accepts. Past this they only raise the
 * version its next write takes (MAX_OWN_CLAIM_AHEAD).
 */
export const MAX_OWN_CLEARED_NEW_RANGES = 16;
