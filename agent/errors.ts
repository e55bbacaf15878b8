// Errors of the agent module. Each class has a stable `name` and `code`; the HTTP layer maps them
// to statuses and the CLI to exit codes. Never show a stack trace to a user for any of these.
import { formatHostPort } from './host-port.js';

export class EdgeswarmError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'EdgeswarmError';
  }
}

/** A bad flag, environment variable or config-file value. The CLI exits 2. */
export class ConfigError extends EdgeswarmError {
  readonly key: string;
  constructor(key: string, message: string) {
    super('config_invalid', `${key}: ${message}`);
    this.key = key;
    this.name = 'ConfigError';
  }
}

/** Bad command-line usage (unknown command, missing argument). The CLI exits 2. */
export class UsageError extends EdgeswarmError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'UsageError';
  }
}

/** What a file system error code means, for messages an operator reads. */
const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
  EIO: 'input/output error',
};

/** A file system error in words, with its code (`no such file or directory (ENOENT)`). */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && FS_REASONS[code]) return `${FS_REASONS[code]} (${code})`;
  return code ?? (err instanceof Error ? err.message : String(err));
}

/**
 * A file a command was given could not be read or written (missing, no permission, a full disk):
 * a failure, exit 1, where a path of the wrong kind (a directory for a file) is bad usage.
 */
export class LocalFileError extends EdgeswarmError {
  constructor(message: string) {
    super('local_file', message);
    this.name = 'LocalFileError';
  }
}

/** An error with an HTTP status, raised by route handlers for bad requests. */
export class HttpError extends EdgeswarmError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
    this.name = 'HttpError';
  }
}

/** The data directory is held by another running agent. */
export class DataDirLockedError extends EdgeswarmError {
  constructor(dir: string) {
    super('data_dir_locked', `data directory ${dir} is in use by another agent`);
    this.name = 'DataDirLockedError';
  }
}

/**
 * LevelDB found a database in the data directory corrupted (a bad block, table or manifest) while
 * the agent started. The CLI exits 1 with what to do. Restoring the directory from a copy is not
 * among the options: see docs/operations.md ("A data directory restored from an older copy").
 */
export class DataCorruptedError extends EdgeswarmError {
  constructor(dir: string, detail: string, options?: ErrorOptions) {
    super(
      'data_corrupted',
      `a database in the data directory ${dir} is corrupted (${detail}). Keep a copy of the directory for a bug report, then start this agent with an empty data directory holding only the cluster key: it joins as a new member and takes the cluster's state and its images back from its peers; what only it had (KV writes no peer had received, services registered through its API) is lost`,
      options,
    );
    this.name = 'DataCorruptedError';
  }
}

/** LevelDB's "Corruption: ..." text if `err` (or an error it was caused by) is a corruption. */
export function levelCorruption(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'LEVEL_CORRUPTION' || e.message.startsWith('Corruption:'))
      return e.message.split('\n')[0];
  }
  return undefined;
}

/**
 * The cluster-key layer's check failed (agent/private-network.ts): the key proof after the peer's
 * nonce was not its proof under our key, so it holds another cluster key.
 */
export class ClusterKeyMismatchError extends EdgeswarmError {
  constructor() {
    super(
      'cluster_key_mismatch',
      'the peer has another cluster key (or runs another edgeswarm version)',
    );
    this.name = 'ClusterKeyMismatchError';
  }
}

/** What came instead of a nonce was text (an HTTP server, say): no edgeswarm agent is there. */
export class NotAnAgentError extends EdgeswarmError {
  /** The first line of what it sent. */
  readonly answer: string;
  constructor(answer: string) {
    super('not_an_agent', `not an edgeswarm agent (it answered ${JSON.stringify(answer)})`);
    this.name = 'NotAnAgentError';
    this.answer = answer;
  }
}

/**
 * A listen address could not be bound (in use, not an address of this host). Made from libp2p's
 * error, whose text is several lines with stack frames, as one line per address.
 */
export class ListenError extends EdgeswarmError {
  /** "cannot listen on DETAIL", after "KEY: " when the setting is named. */
  constructor(detail: string, options?: ErrorOptions & { key?: string }) {
    const key = options?.key ? `${options.key}: ` : '';
    super('listen_failed', `${key}cannot listen on ${detail}`, options);
    this.name = 'ListenError';
  }

  /** The API or DNS server could not bind: "api: cannot listen on H:P (address in use)". */
  static forKey(key: 'api' | 'dns', host: string, port: number, err: Error): ListenError {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code ? (BIND_ERRORS[code] ?? code) : err.message;
    return new ListenError(`${formatHostPort({ host, port })} (${why})`, { cause: err, key });
  }

  /**
   * From libp2p's UnsupportedListenAddressesError ("  /ip4/…: Error: listen EADDRINUSE: …"), for
   * the `listen` setting.
   */
  static fromLibp2p(err: Error): ListenError {
    const lines = err.message
      .split('\n')
      .map((l) => /^\s*(\/\S+): (?:Error: )?(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => {
        const code = /\b(E[A-Z]+)\b/.exec(m[2])?.[1];
        return `${m[1]} (${(code && BIND_ERRORS[code]) ?? m[2]})`;
      });
    return new ListenError(lines.length > 0 ? lines.join('; ') : err.message.split('\n')[0], {
      cause: err,
      key: 'listen',
    });
  }
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address in use',
  EADDRNOTAVAIL: 'no such address on this host',
  EACCES: 'permission denied',
};

/** A failure reported by the agent's HTTP API to a client command. */
export class ApiError extends EdgeswarmError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
    this.name = 'ApiError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
