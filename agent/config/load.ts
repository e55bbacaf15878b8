// Loads the agent configuration from defaults, a YAML file, EDGESWARM_* environment variables and
// flags (in rising precedence) and validates it. Any problem is a ConfigError naming the key and
// where the bad value came from.
import { closeSync, openSync, readSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { SwimConfigError } from '../../membership/errors.js';
import { resolveSwimConfig } from '../../membership/swim/index.js';
import { ConfigError, fileErrorReason } from '../errors.js';
import { formatPath, issueMessage } from '../zod-issue.js';
import { agentConfigSchema, type AgentConfig } from './schema.js';

/** The flag that sets a key (kebab-case, singular for repeatable list keys). */
export function flagFor(key: string): string {
  if (key === 'tags') return 'tag';
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The environment variable that sets a key: EDGESWARM_<FLAG> in upper snake case. */
export function envFor(key: string): string {
  return `EDGESWARM_${flagFor(key).replace(/-/g, '_').toUpperCase()}`;
}

const LIST_KEYS = new Set(['tags', 'listen', 'join']);
/** "a, b,c" → ["a", "b", "c"]: a list key set by one string (environment or file). */
function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
/** Keys that can be set by flag or environment (the rest only in the file). */
export const FLAG_KEYS = [
  'name',
  'site',
  'tags',
  'data',
  'listen',
  'join',
  'api',
  'dns',
  'clusterKey',
  'preset',
  'logLevel',
] as const;

export interface LoadOptions {
  /** Flags already parsed by the CLI, keyed by config key (undefined = not given). */
  flags?: Record<string, unknown>;
  /** The config file path (from --config or EDGESWARM_CONFIG). */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** The file's text, read in pieces so that an endless file (a device, a pipe) stops at `max`. */
function readCapped(file: string, max: number): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > max) throw new ConfigError('config', `${file} is larger than ${max} bytes`);
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

export interface LoadedConfig {
  config: AgentConfig;
  /** Where each top-level key came from: "--api", "EDGESWARM_API", "file x.yaml", "default". */
  sources: Record<string, string>;
}

/** Largest config file read (bytes): `--config /dev/zero` read forever. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readCapped(file, MAX_CONFIG_FILE_BYTES);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('config', `cannot read ${file}: ${fileErrorReason(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    // the yaml library's message is "PROBLEM at line L, column C:" and then a code frame
    const first = (err as Error).message.split('\n')[0];
    const at = / at (line \d+, column \d+):$/.exec(first);
    const where = at ? ` at ${at[1]}` : '';
    const problem = at ? first.slice(0, at.index) : first;
    throw new ConfigError('config', `${file} is not valid YAML${where}: ${problem}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('config', `${file} must be a YAML mapping of keys to values`);
  }
  return doc as Record<string, unknown>;
}

/** Turns the first zod issue into a one-line ConfigError naming the key and its source. */
export function configErrorFrom(error: z.ZodError, sources: Record<string, string>): ConfigError {
  const issue = error.issues[0];
  let key = formatPath(issue.path);
  let message = issueMessage(issue);
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    key = formatPath([...issue.path, keys[0]]);
    message = 'unknown key';
  }
  // an unknown top-level key has an empty path: its own name says where it came from
  const top = String(issue.path[0] ?? (issue as { keys?: string[] }).keys?.[0] ?? '');
  const src = sources[top];
  const from = src && src !== 'default' ? ` (from ${src})` : '';
  return new ConfigError(key || 'config', `${message}${from}`);
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const merged: Record<string, unknown> = {};
  const sources: Record<string, string> = {};

  const configFile =
    (flags.config as string | undefined) ?? opts.configFile ?? (env.EDGESWARM_CONFIG || undefined);
  if (configFile) {
    const doc = readConfigFile(configFile);
    for (const [k, v] of Object.entries(doc)) {
      // a list key given one string takes it as the environment does: comma-separated
      merged[k] = LIST_KEYS.has(k) && typeof v === 'string' ? splitList(v) : v;
      sources[k] = `file ${configFile}`;
    }
  }
  for (const key of FLAG_KEYS) {
    const name = envFor(key);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    merged[key] = LIST_KEYS.has(key) ? splitList(raw) : raw;
    sources[key] = name;
  }
  for (const key of FLAG_KEYS) {
    const v = flags[key];
    if (v === undefined) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    merged[key] = v;
    sources[key] = `--${flagFor(key)}`;
  }
  const result = agentConfigSchema.safeParse(merged);
  if (!result.success) throw configErrorFrom(result.error, sources);
  try {
    resolveSwimConfig(result.data.preset, result.data.membership);
  } catch (err) {
    if (err instanceof SwimConfigError) {
      // a rule across two settings (probeTimeout under probeInterval), one of them perhaps the
      // preset's: the file's membership section is where it is mended
      const src = sources.membership ?? sources.preset;
      throw new ConfigError(
        `membership.${err.key}`,
        `${err.message.replace(/^membership\.[^:]*: /, '')}${src ? ` (from ${src})` : ''}`,
      );
    }
    throw err;
  }
  return { config: result.data, sources };
}
