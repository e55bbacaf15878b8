// Quarantine of chunks that failed verification when read: their bytes (what the pack held at
// the chunk's record) are written to `DIR/quarantine/<hash>.<ms>.<pack>.<offset>` for
// inspection and kept QUARANTINE_KEEP_MS. Rare by nature, so one small file each is fine.
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isChunkHash } from './hash.js';

/** How long a quarantined chunk is kept for inspection. Unit: ms. Default 7 days. */
export const QUARANTINE_KEEP_MS = 7 * 24 * 3600 * 1000;

/** Keeps `bytes` of a corrupt chunk for inspection. Best effort: never throws. */
export async function quarantineBytes(
  dir: string,
  hash: string,
  bytes: Uint8Array,
  where: { pack: number; offset: number },
): Promise<void> {
  const name = `${hash}.${Date.now()}.${where.pack}.${where.offset}`;
  await writeFile(join(dir, name), bytes, { mode: 0o600, flag: 'wx' }).catch(() => {});
}

/** Deletes quarantined chunks older than `keepMs`. */
export async function expireQuarantine(dir: string, keepMs = QUARANTINE_KEEP_MS): Promise<void> {
  const cutoff = Date.now() - keepMs;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = join(dir, name);
    const st = await stat(p).catch(() => undefined);
    if (st !== undefined && st.mtimeMs < cutoff) await rm(p, { force: true });
  }
}

/**
 * Hashes of the chunks in the quarantine of the chunk store in `storeDir`, one per quarantined
 * copy (a chunk found corrupt twice is listed twice). Reads only the directory, so it also
 * works while another process has the store open.
 */
export async function quarantinedChunks(storeDir: string): Promise<string[]> {
  const names = await readdir(join(storeDir, 'quarantine')).catch(() => [] as string[]);
  return names.map((n) => n.split('.')[0]).filter((h) => isChunkHash(h));
}
