// What a service registration may contain, for the HTTP API (PUT /v1/services/{id}), the CLI and
// the `services:` list of the config file. Validation errors name the field.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../duration.js';
import { SERVICE_ID_RE, SERVICE_NAME_RE, SERVICE_NAME_RULE } from './names.js';

/** Smallest check interval accepted (ms). */
export const MIN_CHECK_INTERVAL_MS = 100;
/** Default check interval (ms). */
export const DEFAULT_CHECK_INTERVAL_MS = 10_000;
/** Default check timeout: min(interval, 5 s). */
export const DEFAULT_CHECK_TIMEOUT_MS = 5_000;
/**
 * Longest check interval, timeout and ttl accepted (ms): 24 h. Node's timers hold at most 2^31-1
 * ms (~24.8 days) and fire after 1 ms when given more, which turned a `1000h` check into one run
 * every millisecond.
 */
export const MAX_CHECK_DURATION_MS = 24 * 3_600_000;

/** For an interval or ttl under the minimum: "2" meant as seconds is 2 ms. */
const TOO_SHORT = `must be at least ${MIN_CHECK_INTERVAL_MS}ms (a number without a unit is milliseconds: write 10s for seconds)`;

/** A service tag (the registration and the discover filter), and the rule in words. */
export const TAG_RE = /^[A-Za-z0-9_.:=-]{1,63}$/;
export const TAG_RULE = '1-63 of A-Z a-z 0-9 _ . : = -';

const durationMs = (what: string) =>
  z.unknown().transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a ${what} like 10s or 500ms, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return ms;
  });

const httpUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { message: 'expected an http:// or https:// URL' },
);

const tcpTarget = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, {
    message: 'port must be at most 65535',
  });

export const checkSchema = z
  .object({
    http: httpUrl.optional(),
    tcp: tcpTarget.optional(),
    ttl: durationMs('duration').optional(),
    interval: durationMs('duration').optional(),
    timeout: durationMs('duration').optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const kinds = [c.http, c.tcp, c.ttl].filter((x) => x !== undefined).length;
    if (kinds !== 1)
      ctx.addIssue({ code: 'custom', message: 'give exactly one of http, tcp or ttl' });
    if (c.interval !== undefined && c.interval < MIN_CHECK_INTERVAL_MS)
      ctx.addIssue({
        code: 'custom',
        path: ['interval'],
        message: TOO_SHORT,
      });
    if (c.ttl !== undefined && c.ttl < MIN_CHECK_INTERVAL_MS)
      ctx.addIssue({
        code: 'custom',
        path: ['ttl'],
        message: TOO_SHORT,
      });
    if (c.timeout !== undefined && c.timeout <= 0)
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be more than 0' });
    // a ttl check is refreshed from outside: it has no interval or timeout to run on
    if (c.ttl !== undefined)
      for (const key of ['interval', 'timeout'] as const)
        if (c[key] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'not used by a ttl check (its ttl is how long a pass is good for)',
          });
    for (const key of ['interval', 'timeout', 'ttl'] as const) {
      const ms = c[key];
      if (ms !== undefined && ms > MAX_CHECK_DURATION_MS)
        ctx.addIssue({ code: 'custom', path: [key], message: 'must be at most 24h' });
    }
  });

export const registrationBodySchema = z
  .object({
    name: z.string().regex(SERVICE_NAME_RE, SERVICE_NAME_RULE),
    port: z
      .number()
      .int('must be an integer')
      .min(1, 'must be 1-65535')
      .max(65535, 'must be 1-65535'),
    address: z
      .string()
      .refine((s) => isIP(s) !== 0, { message: 'expected an IPv4 or IPv6 address' })
      .optional(),
    tags: z
      .array(z.string().regex(TAG_RE, `tags are ${TAG_RULE}`))
      .max(32, 'at most 32 tags')
      .optional(),
    meta: z
      .unknown()
      // zod drops a "__proto__" key of a record without a word: refuse it, naming it
      .superRefine((m, ctx) => {
        if (m !== null && typeof m === 'object' && Object.hasOwn(m, '__proto__'))
          ctx.addIssue({
            code: 'custom',
            path: ['__proto__'],
            message: 'not allowed as a meta key',
          });
      })
      .pipe(
        z
          .record(
            z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/, 'meta keys are 1-63 of A-Z a-z 0-9 _ . -'),
            z.string().max(512),
          )
          .refine((m) => Object.keys(m).length <= 32, { message: 'at most 32 meta entries' }),
      )
      .optional(),
    check: checkSchema.optional(),
  })
  .strict();

/** A registration in the config file also carries its id (default: the name). */
export const configServiceSchema = registrationBodySchema.extend({
  id: z
    .string()
    .regex(SERVICE_ID_RE, 'must be 1-128 of A-Z a-z 0-9 _ . : - starting with a letter or digit')
    .optional(),
});

export type RegistrationBody = z.output<typeof registrationBodySchema>;

export interface CheckDefinition {
  kind: 'http' | 'tcp' | 'ttl';
  /** URL for http, HOST:PORT for tcp, '' for ttl. */
  target: string;
  /** ms between runs (http, tcp); for ttl, how long a pass is good for. */
  interval: number;
  /** ms before a run counts as failed (http, tcp). */
  timeout: number;
}

export interface ServiceRegistration {
  id: string;
  name: string;
  port: number;
  address?: string;
  tags: string[];
  meta: Record<string, string>;
  check?: CheckDefinition;
  /**
   * 'config' when the `services:` list of the config file registered it: such a service is
   * deregistered at the next start if the list no longer has it. Absent for the API and the CLI.
   */
  source?: 'config';
}

export function validServiceId(id: string): boolean {
  return SERVICE_ID_RE.test(id);
}

/** A check as the API takes it: `{http|tcp, interval, timeout}` or `{ttl}`, durations in ms. */
export type CheckBody =
  | { http: string; interval: number; timeout: number }
  | { tcp: string; interval: number; timeout: number }
  | { ttl: number };

/** The inverse of toRegistration for a check: what GET answers is what PUT takes. */
export function checkBody(def: CheckDefinition): CheckBody {
  if (def.kind === 'ttl') return { ttl: def.interval };
  const { interval, timeout } = def;
  return def.kind === 'http'
    ? { http: def.target, interval, timeout }
    : { tcp: def.target, interval, timeout };
}

/** Normalises a validated body into a registration. */
export function toRegistration(id: string, body: RegistrationBody): ServiceRegistration {
  let check: CheckDefinition | undefined;
  const c = body.check;
  if (c) {
    if (c.ttl !== undefined) check = { kind: 'ttl', target: '', interval: c.ttl, timeout: c.ttl };
    else {
      const interval = c.interval ?? DEFAULT_CHECK_INTERVAL_MS;
      const timeout = c.timeout ?? Math.min(interval, DEFAULT_CHECK_TIMEOUT_MS);
      check =
        c.http !== undefined
          ? { kind: 'http', target: c.http, interval, timeout }
          : { kind: 'tcp', target: c.tcp!, interval, timeout };
    }
  }
  return {
    id,
    name: body.name,
    port: body.port,
    address: body.address,
    tags: [...new Set(body.tags ?? [])],
    meta: body.meta ?? {},
    check,
  };
}
