import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { AirlockError } from '../core/errors.js';
import type { AppConfig } from './schema.js';
import { parseConfig, type KeyLocator } from './parse-config.js';

export { parseConfig, type KeyLocator } from './parse-config.js';
export { embeddedDefaults } from './embedded-defaults.js';

/** Environment variable naming the config file when no --config flag is given. */
export const CONFIG_PATH_ENV = 'AIRLOCK_CONFIG';

/** The --config flag wins, then $AIRLOCK_CONFIG; undefined means "use the embedded defaults". */
export function resolveConfigPath(cliPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (cliPath !== undefined && cliPath !== '') return cliPath;
  const fromEnv = env[CONFIG_PATH_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

/** Fill `broker:` keys from the environment (when the section is present), so secrets stay out of files. */
export const PROVISION_KEYS_ENV = 'AIRLOCK_PROVISION_KEYS';
export const REDIS_URL_ENV = 'REDIS_URL';

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * AIRLOCK_PROVISION_KEYS (comma-separated) replaces broker.provisionKeys and REDIS_URL replaces
 * broker.redisUrl when set and non-empty. Applied to the decoded file before validation, so the
 * values are checked like file values. Without a broker section they are ignored.
 */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv = process.env): unknown {
  if (!isMapping(raw) || !isMapping(raw.broker)) return raw;
  const broker: Record<string, unknown> = { ...raw.broker };
  const keys = env[PROVISION_KEYS_ENV];
  if (keys !== undefined && keys.trim() !== '') {
    broker.provisionKeys = keys
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
  }
  const redis = env[REDIS_URL_ENV];
  if (redis !== undefined && redis.trim() !== '') broker.redisUrl = redis.trim();
  return { ...raw, broker };
}

function readFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory, not a file';
  return err instanceof Error ? err.message : String(err);
}

/** Maps a key path to the line of that key (or of its nearest ancestor present in the file). */
function locator(doc: Document, lines: LineCounter): KeyLocator {
  return (path) => {
    let node: unknown = doc.contents;
    let offset: number | undefined;
    for (const segment of path) {
      let next: { key: unknown; value: unknown } | undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (pair !== undefined) next = { key: pair.key, value: pair.value };
      } else if (isSeq(node) && typeof segment === 'number') {
        const item: unknown = node.items[segment];
        if (item !== undefined) next = { key: item, value: item };
      }
      if (next === undefined) break;
      const range = (next.key as { range?: [number, number, number] } | null)?.range;
      if (range !== undefined) offset = range[0];
      node = next.value;
    }
    return offset === undefined ? undefined : `line ${lines.linePos(offset).line}`;
  };
}

/**
 * Reads and validates a YAML config file. Throws AirlockError CONFIG_FILE_UNREADABLE when the file
 * cannot be read and CONFIG_INVALID for YAML syntax errors (with line and column) or schema
 * problems (every one, one per line, naming the key path).
 */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<AppConfig> {
  return (await loadConfigSource(path, env)).config;
}

/** A validated config file and what the file itself wrote (defaults aside). */
export interface ConfigSource {
  readonly config: AppConfig;
  /**
   * The top-level sections the file writes (`docker`, `kubernetes`, ...): what the operator set
   * up, as opposed to a section that exists only through its defaults. `airlock serve` starts the
   * reapers of the backends a config server may switch to from these (docs/operations.md).
   */
  readonly sections: ReadonlySet<string>;
}

/** loadConfigFile, plus the sections the file writes. */
export async function loadConfigSource(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigSource> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AirlockError(
      'CONFIG_FILE_UNREADABLE',
      `cannot read config file ${path}: ${readFailure(err)} — check the path given with --config or ${CONFIG_PATH_ENV}`,
      { cause: err, details: { source: path } },
    );
  }
  const lines = new LineCounter();
  // uniqueKeys: a key written twice is an error, not "the last one silently wins".
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return `line ${line}, column ${col}: ${e.message}`;
    });
    throw new AirlockError('CONFIG_INVALID', `${path} is not valid YAML:\n  ${problems.join('\n  ')}`, {
      details: { source: path, problems },
    });
  }
  let raw: unknown;
  try {
    // The alias cap stops "billion laughs" documents from exhausting memory.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new AirlockError('CONFIG_INVALID', `${path} is not valid YAML:\n  ${reason}`, {
      details: { source: path, problems: [reason] },
    });
  }
  const input = applyEnvOverrides(raw, env);
  const config = parseConfig(input, path, locator(doc, lines));
  return { config, sections: new Set(isMapping(input) ? Object.keys(input) : []) };
}
