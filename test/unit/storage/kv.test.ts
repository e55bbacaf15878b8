import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LevelStore,
  MemoryStore,
  StoreLockedError,
  prefixSuccessor,
} from '../../../storage/index.js';
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
