// FETCH_BLOCKED_PORTS (agent/fetch-ports.ts) is a copy of the Fetch standard's "bad ports": this
// checks it against the fetch of the Node running the tests, so a Node that changes its list
// fails here instead of letting the agent listen where the CLI cannot reach it.
import { describe, expect, it } from 'vitest';
import { FETCH_BLOCKED_PORTS, fetchBlockedReason } from '../../../agent/fetch-ports.js';

/** Whether fetch refuses `port` before connecting ("bad port"). */
async function refused(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) });
    return false;
  } catch (err) {
    return (err as { cause?: Error }).cause?.message === 'bad port';
  }
}

describe('fetch-blocked ports', () => {
  it("every listed port is one this Node's fetch refuses, and neighbours of the list are not", async () => {
    for (const port of FETCH_BLOCKED_PORTS) expect(await refused(port), String(port)).toBe(true);
    for (const port of [2, 6001, 6664, 6670, 7780, 8600])
      expect(await refused(port), String(port)).toBe(false);
  });

  it('names the port in the reason, and has none for others', () => {
    expect(fetchBlockedReason(6666)).toMatch(/^port 6666 is one that fetch/);
    expect(fetchBlockedReason(7780)).toBeUndefined();
  });
});
