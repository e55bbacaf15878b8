// Health checks run by the agent a service is registered on: http (2xx passes), tcp (a connection
// opens), ttl (passes while refreshed within its ttl). Each check runs at once and then every
// interval; a run that overruns its timeout fails.
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect } from 'node:net';
import type { CheckDefinition } from './registration.js';
import type { Health } from './types.js';

export type CheckListener = (health: Health, output: string) => void;

/** Redirects an http check follows, as fetch did (a 3xx past them fails). */
export const HTTP_CHECK_MAX_REDIRECTS = 5;

/**
 * GETs `url`: 2xx passes, after up to HTTP_CHECK_MAX_REDIRECTS redirects, all within `timeoutMs`.
 * node:http rather than fetch, whose "bad ports" list (1, 6000, 6665-6669 and ~75 more) refused
 * some services' ports outright, and whose every connection failure read only "fetch failed".
 */
export async function runHttpCheck(url: string, timeoutMs: number): Promise<[Health, string]> {
  const deadline = Date.now() + timeoutMs;
  let target = url;
  for (let hop = 0; ; hop++) {
    const [health, out, location] = await getOnce(target, deadline - Date.now(), timeoutMs);
    if (location === undefined || hop === HTTP_CHECK_MAX_REDIRECTS) return [health, out];
    try {
      target = new URL(location, target).href;
    } catch {
      return ['failing', `${out}: bad redirect ${JSON.stringify(location)}`];
    }
  }
}

/** One GET: [health, output, the redirect's location for a 3xx that has one]. */
function getOnce(
  url: string,
  remainingMs: number,
  timeoutMs: number,
): Promise<[Health, string, string?]> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : url.startsWith('http:') ? httpGet : null;
    if (!get || remainingMs <= 0) {
      resolve(['failing', get ? `no answer within ${timeoutMs}ms` : `not an http(s) URL: ${url}`]);
      return;
    }
    let req: ReturnType<typeof httpGet>;
    const done = (h: Health, out: string, location?: string) => {
      clearTimeout(timer);
      req.destroy();
      resolve([h, out, location]);
    };
    const timer = setTimeout(() => done('failing', `no answer within ${timeoutMs}ms`), remainingMs);
    try {
      req = get(url, { headers: { 'user-agent': 'edgeswarm-health-check' } }, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        const location = status >= 300 && status < 400 ? res.headers.location : undefined;
        done(status >= 200 && status < 300 ? 'passing' : 'failing', `HTTP ${status}`, location);
      });
    } catch (err) {
      clearTimeout(timer);
      resolve(['failing', (err as Error).message]);
      return;
    }
    req.once('error', (err: NodeJS.ErrnoException) => done('failing', describeError(err)));
  });
}

/** "ECONNREFUSED", "ENOTFOUND", "not HTTP (HPE_INVALID_CONSTANT)", or the message. */
function describeError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? (err as { errors?: NodeJS.ErrnoException[] }).errors?.[0]?.code;
  if (code?.startsWith('HPE_')) return `not an HTTP answer (${code})`;
  return code ?? err.message;
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
    sock.once('error', (err: NodeJS.ErrnoException) => done('failing', describeError(err)));
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
