// The anti-entropy frames of catalogs: fitCatalogs takes what fits in one frame (bytes and count),
// so a frame never reaches the receiver's limit and every frame carries at least one catalog.
import { describe, expect, it } from 'vitest';
import { MAX_NODE_CATALOG_BYTES } from '../../../membership/catalog/codec.js';
import {
  decodeSync,
  encodeSync,
  fitCatalogs,
  MAX_CATALOGS_PER_REPLY,
  MAX_SYNC_CATALOG_BYTES,
  MAX_SYNC_FRAME,
} from '../../../membership/catalog/sync.js';

const blob = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe('fitCatalogs', () => {
  it('sends 30 catalogs of ~400 KB (12 MB, over the 8 MiB frame) in frames under the limit', () => {
    let left = Array.from({ length: 30 }, (_, i) => blob(400_000, i));
    let frames = 0;
    while (left.length > 0) {
      const { take, more } = fitCatalogs(left);
      expect(take.length).toBeGreaterThan(0);
      const frame = encodeSync({ t: 'exchange', push: take, want: [] });
      expect(frame.length).toBeLessThanOrEqual(MAX_SYNC_CATALOG_BYTES + 64);
      expect(frame.length).toBeLessThan(MAX_SYNC_FRAME);
      const back = decodeSync(frame);
      expect(back.t === 'exchange' && back.push.length).toBe(take.length);
      left = left.slice(take.length);
      expect(more).toBe(left.length > 0);
      frames++;
    }
    expect(frames).toBe(Math.ceil(30 / Math.floor(MAX_SYNC_CATALOG_BYTES / 400_009)));
  });

  it('always carries at least one catalog of the largest size a peer accepts', () => {
    expect(MAX_SYNC_CATALOG_BYTES).toBeGreaterThanOrEqual(3 * (MAX_NODE_CATALOG_BYTES + 9));
    const { take, more } = fitCatalogs([
      blob(MAX_NODE_CATALOG_BYTES),
      blob(MAX_NODE_CATALOG_BYTES),
    ]);
    expect(take.length).toBe(2);
    expect(more).toBe(false);
  });

  it('caps the count too, and keeps the order', () => {
    const list = Array.from({ length: MAX_CATALOGS_PER_REPLY + 10 }, (_, i) => blob(10, i % 256));
    const { take, more } = fitCatalogs(list);
    expect(take.length).toBe(MAX_CATALOGS_PER_REPLY);
    expect(take[0]).toBe(list[0]);
    expect(more).toBe(true);
    expect(fitCatalogs([])).toEqual({ take: [], more: false });
  });
});
