import { z } from 'zod';
import { closestKey } from './spelling.js';

/**
 * docker.execution.container and docker.execution.host are Docker's own create-body objects: a
 * few fields are typed here, every other key goes to Docker as-is under `extra`. That keeps the
 * whole Docker API reachable without Airlock listing it, but it also means a misspelt typed key
 * ("memroy") would be passed through and silently ignored by Docker — dropping a resource limit.
 * So a passthrough key that is a near-miss of a typed key (different case, or one or two letters
 * off) is an error, and everything else is passed through.
 */

/** The explicit passthrough map; also what a parsed config holds, so parse(parse(x)) == parse(x). */
export const passthroughMap = z.record(z.string(), z.unknown());

export function checkPassthroughKeys(
  value: unknown,
  typedKeys: readonly string[],
  ctx: z.RefinementCtx,
): void {
  if (value === null || typeof value !== 'object') return;
  const raw = value as Record<string, unknown>;
  const extra = raw['extra'];
  const keys = Object.keys(raw).filter((k) => k !== 'extra' && !typedKeys.includes(k));
  const extraKeys =
    extra !== null && typeof extra === 'object' && !Array.isArray(extra) ? Object.keys(extra) : [];
  for (const [key, path] of [
    ...keys.map((k) => [k, [k]] as const),
    ...extraKeys.map((k) => [k, ['extra', k]] as const),
  ]) {
    const sameCase = typedKeys.find((t) => t.toLowerCase() === key.toLowerCase());
    const meant = sameCase ?? closestKey(key, typedKeys);
    if (meant !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [...path],
        message: `looks like a misspelling of "${meant}" — write it as ${meant} (other keys here are passed to Docker unchecked)`,
      });
    }
  }
}

/** Drops keys whose value is undefined, so parsed objects only hold keys that were set. */
export function definedOnly<T extends Record<string, unknown>>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}
