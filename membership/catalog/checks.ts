// Health checks run by the agent a service is registered on: http (2xx passes), tcp (a connection
// opens), ttl (passes while refreshed within its ttl). Each check runs at once and then every
// interval; a run that overruns its timeout fails.
import { connect } from 'node:net';
import type { CheckDefinition } from './registration.js';
import type { Health } from './types.js';

export type CheckListener = (health: Health, output: string) => void;

export async function runHttpCheck(url: string, timeoutMs: number): Promise<[Health, string]> {
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { 'user-agent': 'edgeswarm-health-check' },
    });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return ['passing', `HTTP ${res.status}`];
    return ['failing', `HTTP ${res.status}`];
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError') return ['failing', `no answer within ${timeoutMs}ms`];
    return ['failing', e.cause?.code ?? e.message];
  }
}

export function runTcpCheck(target: string, timeoutMs: number): Promise<[Health, string]> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(target.slice(i + 1));
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (h: Health, out: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve([h, out]);
    };
    const timer = setTimeout(
      () => done('failing', `no connection within ${timeoutMs}ms`),
      timeoutMs,
    );
    sock.once('connect', () => done('passing', 'connected'));
    sock.once('error', (err: NodeJS.ErrnoException) => done('failing', err.code ?? err.message));
  });
}

export class HealthCheck {
  readonly def: CheckDefinition;
  #health: Health;
  #output: string;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stopped = true;
  readonly #listener: CheckListener;

  constructor(def: CheckDefinition, listener: CheckListener) {
    this.def = def;
    this.#listener = listener;
    // a ttl check fails until its first pass; http and tcp checks run at once
    this.#health = 'failing';
    this.#output = def.kind === 'ttl' ? 'waiting for the first ttl pass' : 'not run yet';
  }

  get health(): Health {
    return this.#health;
  }

  get output(): string {
    return this.#output;
  }

  /** Starts the check; resolves after its first run (at once for ttl checks). */
  start(): Promise<void> {
    if (!this.#stopped) return Promise.resolve();
    this.#stopped = false;
    if (this.def.kind === 'ttl') return Promise.resolve();
    return this.#run();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** For ttl checks: a pass is good for `ttl`; a fail counts at once. */
  report(health: Health, output?: string): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#set(health, output ?? (health === 'passing' ? 'ttl passed' : 'ttl reported failing'));
    if (health === 'passing') {
      this.#timer = setTimeout(
        () => this.#set('failing', `ttl of ${this.def.interval}ms expired`),
        this.def.interval,
      );
      this.#timer.unref?.();
    }
  }

  #set(health: Health, output: string): void {
    const changed = health !== this.#health;
    this.#health = health;
    this.#output = output;
    if (changed) this.#listener(health, output);
  }

  async #run(): Promise<void> {
    if (this.#stopped || this.#running) return;
    this.#running = true;
    try {
      const [h, out] =
        this.def.kind === 'http'
          ? await runHttpCheck(this.def.target, this.def.timeout)
          : await runTcpCheck(this.def.target, this.def.timeout);
      if (!this.#stopped) this.#set(h, out);
    } finally {
      this.#running = false;
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => void this.#run(), this.def.interval);
      this.#timer.unref?.();
    }
  }
}
