// `npm run bench -- NAME [options]`: runs one benchmark, prints its figures and writes them to
// bench/results/NAME.json. Each benchmark runs its baseline in the same run and reports ratios.
import '../agent/polyfill.js';
import { BenchUsageError } from './lib.js';

interface BenchModule {
  description: string;
  run(args: string[]): Promise<void>;
}

const BENCHES: Record<string, () => Promise<BenchModule>> = {
  membership: async () => (await import('./membership.js')).default,
  discovery: async () => (await import('./discovery.js')).default,
  kv: async () => (await import('./kv.js')).default,
  images: async () => (await import('./images.js')).default,
};

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (!name || name === '--help' || name === '-h' || !(name in BENCHES)) {
    const lines = ['usage: npm run bench -- NAME [options]', '', 'benchmarks:'];
    for (const [n, load] of Object.entries(BENCHES)) {
      let desc = '';
      try {
        desc = (await load()).description;
      } catch {
        desc = '(not available)';
      }
      lines.push(`  ${n.padEnd(12)} ${desc}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (name && name !== '--help' && name !== '-h') {
      process.stderr.write(`unknown benchmark ${JSON.stringify(name)}\n`);
      process.exit(2);
    }
    return;
  }
  const mod = await BENCHES[name]();
  await mod.run(args);
}

main().catch((err: unknown) => {
  if (err instanceof BenchUsageError) {
    process.stderr.write(`${process.argv[2]}: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
