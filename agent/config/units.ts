// Parsing of the human units used in flags and the config file: durations, byte sizes, rates.
// Each parser returns undefined for input it does not understand; the schema turns that into a
// message naming the key.

export { parseDuration } from '../../membership/index.js';

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "64KiB", "1MiB", "10MB", "512" (bytes) → bytes. */
export function parseBytes(input: unknown): number | undefined {
  if (typeof input === 'number')
    return Number.isFinite(input) && input >= 0 ? Math.floor(input) : undefined;
  if (typeof input !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b)?\s*$/i.exec(input);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = BYTE_UNITS[unit];
  if (mult === undefined) return undefined;
  return Math.floor(Number(m[1]) * mult);
}

const BIT_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1e3 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
};

/**
 * A rate in bytes per second: "100Mbit", "1Gbit", "10MiB" (per second), "10MB/s", or a plain
 * number of bytes per second. 0 means unlimited.
 */
export function parseRate(input: unknown): number | undefined {
  if (typeof input === 'number') return parseBytes(input);
  if (typeof input !== 'string') return undefined;
  const s = input.trim().replace(/\/s$/i, '').replace(/ps$/i, '');
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?bit)$/i.exec(s);
  if (m) return Math.floor(Number(m[1]) * BIT_UNITS[m[2].toLowerCase()]);
  return parseBytes(s);
}
