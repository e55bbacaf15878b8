// tuneHeap (agent/heap.ts): the agent sets V8's heap growing factor at start, unless node was
// started with one of its own (either spelling), which then wins.
import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, tuneHeap } from '../../../agent/heap.js';

describe('tuneHeap', () => {
  const run = (execArgv: string[]) => {
    const set: string[] = [];
    tuneHeap(execArgv, (f) => set.push(f));
    return set;
  };

  it('sets the growing factor when node was given none', () => {
    expect(run([])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    expect(run(['--cpu-prof', '--max-old-space-size=512'])).toHaveLength(1);
  });

  it("leaves node's own setting alone, in either spelling", () => {
    expect(run(['--heap-growing-percent=50'])).toEqual([]);
    expect(run(['--heap_growing_percent=50'])).toEqual([]);
  });
});
