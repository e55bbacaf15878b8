// What a service name and id may be. Kept apart from registration.ts (zod) so that the CLI can
// check a name without loading the schema library.

/** A service name: a lower-case DNS label (it is one in DNS answers). */
export const SERVICE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const SERVICE_NAME_RULE = 'must be a lower-case DNS label (a-z 0-9 -, at most 63)';
/** An instance id, unique on its agent (it is a path segment of the HTTP API). */
export const SERVICE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
