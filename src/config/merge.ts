/**
 * Static config ⊕ config server answer → the config of ONE connection. The answer's `config` is
 * deep-merged over the parsed static config and the result is validated by the same schema as
 * the file (parseConfig: a parsed config is valid input), so a config server can do exactly what
 * the file can, within the sections ContainerSSH lets it touch.
 *
 * Merge rules (docs/configuration.md, "configserver"):
 * - mappings merge key by key, recursively;
 * - every other value replaces: strings, numbers, booleans — including `false`, `0` and `""`
 *   (ContainerSSH keeps only non-empty values, so its config servers cannot switch a boolean off)
 *   — and lists (`env` written as `["K=V"]` replaces the static env, written as a mapping it merges);
 * - `null` removes the key, so the built-in default applies again (e.g. lifting
 *   `security.forceCommand` for one user).
 */
import { AirlockError, isAirlockError } from '../core/errors.js';
import { formatKeyPath } from './config-issues.js';
import { parseConfig } from './parse-config.js';
import { DOCKER_DEFAULT_HOST, PODMAN_DEFAULT_HOST, type AppConfig } from './schema.js';

/** Top-level keys a config server may set (ContainerSSH's list); `log` only with `level`. */
export const CONNECTION_CONFIG_SECTIONS = ['backend', 'docker', 'kubernetes', 'sshproxy', 'security', 'log'] as const;

/** Keys inside those sections that belong to the gateway process, not to one connection. */
const GATEWAY_WIDE: Readonly<Record<string, string>> = {
  'docker.pool': 'the warm pool is shared by all connections',
  'docker.reaper': 'the reaper is shared by all connections',
  'kubernetes.reaper': 'the reaper is shared by all connections',
};

type Mapping = Record<string, unknown>;

const isMapping = (v: unknown): v is Mapping => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Where in the answer a problem is: the answer's `config` is what was merged. */
const SOURCE = 'the config server answer';

/**
 * Returns the connection's config, or throws AirlockError('CONFIG_SERVER_INVALID') listing every
 * problem (one per line, key paths as in the answer's `config`). `override` absent or null = `base`.
 */
export function mergeConnectionConfig(base: AppConfig, override: unknown): AppConfig {
  if (override === undefined || override === null) return base;
  if (!isMapping(override)) throw invalid(['config: must be a mapping of config sections']);
  const problems = scopeProblems(override);
  if (problems.length > 0) throw invalid(problems);

  const merged = deepMerge(base as unknown as Mapping, override);
  applyAliases(base, override, merged);
  try {
    return parseConfig(merged, SOURCE);
  } catch (err) {
    if (isAirlockError(err) && err.code === 'CONFIG_INVALID') {
      const lines = Array.isArray(err.details.problems) ? (err.details.problems as string[]) : [err.message];
      throw invalid(lines);
    }
    throw err;
  }
}

function invalid(problems: readonly string[]): AirlockError {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new AirlockError('CONFIG_SERVER_INVALID', `config server answer is not a valid configuration for this connection (${count}):\n  ${problems.join('\n  ')}`, {
    details: { problems },
  });
}

function scopeProblems(override: Mapping): string[] {
  const allowed = new Set<string>(CONNECTION_CONFIG_SECTIONS);
  const problems: string[] = [];
  for (const key of Object.keys(override)) {
    if (!allowed.has(key)) {
      problems.push(`${formatKeyPath([key])}: cannot be set per connection — a config server may set ${CONNECTION_CONFIG_SECTIONS.join(', ')} (log: level only)`);
    }
  }
  const log = override.log;
  if (isMapping(log)) {
    for (const key of Object.keys(log)) {
      if (key !== 'level') problems.push(`${formatKeyPath(['log', key])}: cannot be set per connection — only log.level can`);
    }
  }
  for (const [path, why] of Object.entries(GATEWAY_WIDE)) {
    const [section, key] = path.split('.') as [string, string];
    const value = override[section];
    if (isMapping(value) && Object.hasOwn(value, key)) problems.push(`${path}: cannot be set per connection — ${why}`);
  }
  return problems;
}

/** `b` over `a`: mappings recursively, anything else replaces, `null` deletes. Never mutates. */
function deepMerge(a: Mapping, b: Mapping): Mapping {
  const out = new Map<string, unknown>(Object.entries(a));
  for (const [key, value] of Object.entries(b)) {
    if (value === null) {
      out.delete(key);
      continue;
    }
    const prev = out.get(key);
    out.set(key, isMapping(value) && isMapping(prev) ? deepMerge(prev, value) : value);
  }
  // fromEntries defines own properties: a "__proto__" key in the JSON stays plain data (and is
  // then refused by the strict schema) instead of replacing the prototype.
  return Object.fromEntries(out);
}

function at(value: unknown, ...keys: string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (!isMapping(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** Deletes `root[...keys][last]`, copying the mappings on the way (they may be the static config's). */
function removeAt(root: Mapping, keys: readonly string[], last: string): void {
  let parent = root;
  for (const key of keys) {
    const child = parent[key];
    if (!isMapping(child)) return;
    const copy = { ...child };
    parent[key] = copy;
    parent = copy;
  }
  delete parent[last];
}

/**
 * The parsed static config holds canonical values where the file may have used an alias; an
 * answer written in the file's terms must not collide with them.
 */
function applyAliases(base: AppConfig, override: Mapping, merged: Mapping): void {
  // `cpus` in a file becomes `nanoCpus`: an answer's `cpus` replaces the static limit.
  const host = at(override, 'docker', 'execution', 'host');
  if (isMapping(host) && host.cpus !== undefined && host.nanoCpus === undefined) {
    removeAt(merged, ['docker', 'execution', 'host'], 'nanoCpus');
  }
  // The Docker socket defaults by backend (podman → Podman's socket): switching the backend
  // without naming a host means the new backend's default, not the old one's.
  const staticDefault = base.backend === 'podman' ? PODMAN_DEFAULT_HOST : DOCKER_DEFAULT_HOST;
  if (override.backend !== undefined && at(override, 'docker', 'connection', 'host') === undefined && base.docker.connection.host === staticDefault) {
    removeAt(merged, ['docker', 'connection'], 'host');
  }
}
