// Joining through seed addresses: each address is dialled until it answers, with exponential
// backoff and jitter, in the background. A dial always carries a timeout: a peer with another
// cluster key never completes the private-network handshake and would otherwise hang.
import { ClusterKeyMismatchError, NotAnAgentError } from './errors.js';
import type { Logger } from './logger.js';

/** First retry after this many ms; doubles each time up to JOIN_BACKOFF_MAX_MS. */
export const JOIN_BACKOFF_INITIAL_MS = 500;
/** Longest wait between two attempts at the same address (ms). */
export const JOIN_BACKOFF_MAX_MS = 30_000;
/** Time allowed for one dial + join exchange (ms). */
export const JOIN_ATTEMPT_TIMEOUT_MS = 5_000;

export interface JoinResult {
  addr: string;
  peerId?: string;
  error?: string;
}

/** Dials `addr` and runs the membership join with it; resolves with the peer id. */
export type JoinFn = (addr: string, signal: AbortSignal) => Promise<string>;

export class Joiner {
  readonly #join: JoinFn;
  readonly #log: Logger;
  readonly #pending = new Map<string, { timer?: NodeJS.Timeout; attempt: number }>();
  readonly #controller = new AbortController();
  #stopped = false;

  constructor(join: JoinFn, log: Logger) {
    this.#join = join;
    this.#log = log;
  }

  /** Tries every address once now, in parallel. */
  async joinNow(addrs: readonly string[], signal?: AbortSignal): Promise<JoinResult[]> {
    return Promise.all(addrs.map((addr) => this.#attempt(addr, signal)));
  }

  /** Keeps trying each address in the background until it answers (or stop()). */
  joinInBackground(addrs: readonly string[]): void {
    for (const addr of addrs) {
      if (this.#pending.has(addr) || this.#stopped) continue;
      this.#pending.set(addr, { attempt: 0 });
      this.#schedule(addr, 0);
    }
  }

  /** Addresses still being retried. */
  pending(): string[] {
    return [...this.#pending.keys()];
  }

  stop(): void {
    this.#stopped = true;
    this.#controller.abort();
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
  }

  #schedule(addr: string, delay: number): void {
    const p = this.#pending.get(addr);
    if (!p || this.#stopped) return;
    p.timer = setTimeout(() => void this.#retry(addr), delay);
    p.timer.unref?.();
  }

  async #retry(addr: string): Promise<void> {
    const p = this.#pending.get(addr);
    if (!p || this.#stopped) return;
    const res = await this.#attempt(addr, this.#controller.signal);
    if (this.#stopped) return;
    if (res.peerId) {
      this.#pending.delete(addr);
      this.#log.info({ addr, peerId: res.peerId }, 'joined');
      return;
    }
    p.attempt++;
    const base = Math.min(
      JOIN_BACKOFF_MAX_MS,
      JOIN_BACKOFF_INITIAL_MS * 2 ** Math.min(p.attempt - 1, 16),
    );
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    (p.attempt <= 3 ? this.#log.info.bind(this.#log) : this.#log.debug.bind(this.#log))(
      { addr, attempt: p.attempt, retryInMs: delay, err: res.error },
      'join attempt failed; will retry',
    );
    this.#schedule(addr, delay);
  }

  async #attempt(addr: string, signal?: AbortSignal): Promise<JoinResult> {
    const timeout = AbortSignal.timeout(JOIN_ATTEMPT_TIMEOUT_MS);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const peerId = await this.#join(addr, combined);
      return { addr, peerId };
    } catch (err) {
      const msg = timeout.aborted
        ? `no answer within ${JOIN_ATTEMPT_TIMEOUT_MS} ms (wrong cluster key, or unreachable)`
        : describeJoinError(err as Error);
      return { addr, error: msg };
    }
  }
}

/**
 * A failed dial in words a user can act on. libp2p's own were about its internals: "Missing
 * newline" (an HTTP server answered), "Unexpected EOF - stream closed while reading 0/24 bytes"
 * (something else closed), "Payload identity key ... does not match expected remote identity key".
 * Matched on libp2p's error names and messages; anything else keeps its message.
 */
export function describeJoinError(err: Error): string {
  // the code may be on a cause libp2p wraps; "read ECONNRESET" may carry none at all
  const code =
    (err as NodeJS.ErrnoException).code ?? (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens there)';
  // ours (private-network.ts), perhaps as the cause of libp2p's dial error
  const ours = [err, err.cause];
  if (ours.some((e) => e instanceof ClusterKeyMismatchError))
    return 'the agent there has another cluster key (or runs another edgeswarm version)';
  const text = ours.find((e) => e instanceof NotAnAgentError);
  if (text) return `the handshake failed: ${text.message}`;
  if (
    err.name === 'UnexpectedPeerError' ||
    /does not match expected remote identity/.test(err.message)
  )
    return 'the agent there has another peer id than the address names';
  if (
    code === 'ECONNRESET' ||
    /ECONNRESET|Missing newline|Unexpected EOF|stream closed while reading|InvalidMessage|InvalidDataLength|length too long/.test(
      `${err.name} ${err.message}`,
    )
  )
    return 'the handshake failed: not an edgeswarm agent there, or one with another cluster key';
  return err.message;
}
