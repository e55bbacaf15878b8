// Durations as people write them in flags, the config file and registrations: "250ms", "10s",
// "1.5m", "2h", "7d", or a plain number of milliseconds. One parser for all of them, here because
// both the agent's config and the catalog's registrations (which the agent depends on) use it.

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "250ms", "10s", "1.5m", "2h", "7d" or a plain number of milliseconds → ms; else undefined. */
export function parseDuration(input: unknown): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(input);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']);
}
