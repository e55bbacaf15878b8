// storage/chunks: content-defined chunking (FastCDC) and the on-disk, content-addressed chunk
// store. The public surface of the folder; other folders import only from here.
//
//   const store = await ChunkStore.open(join(dataDir, 'chunks'));
//   await store.put(hash, bytes);              // verifies, then durable (fsync + rename)
//   const bytes = await store.get(hash);       // verified; ChunkCorruptError => fetch elsewhere
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
export {
  ChunkStore,
  FS_CONCURRENCY,
  MAX_CHUNK_BYTES,
  QUARANTINE_KEEP_MS,
  type ChunkInfo,
  type ChunkStoreOptions,
  type ChunkStoreStats,
  type GetOptions,
  type PutOptions,
} from './store.js';
export { mapLimit } from './fs-util.js';
