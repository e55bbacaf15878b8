// The CLI's table layout (agent/cli/format.ts).
import { describe, expect, it } from 'vitest';
import { table, TABLE_MAX_COLUMN } from '../../../agent/cli/format.js';

describe('table', () => {
  it('pads columns to their longest cell, and a cell past the cap pushes only its own row', () => {
    expect(
      table(
        ['KEY', 'SIZE'],
        [
          ['a', 1],
          ['bbb', 22],
        ],
      ),
    ).toBe('KEY  SIZE\na    1\nbbb  22');
    // one 4 KiB key padded every row of `kv ls` to 4 KiB
    const long = 'k'.repeat(TABLE_MAX_COLUMN + 1);
    expect(
      table(
        ['KEY', 'SIZE'],
        [
          ['a', 1],
          [long, 2],
        ],
      ).split('\n'),
    ).toEqual(['KEY  SIZE', 'a    1', `${long}  2`]);
  });
});
