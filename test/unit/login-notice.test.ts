import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loginNotice } from '../../src/ssh/login-notice.js';

test('login notice: motd, recording and deadline lines, CRLF-terminated; empty when nothing to say', () => {
  const now = Date.parse('2030-01-01T10:00:00Z');
  assert.equal(loginNotice({ recorded: false, now }), '');
  assert.equal(
    loginNotice({ motd: 'Welcome\nto prod\n', recorded: true, deadline: new Date(now + 90 * 60_000), now }),
    'Welcome\r\nto prod\r\nairlock: this session is recorded (input and output).\r\nairlock: this session ends at 2030-01-01T11:30:00Z (in 90 minutes).\r\n',
  );
  assert.match(loginNotice({ recorded: false, deadline: new Date(now + 60_000), now }), /\(in 1 minute\)/);
});
