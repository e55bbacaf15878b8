// One zod issue as words for a user: the path of the field and the problem, shared by the config
// loader (agent/config/load.ts) and the HTTP body checks (agent/http/server.ts).
import type { z } from 'zod';

/** ["services", 0, "meta", "k"] → "services[0].meta.k". */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/**
 * The problem an issue names, in our words where zod's are vague: a bad record key gives the key
 * rule's own message (zod says only "Invalid key in record"), a missing field "required (TYPE)"
 * (zod says "Invalid input: expected TYPE, received undefined").
 */
export function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key' && issue.issues[0]) return issue.issues[0].message;
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message))
    return `required (${issue.expected})`;
  return issue.message;
}
