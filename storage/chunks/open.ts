// Opening a chunk store directory: the packs, the index (loaded, or rebuilt from the packs), and
// the clean-up of what a crash or a compaction left behind.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptDataError } from '../errors.js';
import { ChunkTable } from './chunk-table.js';
import { fsyncDir } from './fs-util.js';
import { FORMAT, IndexDb } from './index-db.js';
import { PackSet, type PackSetOptions } from './pack-set.js';
import { expireQuarantine } from './quarantine.js';

export interface OpenedStore {
  db: IndexDb;
  packs: PackSet;
  table: ChunkTable;
}

/**
 * Creates the directories if needed, opens the index database (StoreLockedError if another
 * process has it), learns the packs, loads the index into memory, checking every entry against
 * the packs (or rebuilds it from the packs if it is missing, unmarked or unreadable), deletes the
 * packs no entry points to (uncommitted tails of a crash, packs emptied by deletes or compaction)
 * and expires old quarantined chunks.
 */
export async function openStoreDir(
  dir: string,
  opts: PackSetOptions & { maxChunkBytes: number },
): Promise<OpenedStore> {
  const packsDir = join(dir, 'packs');
  const created = (await stat(packsDir).catch(() => undefined)) === undefined;
  await mkdir(packsDir, { recursive: true, mode: 0o700 });
  await mkdir(join(dir, 'quarantine'), { recursive: true, mode: 0o700 });
  if (created) await fsyncDir(dir);
  const { db, fresh } = await IndexDb.open(join(dir, 'index'));
  let packs: PackSet | undefined;
  try {
    packs = await PackSet.open(packsDir, opts);
    const table = new ChunkTable();
    const sizes = packs.sizes();
    const format = await db.format();
    if (format !== undefined && format !== FORMAT)
      throw new CorruptDataError(`chunk index format ${JSON.stringify(format)} is unknown`);
    if (format !== undefined && !fresh) await db.load(table, sizes, opts.maxChunkBytes);
    else await db.rebuild(table, packsDir, sizes, opts.maxChunkBytes);
    await packs.remove([...sizes.keys()].filter((seq) => table.packUse(seq).records === 0));
    await expireQuarantine(join(dir, 'quarantine'));
    return { db, packs, table };
  } catch (err) {
    await packs?.close();
    await db.close();
    throw err;
  }
}
