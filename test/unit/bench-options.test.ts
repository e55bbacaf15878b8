// The benchmarks' option parser (bench/lib.ts): bad options are named, never a stack.
import { describe, expect, it } from 'vitest';
import { benchOptions, BenchUsageError } from '../../bench/lib.js';

const spec = { values: ['n', 'rate', 'sizes'], switches: ['skip-lab'] };

describe('benchOptions', () => {
  it('reads values, numbers with defaults and switches', () => {
    const o = benchOptions(
      ['--n', '25', '--skip-lab', '--rate', '25mbit', '--sizes', '0,50'],
      spec,
    );
    expect(o.int('n', 50)).toBe(25);
    expect(o.ints('sizes', [10])).toEqual([0, 50]);
    expect(o.str('rate')).toBe('25mbit');
    expect(o.has('skip-lab')).toBe(true);
    const none = benchOptions([], spec);
    expect(none.int('n', 50)).toBe(50);
    expect(none.ints('sizes', [10, 50])).toEqual([10, 50]);
    expect(none.str('rate')).toBeUndefined();
    expect(none.has('skip-lab')).toBe(false);
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'.*options: --n, --rate, --sizes, --skip-lab/],
    [['--n'], /--n <value>' argument missing/],
    [['--skip-lab=yes'], /--skip-lab' does not take an argument/],
    [['stray'], /Unexpected argument 'stray'/],
  ])('refuses %j, naming it', (args, message) => {
    expect(() => benchOptions(args, spec)).toThrow(BenchUsageError);
    expect(() => benchOptions(args, spec)).toThrow(message);
  });

  it.each(['abc', '0', '-1', '2.5', 'Infinity'])('refuses --n %s: not a positive integer', (v) => {
    const o = benchOptions([`--n=${v}`], spec);
    expect(() => o.int('n', 50)).toThrow(`--n takes a positive integer, not "${v}"`);
  });

  it('takes 0 where a whole number is asked for, and names the kind of number', () => {
    expect(benchOptions(['--n=0'], spec).int('n', 60, { min: 0 })).toBe(0);
    expect(benchOptions([], spec).int('n', 60, { min: 0 })).toBe(60);
    for (const v of ['-1', '1.5', '01', 'x'])
      expect(() => benchOptions([`--n=${v}`], spec).int('n', 60, { min: 0 })).toThrow(
        `--n takes a whole number, not "${v}"`,
      );
  });

  it.each(['', '10,', 'a,b', '10;50'])('refuses --sizes %j: not a list of whole numbers', (v) => {
    const o = benchOptions([`--sizes=${v}`], spec);
    expect(() => o.ints('sizes', [10])).toThrow(/--sizes takes whole numbers separated by commas/);
  });
});
