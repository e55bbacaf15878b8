// V8 heap tuning for an agent process.
//
// V8 lets the old generation grow to a factor of the live heap before it runs a full
// mark-compact, and counts the external memory (Buffers) allocated since the last one against
// that limit. It picks the factor from its own speed estimates, and for an agent, whose live heap
// is small (~35 MB) while images stream through it in Buffers, it picked ~1.7: every ~20 MB of
// Buffers that outlived two scavenges (chunks queued behind a shaped link, in a write group, in a
// read-ahead) started another full collection, 8-40 per agent per 256 MiB image in the lab, with
// its marking threads competing for the cores that move the bytes. A fixed factor of 3 cut that
// to 3-4 and the lab test's time by 9% and 15% in two pairs run alternately (docs/benchmarks.md).
// An idle agent's resident size did not change (98 and 100 MB after two minutes, 12 agents) and a
// loopback pull's peak grew by ~6 MB (208-213 MB without, 216-219 MB with): the limit is a
// ceiling V8 reaches only under allocation.

import { setFlagsFromString } from 'node:v8';

/**
 * The old generation may grow to (1 + this/100) times the live heap before a full collection.
 * Default 200. A `--heap-growing-percent` given to node itself wins.
 */
export const HEAP_GROWING_PERCENT = 200;

/** Applies HEAP_GROWING_PERCENT unless node was started with its own. */
export function tuneHeap(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
): void {
  if (
    execArgv.some(
      (a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'),
    )
  )
    return;
  setFlags(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
