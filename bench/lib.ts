// Shared pieces of the benchmarks: figures are printed and written as JSON to bench/results/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** Cores used by these processes over the next `ms` (CPU seconds / wall seconds). */
export async function coresUsed(pids: readonly number[], ms: number): Promise<number> {
  const c0 = cpuSeconds(pids);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return Math.round(((cpuSeconds(pids) - c0) / ((performance.now() - t0) / 1000)) * 1000) / 1000;
}
