import { AirlockError } from '../core/errors.js';
import { appConfigSchema, type AppConfig } from './schema.js';
import { describeIssues } from './config-issues.js';

/** Where a key sits in the source document ("line 12"), when the source has lines. */
export type KeyLocator = (path: readonly PropertyKey[]) => string | undefined;

/**
 * Validates an already-decoded config (YAML, JSON, a config-webhook answer) and returns it with
 * defaults applied. Throws AirlockError('CONFIG_INVALID') listing every problem, one per line.
 * `source` names the origin in the message ("/etc/airlock.yaml", "config webhook").
 */
export function parseConfig(raw: unknown, source: string, locate?: KeyLocator): AppConfig {
  // An empty YAML file decodes to null: that is "no settings", not "a wrong type".
  const result = appConfigSchema.safeParse(raw ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const problems = describeIssues(result.error.issues, appConfigSchema).map((problem) => {
    const where = locate?.(problem.path);
    return where === undefined ? problem.text : `${problem.text} (${where})`;
  });
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  // No `cause`: the ZodError carries the raw input, which may hold inline keys or URLs with secrets.
  throw new AirlockError('CONFIG_INVALID', `invalid configuration in ${source} (${count}):\n  ${problems.join('\n  ')}`, {
    details: { source, problems },
  });
}
