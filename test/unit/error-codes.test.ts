/** Every error code is documented in docs/errors.md with a "what to do" entry (codes are append-only). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AirlockError, ERROR_CODES, toAirlockError, userLine } from '../../src/core/errors.js';

describe('error codes', () => {
  it('docs/errors.md lists every code', async () => {
    const doc = await readFile(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
    const missing = Object.keys(ERROR_CODES).filter((code) => !new RegExp(`^\\| \`${code}\` \\|`, 'm').test(doc));
    assert.deepEqual(missing, []);
  });

  it('the user line carries the code and the registry message, never the internal message', () => {
    const err = new AirlockError('BACKEND_UNAVAILABLE', 'connect ENOENT /var/run/docker.sock');
    assert.equal(userLine(err), 'airlock: the container engine is unavailable; try again later [BACKEND_UNAVAILABLE]');
    assert.equal(err.kind, 'system');
  });

  it('wraps foreign errors with a fallback code and keeps the cause', () => {
    const cause = new Error('boom');
    const err = toAirlockError(cause, 'EXEC_FAILED');
    assert.equal(err.code, 'EXEC_FAILED');
    assert.equal(err.cause, cause);
    assert.equal(toAirlockError(err), err);
  });
});
