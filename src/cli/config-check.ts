import { configWarnings, loadConfigFile } from '../config/index.js';
import { loadAuthorizedKeys } from '../auth/authorized-keys.js';
import { isAirlockError } from '../core/errors.js';

/**
 * `airlock config check <file>`: validates the file (schema, cross-field rules, referenced
 * authorized-keys file) and prints every problem. Exit 0 = valid, 1 = invalid.
 */
export async function runConfigCheck(file: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  try {
    const config = await loadConfigFile(file);
    if (config.auth.publicKey.method === 'authorizedKeys' && config.auth.publicKey.authorizedKeys) {
      loadAuthorizedKeys(config.auth.publicKey.authorizedKeys);
    }
    for (const w of configWarnings(config)) out.write(`${file}: warning: ${w.key}: ${w.message}\n`);
    out.write(`${file}: OK\n`);
    return 0;
  } catch (e) {
    if (isAirlockError(e)) {
      err.write(`${file}: invalid configuration [${e.code}]\n${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
