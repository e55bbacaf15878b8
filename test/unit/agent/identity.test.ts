// The files an agent makes in its data directory: a cluster key made by one of several agents
// started together on one key file is the one all of them use.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateClusterKey, writeFileExclusive } from '../../../agent/identity.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeswarm-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('identity files', () => {
  it('writeFileExclusive writes a new file whole (0600) and never replaces one', () => {
    const file = join(dir, 'x.key');
    expect(writeFileExclusive(file, 'first')).toBe(true);
    // a second writer (another agent a moment later) finds it there: it used to rename its own
    // over it, and the first agent ran with a key no one else had
    expect(writeFileExclusive(file, 'second')).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('first');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('a missing cluster key file is made once; the next start reads it', () => {
    const file = join(dir, 'cluster.key');
    const made = loadOrCreateClusterKey(dir, file);
    expect(made.created).toBe(file);
    const read = loadOrCreateClusterKey(dir, file);
    expect(read.created).toBeUndefined();
    expect(Buffer.from(read.key).equals(Buffer.from(made.key))).toBe(true);
  });
});
