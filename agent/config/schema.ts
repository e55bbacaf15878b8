// The agent's configuration: every key, its default and what it means. The same keys are used in
// the YAML file (camelCase), as environment variables (EDGESWARM_<FLAG>, e.g. EDGESWARM_LOG_LEVEL)
// and as flags (--log-level). Precedence: flag > environment > file > default.
// docs/configuration.md is the operator-facing copy of this file; keep them in step.
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseBytes, parseDuration, parseRate } from './units.js';

/** A duration given as "250ms", "10s", "5m" or a number of milliseconds. Parsed to ms. */
export const duration = (what = 'a duration like 250ms, 10s or 5m') =>
  z.unknown().transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return ms;
  });

/** A byte size given as "64KiB", "1MiB" or a number of bytes. Parsed to bytes. */
export const byteSize = () =>
  z.unknown().transform((v, ctx) => {
    const n = parseBytes(v);
    if (n === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size like 64KiB or 1MiB, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return n;
  });

/** A rate given as "100Mbit", "10MiB" (per second) or bytes per second; 0 = unlimited. */
export const rate = () =>
  z.unknown().transform((v, ctx) => {
    const n = parseRate(v);
    if (n === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a rate like 100Mbit or 10MiB, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return n;
  });

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const SITE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** "HOST:PORT", "http://HOST:PORT" or "off". Parsed to {host, port} or null for off. */
export const hostPort = () =>
  z.unknown().transform((v, ctx) => {
    if (v === 'off' || v === false || v === null) return null;
    if (typeof v === 'string') {
      const s = v.replace(/^https?:\/\//, '').replace(/\/$/, '');
      const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
      if (m && Number(m[2]) <= 65535)
        return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    }
    ctx.addIssue({
      code: 'custom',
      message: `expected HOST:PORT or off, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  });

export type HostPort = { host: string; port: number };

const multiaddr = z
  .string()
  .refine(
    (s) =>
      /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d+(\/p2p\/\w+)?$/.test(s) ||
      /^[A-Za-z0-9.-]+:\d+$/.test(s),
    {
      message: 'expected a multiaddr like /ip4/10.0.0.1/tcp/7946 (or HOST:PORT)',
    },
  );

/** Tags are K=V: a map in the file, "K=V" strings on the command line and in the environment. */
const tags = z.unknown().transform((v, ctx) => {
  const out: Record<string, string> = {};
  const bad = (message: string) => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  if (v === undefined || v === null) return out;
  const entries: Array<[string, unknown]> = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item !== 'string' || !item.includes('='))
        return bad(`expected K=V, got ${JSON.stringify(item)}`);
      const i = item.indexOf('=');
      entries.push([item.slice(0, i), item.slice(i + 1)]);
    }
  } else if (typeof v === 'object') {
    entries.push(...Object.entries(v as Record<string, unknown>));
  } else {
    return bad(`expected a map of K: V or a list of K=V, got ${JSON.stringify(v)}`);
  }
  for (const [k, val] of entries) {
    if (!/^[A-Za-z0-9_.-]{1,63}$/.test(k))
      return bad(`tag name ${JSON.stringify(k)} must be 1-63 of A-Z a-z 0-9 _ . -`);
    if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean')
      return bad(`tag ${k} must have a string value`);
    const s = String(val);
    if (s.length > 255) return bad(`tag ${k} value is longer than 255 characters`);
    out[k] = s;
  }
  if (Object.keys(out).length > 64) return bad('at most 64 tags');
  return out;
});

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const agentConfigSchema = z
  .object({
    /** Member name, unique in the cluster. Default: the host name. */
    name: z
      .string()
      .regex(NAME_RE, 'must be 1-63 of A-Z a-z 0-9 _ . - starting with a letter or digit')
      .default(
        () =>
          hostname()
            .replace(/[^A-Za-z0-9_.-]/g, '-')
            .slice(0, 63) || 'edgeswarm',
      ),
    /** The site (point of presence) this agent belongs to. Lower-case DNS label. */
    site: z
      .string()
      .regex(SITE_RE, 'must be a lower-case DNS label (a-z 0-9 -, at most 63)')
      .default('default'),
    /** Member metadata, e.g. role=storage. */
    tags: tags.default({}),
    /** Directory holding all persistent state (identity, keys, database, chunks). */
    data: z.string().min(1).default('./.edgeswarm'),
    /** Peer-to-peer listen addresses. */
    listen: z.array(multiaddr).min(1).default(['/ip4/0.0.0.0/tcp/7946']),
    /** Peers to join through at start; retried in the background with backoff until one answers. */
    join: z.array(multiaddr).default([]),
    /** HTTP API listen address, or off. */
    api: hostPort().default({ host: '127.0.0.1', port: 7780 }),
    /** DNS listen address (UDP and TCP), or off. */
    dns: hostPort().default({ host: '127.0.0.1', port: 8600 }),
    /** Pre-shared cluster key file. Default DATA/cluster.key, created at first start if missing. */
    clusterKey: z.string().min(1).optional(),
    /** Timing preset for membership: lan or wan. */
    preset: z.enum(['lan', 'wan']).default('lan'),
    /** Log level. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
  })
  .strict();

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;
