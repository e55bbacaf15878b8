// The agent's configuration: every key, its default and what it means. The same keys are used in
// the YAML file (camelCase), as environment variables (EDGESWARM_<FLAG>, e.g. EDGESWARM_LOG_LEVEL)
// and as flags (--log-level). Precedence: flag > environment > file > default.
// docs/configuration.md is the operator-facing copy of this file; keep them in step.
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { configServiceSchema } from '../../membership/catalog/registration.js';
import { swimConfigOverridesSchema } from '../../membership/swim/index.js';
import { MAX_VALUE_BYTES_LIMIT } from '../../storage/state/index.js';
import { fetchBlockedReason } from '../fetch-ports.js';
import { peerAddrSchema } from '../peer-addr.js';
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

/**
 * Bounds of an anti-entropy interval (ms): 100 ms to 24 h. 0 ran rounds back to back, and Node's
 * timers fire after 1 ms when given more than 2^31-1 ms (~24.8 days).
 */
export const MIN_SYNC_INTERVAL_MS = 100;
export const MAX_SYNC_INTERVAL_MS = 24 * 3_600_000;

/** An anti-entropy interval: a duration within MIN_SYNC_INTERVAL_MS..MAX_SYNC_INTERVAL_MS. */
const syncInterval = () =>
  duration()
    .refine((ms) => ms >= MIN_SYNC_INTERVAL_MS, { message: 'must be at least 100ms' })
    .refine((ms) => ms <= MAX_SYNC_INTERVAL_MS, { message: 'must be at most 24h' });

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

const DURATION_KEYS = new Set([
  'probeInterval',
  'probeTimeout',
  'gossipInterval',
  'gossipToTheDeadTime',
  'pushPullInterval',
  'reconnectInterval',
  'reconnectTimeout',
  'tombstoneTimeout',
]);

/** The membership section: duration strings become ms, then the SWIM core's own schema checks it. */
const membershipOverrides = z
  .record(z.string(), z.unknown())
  .transform((v, ctx) => {
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      if (!DURATION_KEYS.has(k)) {
        out[k] = val;
        continue;
      }
      const ms = parseDuration(val);
      if (ms === undefined && typeof val === 'string') {
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: `expected a duration like 200ms, 5s or 1m, got ${JSON.stringify(val)}`,
        });
        return z.NEVER;
      }
      out[k] = ms ?? val;
    }
    return out;
  })
  .pipe(swimConfigOverridesSchema);

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
    listen: z.array(peerAddrSchema('listen')).min(1).default(['/ip4/0.0.0.0/tcp/7946']),
    /** Peers to join through at start; each is retried in the background until it answers. */
    join: z.array(peerAddrSchema('dial')).default([]),
    /** HTTP API listen address, or off. */
    api: hostPort()
      .superRefine((v, ctx) => {
        const why = v ? fetchBlockedReason(v.port) : undefined;
        if (why) ctx.addIssue({ code: 'custom', message: why });
      })
      .default({ host: '127.0.0.1', port: 7780 }),
    /** DNS listen address (UDP and TCP), or off. */
    dns: hostPort().default({ host: '127.0.0.1', port: 8600 }),
    /** Pre-shared cluster key file. Default DATA/cluster.key, created at first start if missing. */
    clusterKey: z.string().min(1).optional(),
    /** Timing preset for membership: lan or wan. */
    preset: z.enum(['lan', 'wan']).default('lan'),
    /** Log level. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /**
     * The address published for services registered without one. Default: the IP of the first
     * listen address, or of the first non-loopback interface when listening on 0.0.0.0.
     */
    advertise: z
      .string()
      .refine((s) => isIP(s) !== 0, { message: 'expected an IPv4 or IPv6 address' })
      .optional(),
    /** Services registered at every start (file only); the same fields as PUT /v1/services/{id}. */
    services: z
      .array(configServiceSchema)
      .superRefine((list, ctx) => {
        // two entries with one id (by default the name) would silently replace each other
        const seen = new Set<string>();
        list.forEach((svc, i) => {
          const id = svc.id ?? svc.name;
          if (seen.has(id))
            ctx.addIssue({
              code: 'custom',
              path: [i, 'id'],
              message: `${JSON.stringify(id)} is used by an earlier entry (ids default to the name)`,
            });
          seen.add(id);
        });
      })
      .default([]),
    /**
     * Overrides of the membership timing preset (file only): any key of membership/swim/config.ts;
     * durations as "200ms", "5s" or a number of milliseconds.
     */
    membership: membershipOverrides.default({}),
    /** Service catalog tunables (file only). */
    catalog: z
      .object({
        /** Time between anti-entropy rounds with a random member. Default 5s. */
        syncInterval: syncInterval().optional(),
        /**
         * Announce service names as DHT provider records, so that an agent can find a name its
         * catalog has not seen yet. Default true. Each announcement costs a DHT query and 4
         * ADD_PROVIDERs (about 10 requests); turn it off where agents are CPU-starved and gossip
         * suffices.
         */
        dhtAnnounce: z.boolean().optional(),
      })
      .strict()
      .default({}),
    /** Image replication tunables (file only). */
    images: z
      .object({
        /** Versions of each NAME:TAG kept for rollback. Default 3. */
        keepVersions: z.number().int().min(1).max(100).optional(),
        /** Cap on chunk bytes this agent uploads to peers, e.g. 100Mbit; 0 = none. Default none. */
        uploadRate: rate().optional(),
        /** Cap on chunk bytes this agent sends to other sites, e.g. 50Mbit; 0 = none. Default none. */
        wanRate: rate().optional(),
        /** Largest image accepted by a push. Default none. */
        maxImageSize: byteSize().optional(),
      })
      .strict()
      .default({}),
    /** Replicated key/value store tunables (file only). */
    kv: z
      .object({
        /** Largest value accepted (PUT answers 413 above it). Default 1MiB, at most 3MiB. */
        maxValueSize: byteSize()
          .refine((n) => n >= 1 && n <= MAX_VALUE_BYTES_LIMIT, {
            message: `expected 1B to 3MiB (${MAX_VALUE_BYTES_LIMIT} bytes): a larger value would not fit one replication message`,
          })
          .optional(),
        /** Time between anti-entropy sessions with a random member. Default 2s. */
        syncInterval: syncInterval().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;
