import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LevelStore,
  MemoryStore,
  StoreClosedError,
  StoreFailedError,
  StoreLockedError,
  prefixSuccessor,
} from '../../../storage/index.js';
import { LEVEL_REOPEN_MS, openDb } from '../../../storage/kv/level.js';
import { kvStoreCompliance } from './compliance.js';

kvStoreCompliance('MemoryStore', async () => ({
  store: new MemoryStore(),
  cleanup: async () => {},
}));

kvStoreCompliance('LevelStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'es-level-'));
  return {
    store: await LevelStore.open(join(dir, 'db')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('LevelStore', () => {
  it('keeps data across close and reopen, and refuses a second opener', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-level-'));
    try {
      const path = join(dir, 'db');
      const a = await LevelStore.open(path);
      await a.put('k', new Uint8Array([1, 2, 3]), { sync: true });
      await expect(LevelStore.open(path)).rejects.toBeInstanceOf(StoreLockedError);
      await a.close();
      const b = await LevelStore.open(path);
      expect([...((await b.get('k')) ?? [])]).toEqual([1, 2, 3]);
      await b.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('prefixSuccessor', () => {
  it('increments the last code point, skipping surrogates and carrying at the maximum', () => {
    expect(prefixSuccessor('abc')).toBe('abd');
    expect(prefixSuccessor('a\ud7ff')).toBe('a\ue000');
    expect(prefixSuccessor('a\u{10ffff}')).toBe('b');
    expect(prefixSuccessor('\u{10ffff}')).toBeUndefined();
  });
});

describe('LevelStore after a failed write (a full disk: the lab test fills a real one)', () => {
  const bytes = (n: number) => new Uint8Array([n]);
  const ioError = () =>
    Object.assign(new Error('IO error: db/000003.log: No space left on device'), {
      code: 'LEVEL_IO_ERROR',
    });

  /**
   * A store whose database's put fails while `full.on`, with an I/O error or (`full.caller`) one
   * of the call's own; `opened` counts the opens.
   */
  async function failing(dir: string) {
    const full = { on: false, caller: false };
    const opened = { n: 0 };
    const store = await LevelStore.open(join(dir, 'db'), {
      openDb: (path) => {
        opened.n++;
        const db = openDb(path);
        const put = db.put.bind(db);
        db.put = ((...args: Parameters<typeof put>) =>
          full.caller
            ? Promise.reject(Object.assign(new Error('bad value'), { code: 'LEVEL_INVALID_VALUE' }))
            : full.on
              ? Promise.reject(ioError())
              : put(...args)) as typeof db.put;
        return db;
      },
    });
    return { store, full, opened };
  }

  it('refuses writes, still reads, then reopens the database and takes writes again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-level-'));
    try {
      const { store, full, opened } = await failing(dir);
      await store.put('a', bytes(1));
      full.on = true;
      await expect(store.put('b', bytes(2))).rejects.toMatchObject({ code: 'LEVEL_IO_ERROR' });
      full.on = false;
      // the log may be torn behind the failed write: nothing more goes into it
      await expect(store.put('c', bytes(3))).rejects.toBeInstanceOf(StoreFailedError);
      await expect(store.del('a')).rejects.toBeInstanceOf(StoreFailedError);
      expect([...((await store.get('a')) ?? [])]).toEqual([1]);
      expect(opened.n).toBe(1);
      await new Promise((r) => setTimeout(r, LEVEL_REOPEN_MS + 500));
      expect(opened.n).toBe(2);
      expect(store.failed).toBeUndefined();
      await store.put('c', bytes(3));
      expect([...((await store.get('c')) ?? [])]).toEqual([3]);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a caller error does not make it read-only; a scan across the reopen ends as closed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-level-'));
    try {
      const { store, full } = await failing(dir);
      for (let i = 0; i < 50; i++) await store.put(`k/${i}`, bytes(i));
      // not an I/O error: refused alone, the store goes on
      full.caller = true;
      await expect(store.put('x', bytes(1))).rejects.toMatchObject({ code: 'LEVEL_INVALID_VALUE' });
      full.caller = false;
      await store.put('y', bytes(1));
      expect(store.failed).toBeUndefined();
      full.on = true;
      await expect(store.put('z', bytes(1))).rejects.toBeDefined();
      full.on = false;
      const seen: string[] = [];
      const scan = (async () => {
        for await (const k of store.keys({ prefix: 'k/' })) {
          seen.push(k);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await expect(scan).rejects.toBeInstanceOf(StoreClosedError);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.length).toBeLessThan(50);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('close() while it waits to reopen leaves no database open behind it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-level-'));
    try {
      const { store, full, opened } = await failing(dir);
      full.on = true;
      await expect(store.put('a', bytes(1))).rejects.toBeDefined();
      await store.close();
      await new Promise((r) => setTimeout(r, LEVEL_REOPEN_MS + 500));
      expect(opened.n).toBe(1);
      // the lock is free: a new store opens at once
      const again = await LevelStore.open(join(dir, 'db'));
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
