// Image names, tags and site names: the rules and their validation, with messages clear enough to
// return to a user as they are (the HTTP layer turns InvalidImageRefError into a 400).
//
// Names and tags follow the OCI distribution spec, so an OCI client's references fit:
//   name  [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*, <= 255 chars
//   tag   [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
// Site names are lower-case DNS labels, as in the agent's --site flag.
import { InvalidImageRefError, InvalidManifestError } from '../errors.js';

/** Longest image name. Unit: characters. 255, as most OCI registries enforce. */
export const MAX_NAME_LENGTH = 255;
/** Longest tag. Unit: characters. 128, from the OCI tag grammar. */
export const MAX_TAG_LENGTH = 128;

const COMPONENT_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const SITE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Why `name` is not a valid image name, or undefined if it is. */
export function imageNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'must be a string';
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (/[A-Z]/.test(name)) return 'must be lower-case';
  for (const part of name.split('/')) {
    if (part === '') return 'must not have an empty component (leading, trailing or double "/")';
    if (!COMPONENT_RE.test(part))
      return (
        `component ${show(part)} must be lower-case letters and digits, joined by ".", "_", ` +
        `"__" or dashes, starting and ending with a letter or digit`
      );
  }
  return undefined;
}

/** Why `tag` is not a valid tag, or undefined if it is. */
export function imageTagProblem(tag: unknown): string | undefined {
  if (typeof tag !== 'string') return 'must be a string';
  if (tag.length === 0) return 'must not be empty';
  if (tag.length > MAX_TAG_LENGTH) return `must be at most ${MAX_TAG_LENGTH} characters`;
  if (!TAG_RE.test(tag))
    return 'must be letters, digits, "_", "." and "-", and must not start with "." or "-"';
  return undefined;
}

export function isValidImageName(name: unknown): name is string {
  return imageNameProblem(name) === undefined;
}

export function isValidImageTag(tag: unknown): tag is string {
  return imageTagProblem(tag) === undefined;
}

/** Returns `name` if it is a valid image name, else throws InvalidImageRefError (field 'name'). */
export function validateImageName(name: unknown): string {
  const p = imageNameProblem(name);
  if (p !== undefined) throw new InvalidImageRefError('name', `image name ${show(name)}: ${p}`);
  return name as string;
}

/** Returns `tag` if it is a valid tag, else throws InvalidImageRefError (field 'tag'). */
export function validateImageTag(tag: unknown): string {
  const p = imageTagProblem(tag);
  if (p !== undefined) throw new InvalidImageRefError('tag', `image tag ${show(tag)}: ${p}`);
  return tag as string;
}

/**
 * Parses "NAME:TAG" (the CLI form). The tag is what follows the last ":" (names cannot contain
 * ":"). Without a tag, uses `defaultTag` if given, else throws. Throws InvalidImageRefError.
 */
export function parseImageRef(
  ref: string,
  opts: { defaultTag?: string } = {},
): { name: string; tag: string } {
  const i = ref.lastIndexOf(':');
  if (i < 0) {
    if (opts.defaultTag === undefined)
      throw new InvalidImageRefError('tag', `image reference ${show(ref)}: expected NAME:TAG`);
    return { name: validateImageName(ref), tag: validateImageTag(opts.defaultTag) };
  }
  return { name: validateImageName(ref.slice(0, i)), tag: validateImageTag(ref.slice(i + 1)) };
}

/** True if `site` is a valid site name (a lower-case DNS label). */
export function isValidSiteName(site: unknown): site is string {
  return typeof site === 'string' && SITE_RE.test(site);
}

/** Returns `site` if valid, else throws InvalidManifestError naming `field`. */
export function validateSiteName(site: unknown, field = 'placement.sites'): string {
  if (!isValidSiteName(site))
    throw new InvalidManifestError(
      field,
      `site ${show(site)} must be a lower-case DNS label (a-z, 0-9, "-"; at most 63)`,
    );
  return site;
}
