// Shared pieces of the benchmarks: figures are printed and written as JSON to bench/results/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export interface BenchReport {
  /** The benchmark's name, as given to `npm run bench -- NAME`. */
  name: string;
  /** When and where it ran. */
  startedAt: string;
  host: { cpus: number; node: string };
  /** The figures: each a number with its unit in the key (e.g. detect_p50_ms) or a string. */
  figures: Record<string, number | string | boolean>;
  /** Targets from the issue and whether they were met. */
  targets?: Array<{ what: string; target: string; measured: string; met: boolean }>;
  notes?: string[];
}

/** A bad benchmark option: bench/run.ts prints its message, without a stack, and exits 2. */
export class BenchUsageError extends Error {
  readonly code = 'bench_usage';
}

/** A benchmark's options: `--name VALUE` for each value option, `--name` for each switch. */
export interface BenchOptions {
  /** A value option as given, or undefined when absent. */
  str(name: string): string | undefined;
  /**
   * A value option as a positive integer (`dflt` when absent), or a whole number with `min: 0`;
   * anything else throws.
   */
  int(name: string, dflt: number, opts?: { min?: 0 | 1 }): number;
  /** A value option as comma-separated whole numbers, e.g. `10,50` (`dflt` when absent). */
  ints(name: string, dflt: readonly number[]): number[];
  /** Whether a switch was given. */
  has(name: string): boolean;
}

/**
 * Parses a benchmark's arguments: an unknown option, a value option without its value or a
 * switch with one throws BenchUsageError naming it (so does anything that is not an option).
 */
export function benchOptions(
  args: string[],
  spec: { values?: readonly string[]; switches?: readonly string[] },
): BenchOptions {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const v of spec.values ?? []) options[v] = { type: 'string' };
  for (const s of spec.switches ?? []) options[s] = { type: 'boolean' };
  let parsed: Record<string, string | boolean | undefined>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const known = Object.keys(options).map((o) => `--${o}`);
    throw new BenchUsageError(
      `${(err as Error).message.split(/\. To specify|\n/)[0]} (options: ${known.join(', ') || 'none'})`,
    );
  }
  const str = (name: string) => parsed[name] as string | undefined;
  return {
    str,
    int(name, dflt, { min = 1 } = {}) {
      const raw = str(name);
      if (raw === undefined) return dflt;
      if (!(min === 0 ? /^(0|[1-9]\d*)$/ : /^[1-9]\d*$/).test(raw))
        throw new BenchUsageError(
          `--${name} takes a ${min === 0 ? 'whole number' : 'positive integer'}, not ${JSON.stringify(raw)}`,
        );
      return Number(raw);
    },
    ints(name, dflt) {
      const raw = str(name);
      if (raw === undefined) return [...dflt];
      if (!/^\d+(,\d+)*$/.test(raw))
        throw new BenchUsageError(
          `--${name} takes whole numbers separated by commas (e.g. 10,50), not ${JSON.stringify(raw)}`,
        );
      return raw.split(',').map(Number);
    },
    has: (name) => parsed[name] === true,
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function resultsDir(): string {
  return process.env.BENCH_RESULTS_DIR ?? join(process.cwd(), 'bench', 'results');
}

/** Prints the report as a table and writes bench/results/NAME.json. */
export function writeReport(report: BenchReport): string {
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${report.name}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n== ${report.name} ==`);
  for (const [k, v] of Object.entries(report.figures)) console.log(`  ${k.padEnd(44)} ${v}`);
  for (const t of report.targets ?? []) {
    console.log(
      `  target ${t.met ? 'MET ' : 'MISS'} ${t.what}: ${t.measured} (target ${t.target})`,
    );
  }
  for (const n of report.notes ?? []) console.log(`  note: ${n}`);
  console.log(`  written to ${file}`);
  return file;
}

/** CPU seconds (user + system) used so far by these processes, from /proc (Linux). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the command name: state is [0], utime [11], stime [12] (clock ticks, 100/s)
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return ticks / 100;
}

/**
 * TCP segments this host has sent so far, all processes and interfaces (`OutSegs` of
 * /proc/net/snmp; NaN where there is none). Every message between agents on one host is at least
 * one, so the count per operation is a steadier measure of its messages than CPU time.
 */
export function tcpSegmentsSent(): number {
  try {
    const [names, values] = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Tcp:'))
      .map((l) => l.split(/\s+/));
    return Number(values[names.indexOf('OutSegs')]);
  } catch {
    return NaN;
  }
}

/** Cores used by these processes over the next `ms` (CPU seconds / wall seconds). */
export async function coresUsed(pids: readonly number[], ms: number): Promise<number> {
  const c0 = cpuSeconds(pids);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return Math.round(((cpuSeconds(pids) - c0) / ((performance.now() - t0) / 1000)) * 1000) / 1000;
}
