// Helpers for tests that need to damage a chunk store on disk, from outside the store (the store
// may be open in another process: they use only the pack files, never the locked index).
import { randomBytes } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_CHUNK_BYTES } from './options.js';
import { RECORD_HEADER_BYTES, parsePackName, scanPack } from './pack-format.js';

/**
 * Overwrites the bytes of chunk `hash` (by default: of the first chunk found) with random bytes
 * of the same length, in every pack record of it, as disk corruption would. The record headers
 * are left intact, so only re-hashing the bytes can tell. Returns the hash; throws if the chunk
 * is not found.
 */
export async function corruptChunkForTest(storeDir: string, hash?: string): Promise<string> {
  const packsDir = join(storeDir, 'packs');
  const seqs = (await readdir(packsDir))
    .map((n) => [n, parsePackName(n)] as const)
    .filter((e): e is readonly [string, number] => e[1] !== undefined)
    .sort((a, b) => a[1] - b[1]);
  let target = hash;
  let hits = 0;
  for (const [name] of seqs) {
    const path = join(packsDir, name);
    const found: Array<{ offset: number; length: number }> = [];
    for await (const r of scanPack(path, MAX_CHUNK_BYTES)) {
      if (target === undefined && r.length > 0) target = r.hash;
      if (r.hash === target) found.push(r);
    }
    if (found.length === 0) continue;
    const fh = await open(path, 'r+');
    try {
      for (const r of found) {
        await fh.write(randomBytes(r.length), 0, r.length, r.offset + RECORD_HEADER_BYTES);
        hits++;
      }
    } finally {
      await fh.close();
    }
  }
  if (target === undefined || hits === 0) throw new Error(`chunk ${hash ?? '(any)'} not found`);
  return target;
}
