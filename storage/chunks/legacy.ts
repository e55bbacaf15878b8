// Migration from the first chunk store layout, one file per chunk:
//   DIR/chunks/ab/abcdef...   a chunk named by its sha256
//   DIR/tmp/                  temp files of writes in progress
// Every file whose bytes hash to its name is put into the packs (keeping its mtime for the GC
// grace period), the index is flushed, and only then are both directories removed. A crash at any
// point leaves the files in place and the migration runs again at the next open (puts of chunks
// already moved are no-ops).
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isChunkHash, sha256Hex } from './hash.js';
import { mapLimit } from './fs-util.js';

/** File operations the migration runs at once. */
const MIGRATE_CONCURRENCY = 16;

export interface LegacyTarget {
  maxChunkBytes: number;
  /** Stores a verified chunk (no flush) unless present, with this mtime. */
  putVerified(hash: string, bytes: Uint8Array, mtimeMs: number): Promise<void>;
  flush(): Promise<void>;
}

/** Moves the chunks of the old layout in `dir` into `target`; returns how many were found. */
export async function migrateLegacyChunks(dir: string, target: LegacyTarget): Promise<number> {
  const chunksDir = join(dir, 'chunks');
  const shards = await readdir(chunksDir).catch(() => undefined);
  if (shards === undefined) {
    await rm(join(dir, 'tmp'), { recursive: true, force: true });
    return 0;
  }
  let moved = 0;
  for (const shard of shards) {
    const names = await readdir(join(chunksDir, shard)).catch(() => [] as string[]);
    await mapLimit(names, MIGRATE_CONCURRENCY, async (name) => {
      if (!isChunkHash(name)) return;
      const path = join(chunksDir, shard, name);
      const st = await stat(path).catch(() => undefined);
      if (st === undefined || !st.isFile() || st.size > target.maxChunkBytes) return;
      const bytes = await readFile(path);
      if (sha256Hex(bytes) !== name) return; // corrupt: dropped with the directory
      await target.putVerified(name, bytes, st.mtimeMs);
      moved++;
    });
  }
  await target.flush();
  await rm(chunksDir, { recursive: true, force: true });
  await rm(join(dir, 'tmp'), { recursive: true, force: true });
  return moved;
}
