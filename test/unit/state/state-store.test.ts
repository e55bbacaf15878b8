import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LevelStore,
  MemoryStore,
  type BatchOp,
  type KvStore,
  type WriteOptions,
} from '../../../storage/index.js';
import {
  compareHlc,
  hlcToString,
  InvalidKeyError,
  MAX_VALUE_BYTES_LIMIT,
  StateStore,
  syncOneWay,
  syncPair,
  ValueTooLargeError,
  VersionVector,
  type StateRecord,
} from '../../../storage/state/index.js';

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string): Uint8Array => te.encode(s);

function clock(start = 1_700_000_000_000): {
  now: () => number;
  advance: (ms: number) => void;
  set: (t: number) => void;
} {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms), set: (v) => void (t = v) };
}

async function open(
  kv: KvStore,
  nodeId: string,
  now: () => number,
  extra = {},
): Promise<StateStore> {
  return StateStore.open({ store: kv.namespace('kv'), nodeId, now, ...extra });
}

async function value(s: StateStore, key: string): Promise<string | undefined> {
  const e = await s.get(key);
  return e === undefined ? undefined : td.decode(e.value);
}

async function dump(s: StateStore): Promise<string[]> {
  const out: string[] = [];
  for await (const r of s.records())
    out.push(
      `${r.key}=${r.value === null ? '<del>' : td.decode(r.value)}@${hlcToString(r.hlc)}/${r.origin}:${r.seq}`,
    );
  return out;
}

describe('StateStore: local writes', () => {
  it('writes, reads, lists and deletes', async () => {
    const c = clock();
    const s = await open(new MemoryStore(), 'A', c.now);
    const r1 = await s.write('app/a', b('1'));
    c.advance(1);
    const r2 = await s.write('app/b', b('22'));
    await s.write('other', b('x'));
    expect(r1).toMatchObject({ key: 'app/a', origin: 'A', seq: 1 });
    expect(r2.seq).toBe(2);
    expect(await value(s, 'app/a')).toBe('1');
    expect((await s.get('app/a'))?.version).toBe(hlcToString(r1.hlc));
    expect(await s.list('app/')).toEqual([
      { key: 'app/a', size: 1, version: hlcToString(r1.hlc) },
      { key: 'app/b', size: 2, version: hlcToString(r2.hlc) },
    ]);
    expect((await s.list('', { after: 'app/a', limit: 1 })).map((e) => e.key)).toEqual(['app/b']);
    // limit 0 (GET /v1/kv?limit=0) is none, not one
    expect(await s.list('', { limit: 0 })).toEqual([]);
    const del = await s.write('app/a', null);
    expect(del.value).toBeNull();
    expect(compareHlc(del.hlc, r1.hlc)).toBeGreaterThan(0);
    expect(await s.get('app/a')).toBeUndefined();
    expect((await s.getRecord('app/a'))?.value).toBeNull();
    expect((await s.list('app/')).map((e) => e.key)).toEqual(['app/b']);
    expect(s.stats()).toMatchObject({ liveKeys: 2, tombstones: 1, localSeq: 4, origins: 1 });
    expect(s.summary().toString()).toBe('A:{1-4}');
  });

  it('refuses bad keys and oversized values', async () => {
    const s = await open(new MemoryStore(), 'A', Date.now, { maxValueBytes: 10, maxKeyBytes: 8 });
    await expect(s.write('', b('x'))).rejects.toThrow(InvalidKeyError);
    await expect(s.write('123456789', b('x'))).rejects.toThrow(InvalidKeyError);
    await expect(s.write('a\ud800', b('x'))).rejects.toThrow(InvalidKeyError);
    // control characters (a newline broke `kv ls` lines)
    await expect(s.write('a\nb', b('x'))).rejects.toThrow(/control character \(U\+000A\)/);
    await expect(s.write('a\u0000b', b('x'))).rejects.toThrow(InvalidKeyError);
    await expect(s.write('a\u007fb', b('x'))).rejects.toThrow(InvalidKeyError);
    await expect(s.write('k', new Uint8Array(11))).rejects.toThrow(ValueTooLargeError);
    await s.write('k', new Uint8Array(10));
  });

  it('groups concurrent writes into few batches, each write with its own version', async () => {
    const kv = new MemoryStore();
    let batches = 0;
    const ns = kv.namespace('kv');
    const counted: KvStore = {
      get: (k) => ns.get(k),
      getMany: (ks) => ns.getMany(ks),
      put: (k, v, o) => ns.put(k, v, o),
      del: (k, o) => ns.del(k, o),
      batch: (ops, o) => {
        batches++;
        return ns.batch(ops, o);
      },
      entries: (o) => ns.entries(o),
      keys: (o) => ns.keys(o),
      namespace: (n) => ns.namespace(n),
      close: () => ns.close(),
    };
    const s = await StateStore.open({ store: counted, nodeId: 'A' });
    const recs = await Promise.all(
      Array.from({ length: 200 }, (_, i) => s.write(`k${i % 50}`, b(`${i}`))),
    );
    expect(new Set(recs.map((r) => r.seq)).size).toBe(200);
    expect(batches).toBeLessThanOrEqual(3);
    for (let k = 0; k < 50; k++) expect(await value(s, `k${k}`)).toBe(`${150 + k}`);
    expect(s.stats().liveKeys).toBe(50);
  });

  it('a write wins over what the node has even if its wall clock is behind', async () => {
    const c = clock(1_000_000);
    const s = await open(new MemoryStore(), 'A', c.now);
    const remote: StateRecord = {
      key: 'k',
      value: b('remote'),
      hlc: { wall: 1_030_000, counter: 0 },
      origin: 'B',
      seq: 1,
    };
    await s.apply([remote]);
    const mine = await s.write('k', b('mine'));
    expect(compareHlc(mine.hlc, remote.hlc)).toBeGreaterThan(0);
    expect(await value(s, 'k')).toBe('mine');
  });
});

describe('StateStore: restart', () => {
  it('restores values, versions, counters; seq and HLC continue above what was issued', async () => {
    const kv = new MemoryStore();
    const c = clock();
    const s1 = await open(kv, 'A', c.now);
    for (let i = 0; i < 5; i++) await s1.write(`k${i}`, b(`v${i}`));
    await s1.write('k0', null);
    await s1.apply([
      { key: 'r', value: b('x'), hlc: { wall: c.now() + 5000, counter: 7 }, origin: 'B', seq: 3 },
    ]);
    const last = s1.lastHlc;
    const before = await dump(s1);
    await s1.close();
    c.set(c.now() - 3_600_000); // the clock went back an hour across the restart
    const s2 = await open(kv, 'A', c.now);
    expect(await dump(s2)).toEqual(before);
    expect(s2.summary().toString()).toBe('A:{1-6} B:{3}');
    expect(s2.stats()).toMatchObject({ liveKeys: 5, tombstones: 1, localSeq: 6 });
    const next = await s2.write('k9', b('after'));
    expect(next.seq).toBe(7);
    expect(compareHlc(next.hlc, last)).toBeGreaterThan(0);
  });

  it('keeps acknowledged writes in a LevelStore across close and reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-state-'));
    try {
      const db1 = await LevelStore.open(join(dir, 'db'));
      const s1 = await open(db1, 'A', Date.now);
      await Promise.all(Array.from({ length: 20 }, (_, i) => s1.write(`k${i}`, b(`v${i}`))));
      await s1.write('k3', null);
      await s1.close();
      await db1.close();
      const db2 = await LevelStore.open(join(dir, 'db'));
      const s2 = await open(db2, 'A', Date.now);
      expect(await value(s2, 'k7')).toBe('v7');
      expect(await s2.get('k3')).toBeUndefined();
      expect(s2.stats()).toMatchObject({ liveKeys: 19, tombstones: 1, localSeq: 21 });
      await db2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('StateStore: remote changes', () => {
  const rec = (
    key: string,
    v: string | null,
    wall: number,
    origin: string,
    seq: number,
  ): StateRecord => ({
    key,
    value: v === null ? null : b(v),
    hlc: { wall, counter: 0 },
    origin,
    seq,
  });

  it('merges by last writer, counts duplicates and superseded versions', async () => {
    const c = clock(10_000);
    const s = await open(new MemoryStore(), 'A', c.now);
    const r1 = await s.apply([rec('k', 'b1', 9_000, 'B', 1), rec('k', 'c1', 9_500, 'C', 1)]);
    expect(r1).toMatchObject({ applied: 2, superseded: 0, duplicates: 0 });
    expect(r1.changes.map((ch) => td.decode(ch.value!))).toEqual(['b1', 'c1']);
    const r2 = await s.apply([rec('k', 'b2', 9_200, 'B', 2), rec('k', 'b1', 9_000, 'B', 1)]);
    expect(r2).toMatchObject({ applied: 0, superseded: 1, duplicates: 1, changes: [] });
    expect(await value(s, 'k')).toBe('c1');
    expect(s.summary().toString()).toBe('B:{1-2} C:{1}');
    const r3 = await s.apply([rec('k', null, 9_600, 'B', 3)]);
    expect(r3.changes).toEqual([expect.objectContaining({ key: 'k', value: null })]);
    expect(s.stats()).toMatchObject({ liveKeys: 0, tombstones: 1 });
  });

  it('refuses records from a clock too far ahead, and invalid records, without marking them', async () => {
    const c = clock(100_000);
    const s = await open(new MemoryStore(), 'A', c.now, { maxDriftMs: 1_000 });
    const cleared = new VersionVector();
    cleared.add('B', 7);
    const res = await s.apply(
      [rec('k', 'x', 102_000, 'B', 1), rec('', 'x', 1, 'B', 2), { ...rec('k', 'x', 1, 'B', 0) }],
      cleared,
    );
    expect(res).toMatchObject({ applied: 0, rejected: 3, clockDrift: 1, cleared: 0 });
    expect(s.summary().isEmpty).toBe(true);
    c.advance(1_500);
    expect((await s.apply([rec('k', 'x', 102_000, 'B', 1)])).applied).toBe(1);
  });

  it('takes a value a writer was allowed, however low its own limit; not one over the wire limit', async () => {
    const c = clock(100_000);
    // this node's own writes are capped at 64 KiB; a peer's limit was 1 MiB
    const s = await open(new MemoryStore(), 'A', c.now, { maxValueBytes: 64 * 1024 });
    await expect(s.write('mine', new Uint8Array(65 * 1024))).rejects.toThrow(ValueTooLargeError);
    const big = { ...rec('big', null, 99_000, 'B', 1), value: new Uint8Array(900 * 1024) };
    // before, it was refused and never marked, so every anti-entropy round sent it again
    expect((await s.apply([big])).applied).toBe(1);
    expect(s.summary().toString()).toBe('B:{1}');
    const over = {
      ...rec('over', null, 99_000, 'B', 2),
      value: new Uint8Array(MAX_VALUE_BYTES_LIMIT + 1),
    };
    expect((await s.apply([over])).rejected).toBe(1);
  });

  it('treats its own records coming back as duplicates', async () => {
    const s = await open(new MemoryStore(), 'A', Date.now);
    const mine = await s.write('k', b('v'));
    expect((await s.apply([mine])).duplicates).toBe(1);
  });
});

describe("StateStore: records in another node's name", () => {
  const rec = (
    key: string,
    origin: string,
    seq: number,
    wall = 1_700_000_000_000,
  ): StateRecord => ({
    key,
    value: b(`${key}@${seq}`),
    hlc: { wall, counter: 0 },
    origin,
    seq,
  });
  const forgery = (origin: string, n: number): StateRecord[] =>
    Array.from({ length: n }, (_, i) => rec(`forged/${i + 1}`, origin, i + 1));

  it('refuses records whose origin is not the authenticated sender, without marking them', async () => {
    const a1 = await open(new MemoryStore(), 'A1', clock().now);
    // X publishes 1000 records in A2's name: all refused and counted, none marked as had
    const res = await a1.apply(forgery('A2', 1000), undefined, { from: 'X' });
    expect(res).toMatchObject({ applied: 0, rejected: 1000, forged: 1000 });
    expect(a1.summary().isEmpty).toBe(true);
    // A2's real first write, published by A2, is taken
    const real = await a1.apply([rec('victim-key', 'A2', 1)], undefined, { from: 'A2' });
    expect(real).toMatchObject({ applied: 1, forged: 0, rejected: 0 });
    expect(await value(a1, 'victim-key')).toBe('victim-key@1');
  });

  it("makes the origin's later writes skip versions others were made to believe they have", async () => {
    const c = clock();
    const kv = new MemoryStore();
    const a2 = await open(kv, 'A2', c.now);
    const a1 = await open(new MemoryStore(), 'A1', c.now);
    // a relay in a session (no authenticated origin) brings A1 1000 records in A2's name
    await a1.apply(forgery('A2', 1000));
    expect(a1.summary().toString()).toBe('A2:{1-1000}');
    // A2 sees A1's summary at the start of their next session: its next write takes 1001
    expect(await a2.noteClaims(a1.summary())).toBe(1000);
    const w = await a2.write('victim-key', b('real'));
    expect(w.seq).toBe(1001);
    await syncOneWay(a2, a1);
    expect(await value(a1, 'victim-key')).toBe('real');
    // kept across a restart
    await a2.close();
    const again = await open(kv, 'A2', c.now);
    expect((await again.write('next', b('x'))).seq).toBe(1002);
    // claims in records and cleared versions count too, not further than MAX_OWN_CLAIM_AHEAD
    const cleared = new VersionVector();
    cleared.addRange('A2', 1003, 1010);
    cleared.add('A2', 2 ** 40);
    const r = await again.apply([rec('own', 'A2', 1020)], cleared);
    // the record and the cleared versions it lacks are taken like anyone's (every other member
    // takes them too); the next write goes above the highest claim (1002 -> 1020)
    expect(r).toMatchObject({ applied: 1, duplicates: 0, cleared: 8, ownClaimed: 18 });
    expect(await value(again, 'own')).toBe('own@1020');
    expect((await again.write('after', b('y'))).seq).toBe(1021);
    // a record beyond MAX_OWN_CLAIM_AHEAD is not taken and does not move the next version
    const far = await again.apply([rec('far', 'A2', 1021 + 2 ** 20 + 1)]);
    expect(far).toMatchObject({ applied: 0, duplicates: 1, ownClaimed: 0 });
    expect((await again.write('then', b('z'))).seq).toBe(1022);
  });

  it('a claim of scattered versions moves the next version and marks none of them', async () => {
    // marking them made A2's own version set 2^19 ranges (too big for any summary a peer
    // accepts, which ended anti-entropy with A2), and claimed versions marked as had were never
    // fetched
    const kv = new MemoryStore();
    const a2 = await open(kv, 'A2', clock().now);
    await a2.write('first', b('x'));
    const claims = new VersionVector();
    for (let v = 3; v <= 20_001; v += 2) claims.add('A2', v);
    expect(await a2.noteClaims(claims)).toBe(20_000);
    expect(a2.summary().toString()).toBe('A2:{1}');
    expect(a2.stats().localSeq).toBe(20_001);
    // kept across a restart without a write in between
    await a2.close();
    const again = await open(kv, 'A2', clock().now);
    expect((await again.write('next', b('y'))).seq).toBe(20_002);
  });

  it('cleared versions of its own origin scattered over what it has only move the next version, synced', async () => {
    // marked as laid out, every other version made the own set too big for any summary a peer
    // accepts (as the summary claim did, above); and the floor they raise must survive a crash
    const syncs: boolean[] = [];
    const kv = new (class extends MemoryStore {
      override batch(ops: readonly BatchOp[], o?: WriteOptions): Promise<void> {
        syncs.push(o?.sync === true);
        return super.batch(ops);
      }
    })();
    const a2 = await open(kv, 'A2', clock().now);
    await a2.write('first', b('x'));
    const cleared = new VersionVector();
    for (let v = 3; v <= 2_001; v += 2) cleared.add('A2', v);
    syncs.length = 0;
    const r = await a2.applyCleared(cleared);
    expect(r).toMatchObject({ cleared: 0, ownClaimed: 2_000 });
    expect(a2.summary().toString()).toBe('A2:{1}');
    expect(syncs).toEqual([true]);
    expect((await a2.write('next', b('y'))).seq).toBe(2_002);
  });

  it('a data directory restored from an older copy takes back its later writes from peers', async () => {
    const c = clock();
    const kv = new MemoryStore();
    const a = await open(kv, 'A', c.now);
    for (const k of ['k1', 'k2', 'k3']) {
      c.advance(1);
      await a.write(k, b(`${k}-old`));
    }
    await a.close();
    const copy = new MemoryStore(); // the backup
    const ops = [];
    for await (const [k, v] of kv.entries()) ops.push({ type: 'put' as const, key: k, value: v });
    await copy.batch(ops);
    const a1 = await open(kv, 'A', c.now);
    c.advance(1);
    await a1.write('k4', b('k4-first')); // version 4, cleared by version 6
    c.advance(1);
    await a1.write('k1', b('k1-new')); // version 5; version 1 is now cleared
    c.advance(1);
    await a1.write('k4', b('k4'));
    const peer = await open(new MemoryStore(), 'B', c.now);
    await syncOneWay(a1, peer);
    await a1.close();

    // A comes back from the copy. A member that joins and syncs with it first must not take its
    // versions 4-5 as had, and A must take them back, not keep the old k1 for good.
    const restored = await open(copy, 'A', c.now);
    const joiner = await open(new MemoryStore(), 'C', c.now);
    await syncOneWay(restored, joiner);
    expect(joiner.summary().toString()).toBe('A:{1-3}');
    // a session: A sees the peer's summary first, then its records
    expect(await restored.noteClaims(peer.summary())).toBe(3);
    expect(restored.summary().toString()).toBe('A:{1-3}');
    await syncOneWay(peer, restored); // records 5 and 6, then version 4 as cleared
    expect(restored.summary().toString()).toBe('A:{1-6}');
    expect(await value(restored, 'k1')).toBe('k1-new');
    expect(await value(restored, 'k4')).toBe('k4');
    await syncOneWay(restored, joiner);
    expect(await dump(joiner)).toEqual(await dump(peer));
    // and its next write takes a version no one has
    c.advance(1);
    const w = await restored.write('k5', b('k5'));
    expect(w.seq).toBe(7);
    await syncOneWay(restored, peer);
    expect(await value(peer, 'k5')).toBe('k5');
  });
});

describe('StateStore: anti-entropy', () => {
  it('converges two diverged stores, sending superseded versions as cleared ranges', async () => {
    const c = clock();
    const a = await open(new MemoryStore(), 'A', c.now);
    const bb = await open(new MemoryStore(), 'B', c.now);
    for (let i = 0; i < 100; i++) {
      c.advance(1);
      await a.write(`k${i % 10}`, b(`a${i}`));
      await bb.write(`k${(i % 7) + 5}`, b(`b${i}`));
    }
    await bb.write('k5', null);
    const { toA, toB } = await syncPair(a, bb);
    expect(await dump(a)).toEqual(await dump(bb));
    expect(a.summary().equals(bb.summary())).toBe(true);
    expect(a.summary().toString()).toBe('A:{1-100} B:{1-101}');
    // Only versions the sender holds (its keys' current records) travel as records; the rest of
    // what the receiver lacked goes as cleared ranges. B holds 7 keys; A's 100 versions are split.
    expect(toA.records).toBe(7);
    expect(toA.totals.cleared).toBe(94);
    expect(toB.records + toB.totals.cleared).toBe(100);
    expect(toB.records).toBeGreaterThanOrEqual(5);
    expect(toB.records).toBeLessThanOrEqual(10);
    // A second round exchanges nothing but the summaries.
    const again = await syncPair(a, bb);
    expect(again.toA.batchBytes + again.toB.batchBytes).toBe(0);
  });

  it('withholds cleared ranges when a planned record is superseded during the session', async () => {
    const c = clock();
    const a = await open(new MemoryStore(), 'A', c.now);
    const bb = await open(new MemoryStore(), 'B', c.now);
    for (let i = 0; i < 10; i++) await a.write('k', b(`${i}`));
    // More records than one index lookup chunk, so later ones are read after the first yield.
    for (let i = 0; i < 600; i++) await a.write(`x${i}`, b('x'));
    const iter = a.changesSince(bb.summary(), { maxRecords: 2 });
    const first = await iter.next();
    expect(first.done).toBe(false);
    await a.write('x599', b('changed')); // supersedes a planned record not read yet
    const rest = [];
    for await (const batch of iter) rest.push(batch);
    expect(rest.every((batch) => batch.cleared.isEmpty)).toBe(true);
    // The next round delivers the rest, cleared ranges included.
    await syncOneWay(a, bb);
    await syncOneWay(a, bb);
    expect(bb.summary().equals(a.summary())).toBe(true);
    expect(await dump(bb)).toEqual(await dump(a));
  });

  it('catches up 10,000 changed keys with bytes at most 1.2x the changed keys + values', async () => {
    const c = clock();
    const a = await open(new MemoryStore(), 'A', c.now);
    const bb = await open(new MemoryStore(), 'B', c.now);
    for (let i = 0; i < 2000; i++) await a.write(`base/${i}`, new Uint8Array(100).fill(1));
    await syncOneWay(a, bb);
    let changed = 0;
    const writes = [];
    for (let i = 0; i < 10_000; i++) {
      if (i % 100 === 0) c.advance(1);
      const key = `svc/${(i * 7919) % 10_000}`;
      const v = new Uint8Array(100).map((_, j) => (i + j) & 0xff);
      writes.push(a.write(key, v));
      changed += key.length + v.length;
    }
    await Promise.all(writes);
    const t0 = performance.now();
    const r = await syncOneWay(a, bb);
    const ms = performance.now() - t0;
    const total = r.summaryBytes + r.batchBytes;
    console.log(
      `catch-up 10k x 100 B: ${r.records} records in ${r.batches} batches, ${total} B ` +
        `(summary ${r.summaryBytes} B) for ${changed} B changed: ratio ${(total / changed).toFixed(4)}, ${ms.toFixed(0)} ms`,
    );
    expect(r.records).toBe(10_000);
    expect(total / changed).toBeLessThanOrEqual(1.2);
    expect(bb.summary().equals(a.summary())).toBe(true);
  });
});

describe('StateStore: tombstone garbage collection', () => {
  it('collects tombstones every member has, or past the horizon, and never resurrects', async () => {
    const c = clock();
    const day = 24 * 3600 * 1000;
    const a = await open(new MemoryStore(), 'A', c.now, { tombstoneHorizonMs: 7 * day });
    const bb = await open(new MemoryStore(), 'B', c.now, { tombstoneHorizonMs: 7 * day });
    await a.write('gone', b('v'));
    await a.write('gone2', b('v'));
    await syncPair(a, bb);
    c.advance(10);
    await a.write('gone', null);
    await a.write('gone2', null);
    // B has not seen the deletes yet: nothing is stable.
    expect(await a.collectGarbage(c.now(), [a.summary(), bb.summary()])).toMatchObject({
      collected: 0,
      remaining: 2,
    });
    await syncPair(a, bb);
    // Stable GC takes two steps: a snapshot in which every member has the deletes, then a call
    // once A has every version any member had in that snapshot.
    expect(await a.collectGarbage(c.now(), [a.summary(), bb.summary()])).toMatchObject({
      collected: 0,
      remaining: 2,
    });
    expect(await a.collectGarbage(c.now(), [a.summary(), bb.summary()])).toMatchObject({
      collected: 2,
      byStable: 2,
      remaining: 0,
    });
    expect(await a.getRecord('gone')).toBeUndefined();
    // Syncing again must not bring the old values back to A, nor send anything.
    const again = await syncPair(a, bb);
    expect(again.toA.records + again.toB.records).toBe(0);
    expect(await a.get('gone')).toBeUndefined();
    expect(await bb.get('gone')).toBeUndefined();
    // B collects by horizon only.
    expect((await bb.collectGarbage(c.now() + 6 * day)).collected).toBe(0);
    expect(await bb.collectGarbage(c.now() + 7 * day)).toMatchObject({
      collected: 2,
      byHorizon: 2,
    });
    // A newcomer gets neither the values nor the tombstones, only cleared versions.
    const n = await open(new MemoryStore(), 'N', c.now);
    const r = await syncOneWay(a, n);
    expect(r.records).toBe(0);
    expect(n.summary().equals(a.summary())).toBe(true);
    expect(await dump(n)).toEqual([]);
  });

  it('does not let a broadcast still under way bring back a value older than a collected delete', async () => {
    const c = clock();
    const a = await open(new MemoryStore(), 'A', () => c.now() - 500); // A's clock is behind
    const bb = await open(new MemoryStore(), 'B', c.now);
    const cc = await open(new MemoryStore(), 'C', c.now);
    const del = await bb.write('k', null);
    c.advance(10);
    // A writes before it has the delete, stamped below it; its broadcast to C is under way.
    const late = await a.write('k', b('old'));
    await syncPair(a, bb); // A gets the delete, B gets A's (superseded) version
    await cc.apply([del]); // C gets the broadcast of the delete
    const members = (): VersionVector[] => [a.summary(), bb.summary(), cc.summary()];
    // Every member has the delete, but C lacks A's older write: C must not collect the delete yet.
    expect(VersionVector.intersectAll(members()).has('B', del.seq)).toBe(true);
    expect((await cc.collectGarbage(c.now(), members())).collected).toBe(0); // takes the snapshot
    expect((await cc.collectGarbage(c.now(), members())).collected).toBe(0); // C lacks A's version
    expect((await cc.apply([late])).superseded).toBe(1);
    expect((await cc.collectGarbage(c.now(), members())).collected).toBe(1);
    expect((await cc.apply([late])).duplicates).toBe(1);
    expect(await cc.get('k')).toBeUndefined();
  });
});
