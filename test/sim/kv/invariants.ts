// Invariants of the replicated key/value state, checked by the simulator.
import { compareRecords, sameRecord, type StateRecord } from '../../../storage/state/index.js';
import type { SimCluster } from './cluster.js';

function show(r: StateRecord | undefined): string {
  if (r === undefined) return 'absent';
  return `${r.value === null ? 'tombstone' : `value(${r.value.length}B)`} ${r.origin}:${r.seq}@${r.hlc.wall}.${r.hlc.counter}`;
}

export async function currentRecords(
  cluster: SimCluster,
  i: number,
): Promise<Map<string, StateRecord>> {
  const out = new Map<string, StateRecord>();
  for await (const r of cluster.replicas[i].store!.records()) out.set(r.key, r);
  return out;
}

/**
 * The state of replica i is exactly the last-writer-wins merge of the acknowledged writes whose
 * versions it has (held or cleared), except that a key whose winner is a tombstone may be absent
 * (collected). This catches a lost write (a version had but its value missing or older), a phantom
 * (a value no acknowledged write produced) and a resurrection (an older value under a later delete).
 */
export async function checkReplicaState(
  cluster: SimCluster,
  i: number,
): Promise<Map<string, StateRecord>> {
  const store = cluster.replicas[i].store!;
  const expected = new Map<string, StateRecord>();
  for (const [origin, set] of store.summary().entries()) {
    for (const seq of set) {
      const w = cluster.acked.get(`${origin}\0${seq}`);
      if (w === undefined)
        throw new Error(`${store.nodeId} has version ${origin}:${seq} nobody wrote`);
      const e = expected.get(w.key);
      if (e === undefined || compareRecords(w, e) > 0) expected.set(w.key, w);
    }
  }
  const actual = await currentRecords(cluster, i);
  for (const key of new Set([...expected.keys(), ...actual.keys()])) {
    const exp = expected.get(key);
    const act = actual.get(key);
    const ok =
      act === undefined
        ? exp === undefined || exp.value === null
        : exp !== undefined && sameRecord(act, exp) && bytesEqual(act.value, exp.value);
    if (!ok) {
      throw new Error(
        `${store.nodeId} key ${key}: holds ${show(act)}, its versions say ${show(exp)}`,
      );
    }
  }
  return expected;
}

function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, k) => x === b[k]);
}

/**
 * A replica's record of a key never goes back in LWW order (across restarts too), and a value
 * never vanishes unless a later delete (collected since) is among the versions the replica has.
 * `highest` is kept by the caller per replica; `expected` comes from checkReplicaState.
 */
export async function checkMonotonic(
  cluster: SimCluster,
  i: number,
  highest: Map<string, StateRecord>,
  expected: Map<string, StateRecord>,
): Promise<void> {
  const id = cluster.replicas[i].id;
  const actual = await currentRecords(cluster, i);
  for (const [key, act] of actual) {
    const h = highest.get(key);
    if (h !== undefined && compareRecords(act, h) < 0) {
      throw new Error(`${id} key ${key} went back from ${show(h)} to ${show(act)}`);
    }
    highest.set(key, act);
  }
  for (const [key, h] of highest) {
    if (actual.has(key)) continue;
    const e = expected.get(key);
    if (e === undefined || e.value !== null || compareRecords(e, h) < 0) {
      throw new Error(`${id} key ${key}: ${show(h)} vanished (latest version had: ${show(e)})`);
    }
    // Collected: from now on only a write later than that delete may appear.
    highest.set(key, e);
  }
}

/** After quiescence: every replica has the same summary and the same live data, and every key
 * holds its latest acknowledged write (or is absent when that write is a delete). */
export async function checkConverged(cluster: SimCluster): Promise<{ keys: number; live: number }> {
  const latest = new Map<string, StateRecord>();
  for (const w of cluster.acked.values()) {
    const e = latest.get(w.key);
    if (e === undefined || compareRecords(w, e) > 0) latest.set(w.key, w);
  }
  const first = cluster.replicas[0].store!;
  let live = 0;
  for (let i = 0; i < cluster.replicas.length; i++) {
    const store = cluster.replicas[i].store!;
    if (!store.summary().equals(first.summary())) {
      throw new Error(`${store.nodeId} summary ${store.summary()} differs from ${first.summary()}`);
    }
    const actual = await currentRecords(cluster, i);
    live = 0;
    for (const [key, w] of latest) {
      const act = actual.get(key);
      if (w.value === null) {
        if (act !== undefined && !(act.value === null && sameRecord(act, w))) {
          throw new Error(`${store.nodeId} key ${key}: deleted last, holds ${show(act)}`);
        }
      } else {
        live++;
        if (act === undefined || !sameRecord(act, w) || !bytesEqual(act.value, w.value)) {
          throw new Error(
            `${store.nodeId} key ${key}: last write ${show(w)} lost, holds ${show(act)}`,
          );
        }
      }
    }
    for (const key of actual.keys()) {
      if (!latest.has(key)) throw new Error(`${store.nodeId} holds ${key} nobody wrote`);
    }
  }
  return { keys: latest.size, live };
}
