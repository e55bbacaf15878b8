// Disk-heavy tests of the image store: SIGKILL of a writer at random instants, and a durable
// (fsync) import/export of a bigger image.
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkStore } from '../../storage/chunks/index.js';
import { exportImage, importImage } from '../../storage/images/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
// The chunk store and what it imports (no packages), transpiled for a child process.
const SOURCES = [
  'storage/errors.ts',
  'storage/chunks/store.ts',
  'storage/chunks/fastcdc.ts',
  'storage/chunks/hash.ts',
  'storage/chunks/keyed-lock.ts',
  'storage/chunks/fs-util.ts',
];

const WRITER = `
import { randomBytes } from 'node:crypto';
import { ChunkStore } from './storage/chunks/store.js';
const store = await ChunkStore.open(process.argv[2]);
process.stdout.write('ready\\n');
for (;;) {
  const bytes = randomBytes(1 + Math.floor(Math.random() * 1024 * 1024));
  const { hash } = await store.add(bytes);
  process.stdout.write(hash + '\\n'); // acknowledged: put() resolved
}
`;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'es-images-int-'));
  const out = join(work, 'child');
  for (const src of SOURCES) {
    const code = ts.transpileModule(await readFile(join(ROOT, src), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const dest = join(out, src.replace(/\.ts$/, '.js'));
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, code);
  }
  await writeFile(join(out, 'package.json'), '{"type":"module"}');
  await writeFile(join(out, 'writer.js'), WRITER);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs the writer until it has acknowledged some chunks, waits a random moment, SIGKILLs it. */
function runAndKill(storeDir: string, killAfterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(work, 'child', 'writer.js'), storeDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked: string[] = [];
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l === 'ready') timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        else acked.push(l);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited with ${code ?? signal}`));
    });
  });
}

describe('chunk store under SIGKILL', () => {
  it('never serves a half-written chunk and keeps every acknowledged one', async () => {
    const storeDir = join(work, 'killed');
    const acked = new Set<string>();
    for (let round = 0; round < 8; round++) {
      for (const h of await runAndKill(storeDir, 30 + Math.floor(Math.random() * 250)))
        acked.add(h);
      const store = await ChunkStore.open(storeDir);
      expect(await readdir(join(storeDir, 'tmp'))).toEqual([]);
      let n = 0;
      for await (const hash of store.list()) {
        const bytes = await store.get(hash); // verifies: throws ChunkCorruptError if torn
        expect(createHash('sha256').update(bytes!).digest('hex')).toBe(hash);
        n++;
      }
      for (const h of acked) expect(await store.has(h), h).toBe(true);
      expect(store.stats().chunks).toBe(n);
      expect(await readdir(join(storeDir, 'quarantine'))).toEqual([]);
      await store.close();
    }
    expect(acked.size).toBeGreaterThan(8);
  });
});

describe('durable import and export', () => {
  it('imports and exports 64 MiB with fsync on', async () => {
    const store = await ChunkStore.open(join(work, 'big'));
    const size = 64 << 20;
    const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16));
    const zeros = Buffer.alloc(1 << 20);
    const whole = createHash('sha256');
    async function* source(): AsyncIterable<Uint8Array> {
      for (let o = 0; o < size; o += zeros.length) {
        const b = cipher.update(zeros);
        whole.update(b);
        yield b;
      }
    }
    const t0 = performance.now();
    const r = await importImage(source(), store);
    const t1 = performance.now();
    expect(r.digest).toBe(`sha256:${whole.digest('hex')}`);
    const manifest = {
      name: 'big',
      tag: 't',
      ...r,
      creator: '',
      createdAt: 0,
      version: 1,
      placement: { sites: 'all' as const, copies: 1 },
      signature: new Uint8Array(64),
    };
    const check = createHash('sha256');
    let n = 0;
    for await (const b of exportImage(manifest, store)) {
      check.update(b);
      n += b.length;
    }
    const t2 = performance.now();
    expect(n).toBe(size);
    expect(`sha256:${check.digest('hex')}`).toBe(r.digest);
    console.log(
      `import ${(size / 1e6 / ((t1 - t0) / 1000)).toFixed(0)} MB/s (fsync), ` +
        `export ${(size / 1e6 / ((t2 - t1) / 1000)).toFixed(0)} MB/s, ${r.chunks.length} chunks`,
    );
    await store.close();
  });
});
