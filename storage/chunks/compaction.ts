// Compaction: gives back the disk space of deleted, moved and quarantined chunks.
//
// delete() only removes index entries; their records stay in the packs as dead bytes. compact()
// picks sealed packs (no writer has them open) whose dead share is at least `minDeadFraction`,
// copies their live records into the active pack (re-verified on the way: a corrupt record is
// quarantined, not copied), commits the new index entries (synced), and only then deletes the old
// packs. Step by step, what a crash leaves:
//   - before the commit: the durable index still points into the old pack, which is intact; the
//     copies are an uncommitted tail of the active pack, which nothing points to;
//   - after the commit, before the unlink: no durable entry points into the old pack; it holds
//     no live record, so the next open deletes it (packs without live records are deleted there);
//   - a pack whose records are all dead is deleted only after a flush made the deletions durable.
// So a pack is never deleted while an index entry, in memory or on disk, points into it.
import type { ChunkLoc, ChunkTable } from './chunk-table.js';
import { mapLimit } from './fs-util.js';
import type { KeyedLock } from './keyed-lock.js';
import { RECORD_HEADER_BYTES } from './pack-format.js';
import type { PackSet } from './pack-set.js';
import { quarantineBytes } from './quarantine.js';

/** Compact a pack once at least this share of its bytes is dead. Default 0.5. */
export const COMPACT_DEAD_FRACTION = 0.5;
/**
 * Live bytes one compact() call copies at most (the packs with the most dead bytes go first;
 * the rest waits for the next call). Unit: bytes. Default 1 GiB: bounds the I/O burst, a few
 * seconds on an SSD.
 */
export const COMPACT_MAX_BYTES = 1 << 30;
/** Records copied at once. */
const MOVE_CONCURRENCY = 8;

export interface CompactOptions {
  /** Default COMPACT_DEAD_FRACTION. 0 compacts every sealed pack with any dead byte. */
  minDeadFraction?: number;
  /** Default COMPACT_MAX_BYTES. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface CompactResult {
  /** Packs deleted. */
  packs: number;
  /** Live chunks copied out of them, and their bytes. */
  movedChunks: number;
  movedBytes: number;
  /** Disk bytes given back: the deleted packs' sizes minus what was copied. */
  reclaimedBytes: number;
}

export interface CompactionHost {
  table: ChunkTable;
  /** Packs no writer has open, with their file sizes. */
  sealedPacks(): Array<{ seq: number; size: number }>;
  /** Retires the pack being filled if `worth` says so (see PackSet.retireActive). */
  retireActive(worth: (seq: number, size: number) => boolean): void;
  /** Copies the record of `key` out of pack `seq` if it is still there; returns its data bytes. */
  move(key: string, seq: number): Promise<number>;
  /** A whole commit: every index update so far is durable, retired packs are sealed. */
  flush(): Promise<void>;
  /** Deletes packs; returns their total size. */
  removePacks(seqs: number[]): Promise<number>;
  closed(): boolean;
}

export async function compactPacks(
  host: CompactionHost,
  opts: CompactOptions = {},
): Promise<CompactResult> {
  const minDead = opts.minDeadFraction ?? COMPACT_DEAD_FRACTION;
  const budget = opts.maxBytes ?? COMPACT_MAX_BYTES;
  const result: CompactResult = { packs: 0, movedChunks: 0, movedBytes: 0, reclaimedBytes: 0 };
  const worth = (seq: number, size: number): boolean => {
    const live = host.table.packUse(seq).bytes;
    return size > live && (size - live) / size >= minDead;
  };
  // the pack being filled is compacted too once it is mostly dead (a store that never fills a
  // pack would otherwise never give space back): retire it, the commit below seals it
  host.retireActive(worth);
  await host.flush(); // deletions so far are durable: packs they emptied may go
  const empty: number[] = [];
  const candidates: Array<{ seq: number; dead: number }> = [];
  for (const p of host.sealedPacks()) {
    const use = host.table.packUse(p.seq);
    if (use.records === 0) empty.push(p.seq);
    else if (worth(p.seq, p.size)) candidates.push({ seq: p.seq, dead: p.size - use.bytes });
  }
  candidates.sort((a, b) => b.dead - a.dead);
  const chosen = new Set<number>();
  let planned = 0;
  for (const c of candidates) {
    const live = host.table.packUse(c.seq).bytes;
    if (chosen.size > 0 && planned + live > budget) continue;
    chosen.add(c.seq);
    planned += live;
  }
  // the live records of the chosen packs, in one pass over the table, then in file order
  const records = new Map<number, Array<[number, string]>>();
  for (const seq of chosen) records.set(seq, []);
  if (chosen.size > 0) {
    for (const key of host.table.keys()) {
      const loc = host.table.get(key);
      if (loc !== undefined && chosen.has(loc.pack)) records.get(loc.pack)!.push([loc.offset, key]);
    }
  }
  const emptied: number[] = [];
  for (const [seq, recs] of records) {
    recs.sort((a, b) => a[0] - b[0]);
    await mapLimit(recs, MOVE_CONCURRENCY, async ([, key]) => {
      if (host.closed()) return;
      opts.signal?.throwIfAborted();
      const n = await host.move(key, seq);
      if (n > 0) {
        result.movedChunks++;
        result.movedBytes += n;
      }
    });
    if (host.closed()) break;
    emptied.push(seq);
  }
  await host.flush(); // the copies' entries are durable: nothing on disk points into the old packs
  const gone = [...empty, ...emptied].filter((seq) => host.table.packUse(seq).records === 0);
  const freed = await host.removePacks(gone);
  result.packs = gone.length;
  const copied = result.movedBytes + result.movedChunks * RECORD_HEADER_BYTES;
  result.reclaimedBytes = Math.max(0, freed - copied);
  return result;
}

export interface MoveDeps {
  lock: KeyedLock;
  table: ChunkTable;
  packs: PackSet;
  quarantineDir: string;
  /** Queues the index update of a moved entry; returns its batch. */
  commit: (key: string, loc: ChunkLoc) => number;
  /** Takes a corrupt chunk out of the store if it is still at `loc` (under its lock). */
  drop: (key: string, loc: ChunkLoc) => boolean;
}

/**
 * Copies the record of `key` (a table key) from pack `seq` to the active pack, if it is still
 * there, under the chunk's lock; the entry keeps its mtime. A record that fails verification is
 * quarantined instead. Returns the data bytes copied.
 */
export function moveRecord(key: string, seq: number, d: MoveDeps): Promise<number> {
  return d.lock.run(key, async () => {
    const loc = d.table.get(key);
    if (loc === undefined || loc.pack !== seq) return 0;
    const raw = Buffer.from(key, 'latin1');
    const hash = raw.toString('hex');
    const r = await d.packs.readRecord(hash, raw, loc, true);
    if (r.problem !== undefined) {
      if (d.drop(key, loc))
        await quarantineBytes(d.quarantineDir, hash, r.data ?? Buffer.alloc(0), loc);
      return 0;
    }
    const moved: ChunkLoc = { ...loc, ...(await d.packs.append(raw, r.data)) };
    moved.batch = d.commit(key, moved);
    d.table.set(key, moved);
    return loc.length;
  });
}
