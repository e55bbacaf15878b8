// storage/chunks: content-defined chunking (FastCDC) and the on-disk, content-addressed chunk
// store (append-only packs plus an index). The public surface of the folder; other folders import
// only from here.
//
//   const store = await ChunkStore.open(join(dataDir, 'chunks'));
//   await store.put(hash, bytes);              // verifies, appends, durable at the group commit
//   const bytes = await store.get(hash);       // verified; ChunkCorruptError => fetch elsewhere
//   await store.compact();                     // after deletes: gives their space back
//   for (const end of new FastCdc().push(buf)) ...   // or cutPoints(buffer)
export {
  DEFAULT_AVG_SIZE,
  DEFAULT_MAX_SIZE,
  DEFAULT_MIN_SIZE,
  DEFAULT_NORMALIZATION,
  FastCdc,
  GEAR,
  GEAR_SEED,
  MAX_MAX_SIZE,
  MIN_MIN_SIZE,
  cutPoints,
  resolveChunkerOptions,
  splitChunks,
  type ChunkerOptions,
  type ChunkerParams,
} from './fastcdc.js';
export { assertChunkHash, isChunkHash, isImageDigest, sha256Hex } from './hash.js';
export { KeyedLock } from './keyed-lock.js';
export { ChunkStore } from './store.js';
export {
  COMMIT_DELAY_MS,
  COMMIT_MAX_OPS,
  FS_CONCURRENCY,
  MAX_CHUNK_BYTES,
  PACK_BYTES,
  READ_FDS,
  type ChunkInfo,
  type ChunkStoreOptions,
  type ChunkStoreStats,
  type GetOptions,
  type PackStats,
  type PutOptions,
} from './options.js';
export {
  COMPACT_DEAD_FRACTION,
  COMPACT_MAX_BYTES,
  type CompactOptions,
  type CompactResult,
} from './compaction.js';
export { QUARANTINE_KEEP_MS, quarantinedChunks } from './quarantine.js';
export { corruptChunkForTest } from './test-support.js';
export { mapLimit } from './fs-util.js';
