// Options, tunables and result types of the chunk store (store.ts).
import { MAX_MAX_SIZE } from './fastcdc.js';

/** Largest chunk the store accepts by default. Unit: bytes. Default 16 MiB, the chunker's limit. */
export const MAX_CHUNK_BYTES = MAX_MAX_SIZE;
/**
 * Pack size: the active pack is rolled over when a record would take it past this. Unit: bytes.
 * Default 256 MiB: few files (4 per GiB), and compaction rewrites at most this much per pack.
 * Offsets are 32-bit, so packBytes + maxChunkBytes must stay under 4 GiB.
 */
export const PACK_BYTES = 256 << 20;
/**
 * Longest a write with `{ flush: false }` waits for a commit when nobody waits for one. Unit: ms.
 * Default 10: bounds what a crash can lose to ~10 ms of writes plus one commit, at ~100 commits/s
 * (an fdatasync of the pack and a synced level batch each, ~1 ms on this VM's disk).
 */
export const COMMIT_DELAY_MS = 10;
/** A batch is committed once it holds this many index updates. Default 4096 (~0.1 MB to level). */
export const COMMIT_MAX_OPS = 4096;
/**
 * Chunks stored recently, kept in memory to serve them to peers without a disk read and re-hash
 * (see recent.ts): one ring buffer of this size, allocated at the first chunk stored. Unit: bytes.
 * Default 32 MiB.
 */
export const RECENT_CHUNK_BYTES = 32 << 20;
/** Read fds kept open (one per pack read recently). Default 64. */
export const READ_FDS = 64;
/** hasMany() and friends once ran file operations in parallel; kept for callers. Default 64. */
export const FS_CONCURRENCY = 64;

export interface ChunkStoreOptions {
  /** Refuse chunks longer than this. Unit: bytes. Default MAX_CHUNK_BYTES. */
  maxChunkBytes?: number;
  /**
   * fsync packs and the index before a put() resolves. Default true; false is only for tests
   * and benchmarks that do not care about power loss.
   */
  sync?: boolean;
  /** Default PACK_BYTES. */
  packBytes?: number;
  /** Default COMMIT_DELAY_MS. */
  commitDelayMs?: number;
  /** Default COMMIT_MAX_OPS. */
  commitMaxOps?: number;
  /** Default READ_FDS. */
  readFds?: number;
  /** Default RECENT_CHUNK_BYTES; 0 turns the in-memory copy of recent chunks off. */
  recentBytes?: number;
  /**
   * Called once when a commit fails and the store turns read-only (see committer.ts): the owner
   * can close it and open it again, which re-checks the index against the packs.
   */
  onFailed?: (err: Error) => void;
}

export interface ChunkInfo {
  hash: string;
  /** Bytes. */
  size: number;
  /** Last write or put() of this chunk (put() of a chunk already present refreshes it). */
  mtimeMs: number;
}

export interface ChunkStoreStats {
  /** Chunks in the store. */
  chunks: number;
  /** Their total size in bytes (content, not disk blocks). */
  bytes: number;
}

export interface PackStats {
  /** Pack files, and their total size in bytes. */
  packs: number;
  packBytes: number;
  /** Bytes of live records (headers included); the rest is dead until compaction. */
  liveBytes: number;
}

export interface PutOptions {
  /**
   * Default true: put() resolves once the chunk is durable. With false it resolves once the
   * complete chunk is written and visible to get()/has(); it becomes durable at the next group
   * commit (within about COMMIT_DELAY_MS) or flush(): call flush() before acknowledging anything
   * that depends on the chunk. A crash before that may lose the chunk, never serve half of it.
   */
  flush?: boolean;
}

export interface GetOptions {
  /** Re-hash the bytes and quarantine the chunk on a mismatch. Default true. */
  verify?: boolean;
  /**
   * Answer from the in-memory copy of recently stored chunks when it has this one (bytes hashed
   * when they were stored, not read back from disk). For serving peers; reads that must check
   * the disk copy (exports, scrubs) leave it off. Default false.
   */
  recent?: boolean;
}
