// A real full disk under the agent's database (a small tmpfs): LevelDB's log is torn by the write
// that hits it, and its recovery at the next open dropped everything appended after: every write
// acknowledged after space was freed was lost at the next restart. The store now refuses writes
// after a failed one until it has reopened the database (storage/kv/level.ts).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LevelStore, StoreFailedError } from '../../storage/index.js';
import { waitFor } from '../helpers/wait.js';

function tmpfsAvailability(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'needs Linux tmpfs' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root to mount a tmpfs' };
  return { ok: true };
}

const avail = tmpfsAvailability();
if (!avail.ok) console.log(`full-disk lab test skipped: ${avail.reason}`);

const value = (i: number) => new TextEncoder().encode(`v${i}-${'x'.repeat(3000)}`);

/** Writes zeros to `file` until the device is full. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!avail.ok)('lab: the database on a disk that fills up', () => {
  let dir = '';
  let mounted = false;
  const open: LevelStore[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeswarm-full-'));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', dir], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`cannot mount a tmpfs: ${r.stderr.trim()}`);
    mounted = true;
  });

  afterAll(async () => {
    for (const s of open) await s.close().catch(() => {});
    if (mounted && spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every write it acknowledged across a full disk and a restart', async () => {
    const path = join(dir, 'db');
    const store = await LevelStore.open(path);
    open.push(store);
    const acked: string[] = [];
    const put = async (key: string, i: number) => {
      await store.put(key, value(i), { sync: true });
      acked.push(key);
    };
    for (let i = 0; i < 50; i++) await put(`before/${i}`, i);
    const filler = join(dir, 'filler');
    fill(filler);
    let failures = 0;
    for (let i = 0; i < 20; i++) await put(`during/${i}`, i).catch(() => failures++);
    expect(failures).toBeGreaterThan(0);
    rmSync(filler);
    // space is back, but the log behind the failed write is torn: refused until reopened
    await expect(put('after/refused', 0)).rejects.toBeInstanceOf(StoreFailedError);
    expect(store.failed).toBeDefined();
    // reads go on meanwhile
    expect(Buffer.from((await store.get('before/0'))!).equals(value(0))).toBe(true);
    await waitFor(
      () =>
        put('after/0', 0).then(
          () => true,
          () => false,
        ),
      {
        timeout: 15_000,
        interval: 250,
        message: 'the store to take writes again after reopening',
      },
    );
    expect(store.failed).toBeUndefined();
    for (let i = 1; i < 50; i++) await put(`after/${i}`, i);
    await store.close();

    const again = await LevelStore.open(path);
    open.push(again);
    const lost: string[] = [];
    for (const k of acked) if (!(await again.get(k))) lost.push(k);
    expect(lost, `${lost.length} of ${acked.length} acknowledged writes lost`).toEqual([]);
  }, 60_000);
});
