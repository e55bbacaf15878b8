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

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = s / 60;
  if (m < 120) return `${m.toFixed(0)}m`;
  const h = m / 60;
  if (h < 48) return `${h.toFixed(0)}h`;
  return `${(h / 24).toFixed(0)}d`;
}
