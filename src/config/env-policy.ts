import type { EnvPolicy } from './schema.js';

/** `LC_*` matches every name starting with "LC_"; `*` matches all; anything else matches exactly. */
export function matchesEnvPattern(name: string, pattern: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/**
 * Whether an SSH `env` request (RFC 4254 §6.4) for `name` may be applied:
 * - disable: never;
 * - enable: unless the name matches a deny pattern;
 * - filter: only if it matches an allow pattern and no deny pattern.
 * Names that are empty or contain "=" or NUL are always refused: the backend builds "NAME=value"
 * strings, so "LD_PRELOAD=/x.so" as a *name* would slip past a deny rule for LD_PRELOAD.
 */
export function filterEnv(name: string, policy: EnvPolicy): boolean {
  if (name === '' || name.includes('=') || name.includes('\0')) return false;
  const denied = policy.deny.some((pattern) => matchesEnvPattern(name, pattern));
  switch (policy.mode) {
    case 'disable':
      return false;
    case 'enable':
      return !denied;
    case 'filter':
      return !denied && policy.allow.some((pattern) => matchesEnvPattern(name, pattern));
  }
}
