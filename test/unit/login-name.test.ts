import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loggableLoginName } from '../../src/auth/login-name.js';

describe('loggableLoginName', () => {
  it('keeps ordinary user names', () => {
    assert.equal(loggableLoginName('alice'), 'alice');
    assert.equal(loggableLoginName('first.last'), 'first.last');
  });
  it('replaces a token used as the user name by a stable digest', () => {
    const token = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJzZXNzaW9uLTEyMyJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU';
    const shown = loggableLoginName(token);
    assert.match(shown, /^token:sha256:[0-9a-f]{12}$/);
    assert.equal(loggableLoginName(token), shown);
    assert.ok(!shown.includes('eyJ'));
    // Unsigned (`alg: none`) or with a short signature: still token-shaped, still replaced.
    assert.match(loggableLoginName('eyJhbGciOiJub25lIn0.eyJzdWIiOiJzZXNzaW9uLTEyMyJ9.'), /^token:sha256:[0-9a-f]{12}$/);
    assert.match(loggableLoginName('eyJhbGciOiJub25lIn0.eyJzdWIiOiJzZXNzaW9uLTEyMyJ9.abc'), /^token:sha256:[0-9a-f]{12}$/);
  });
});
