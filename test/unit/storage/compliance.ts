// One compliance suite for every KvStore implementation (DESIGN.md principle 5).
import { describe, expect, it } from 'vitest';
import type { KvStore } from '../../../storage/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : new TextDecoder().decode(b);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export function kvStoreCompliance(
  name: string,
  open: () => Promise<{ store: KvStore; cleanup: () => Promise<void> }>,
) {
  describe(`KvStore compliance: ${name}`, () => {
    const withStore = (fn: (s: KvStore) => Promise<void>) => async () => {
      const { store, cleanup } = await open();
      try {
        await fn(store);
      } finally {
        await store.close();
        await cleanup();
      }
    };

    it(
      'get of a missing key is undefined; put then get returns the bytes',
      withStore(async (s) => {
        expect(await s.get('nope')).toBeUndefined();
        await s.put('a', enc('1'));
        expect(dec(await s.get('a'))).toBe('1');
        await s.put('a', enc('2'), { sync: true });
        expect(dec(await s.get('a'))).toBe('2');
      }),
    );

    it(
      'returned values are copies: mutating one does not change the store',
      withStore(async (s) => {
        const v = enc('abc');
        await s.put('k', v);
        v[0] = 0;
        const got = (await s.get('k'))!;
        expect(dec(got)).toBe('abc');
        got[0] = 0;
        expect(dec(await s.get('k'))).toBe('abc');
      }),
    );

    it(
      'del removes; del of a missing key is fine',
      withStore(async (s) => {
        await s.put('a', enc('1'));
        await s.del('a');
        await s.del('never');
        expect(await s.get('a')).toBeUndefined();
      }),
    );

    it(
      'getMany returns values in order with undefined for missing',
      withStore(async (s) => {
        await s.put('a', enc('1'));
        await s.put('c', enc('3'));
        const vals = await s.getMany(['a', 'b', 'c']);
        expect(vals.map(dec)).toEqual(['1', undefined, '3']);
      }),
    );

    it(
      'batch applies puts and dels in order',
      withStore(async (s) => {
        await s.put('x', enc('old'));
        await s.batch(
          [
            { type: 'put', key: 'a', value: enc('1') },
            { type: 'put', key: 'b', value: enc('2') },
            { type: 'del', key: 'x' },
            { type: 'put', key: 'a', value: enc('3') },
          ],
          { sync: true },
        );
        expect(dec(await s.get('a'))).toBe('3');
        expect(dec(await s.get('b'))).toBe('2');
        expect(await s.get('x')).toBeUndefined();
        await s.batch([]);
      }),
    );

    it(
      'entries are in UTF-8 byte order, with bounds, prefix, reverse and limit',
      withStore(async (s) => {
        const keys = [
          'b',
          'a',
          'ab',
          'abc',
          'ac',
          'b\u00e9',
          'z',
          '\ufffd',
          '\u{1f600}',
          'a\u{10ffff}',
        ];
        for (const k of keys) await s.put(k, enc(k));
        const all = await collect(s.keys());
        expect(all).toEqual([
          'a',
          'ab',
          'abc',
          'ac',
          'a\u{10ffff}',
          'b',
          'b\u00e9',
          'z',
          '\ufffd',
          '\u{1f600}',
        ]);
        expect(await collect(s.keys({ prefix: 'a' }))).toEqual([
          'a',
          'ab',
          'abc',
          'ac',
          'a\u{10ffff}',
        ]);
        expect(await collect(s.keys({ prefix: 'ab' }))).toEqual(['ab', 'abc']);
        expect(await collect(s.keys({ gt: 'a', lt: 'b' }))).toEqual([
          'ab',
          'abc',
          'ac',
          'a\u{10ffff}',
        ]);
        expect(await collect(s.keys({ gte: 'ab', lte: 'ac' }))).toEqual(['ab', 'abc', 'ac']);
        expect(await collect(s.keys({ prefix: 'a', reverse: true, limit: 2 }))).toEqual([
          'a\u{10ffff}',
          'ac',
        ]);
        expect(await collect(s.keys({ prefix: 'a', gt: 'ab' }))).toEqual([
          'abc',
          'ac',
          'a\u{10ffff}',
        ]);
        const ents = await collect(s.entries({ prefix: 'b' }));
        expect(ents.map(([k, v]) => [k, dec(v)])).toEqual([
          ['b', 'b'],
          ['b\u00e9', 'b\u00e9'],
        ]);
      }),
    );

    it(
      'namespaces are isolated from each other and from plain keys',
      withStore(async (s) => {
        const a = s.namespace('a');
        const b = s.namespace('b');
        const nested = a.namespace('n');
        await s.put('k', enc('root'));
        await a.put('k', enc('a'));
        await b.put('k', enc('b'));
        await nested.put('k', enc('nested'));
        expect(dec(await s.get('k'))).toBe('root');
        expect(dec(await a.get('k'))).toBe('a');
        expect(dec(await b.get('k'))).toBe('b');
        expect(dec(await nested.get('k'))).toBe('nested');
        await a.put('k2', enc('a2'));
        expect(await collect(a.keys())).toEqual(['\x01n\x01k', 'k', 'k2']);
        expect(await collect(a.keys({ prefix: 'k' }))).toEqual(['k', 'k2']);
        expect(await collect(b.keys())).toEqual(['k']);
        await a.batch([{ type: 'del', key: 'k' }]);
        expect(await a.get('k')).toBeUndefined();
        expect(dec(await b.get('k'))).toBe('b');
        expect((await a.getMany(['k2'])).map(dec)).toEqual(['a2']);
      }),
    );

    it(
      'binary values of any size round-trip',
      withStore(async (s) => {
        const big = new Uint8Array(1 << 20);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
        await s.put('big', big);
        await s.put('empty', new Uint8Array(0));
        expect(Buffer.compare(Buffer.from((await s.get('big'))!), Buffer.from(big))).toBe(0);
        expect((await s.get('empty'))!.length).toBe(0);
      }),
    );

    it(
      'use after close is an error',
      withStore(async (s) => {
        await s.close();
        await expect(s.get('a')).rejects.toThrow(/closed/);
      }),
    );
  });
}
