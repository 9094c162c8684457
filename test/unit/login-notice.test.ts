import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loginNotice } from '../../src/ssh/login-notice.js';

const NOTHING = { stdin: false, stdout: false, stderr: false, forwarding: false };
const ALL_IO = { stdin: true, stdout: true, stderr: true, forwarding: false };

test('login notice: motd, recording and deadline lines, CRLF-terminated; empty when nothing to say', () => {
  const now = Date.parse('2030-01-01T10:00:00Z');
  assert.equal(loginNotice({ recorded: NOTHING, now }), '');
  assert.equal(
    loginNotice({ motd: 'Welcome\nto prod\n', recorded: ALL_IO, deadline: new Date(now + 90 * 60_000), now }),
    'Welcome\r\nto prod\r\nairlock: this session is recorded (input and output).\r\nairlock: this session ends at 2030-01-01T11:30:00Z (in 90 minutes).\r\n',
  );
  assert.match(loginNotice({ recorded: NOTHING, deadline: new Date(now + 60_000), now }), /\(in 1 minute\)/);
});

test('login notice: names exactly the streams audit.intercept captures', () => {
  const now = 0;
  const line = (recorded: Partial<typeof NOTHING>) => loginNotice({ recorded: { ...NOTHING, ...recorded }, now });
  assert.equal(line({ stdin: true }), 'airlock: this session is recorded (input only).\r\n');
  assert.equal(line({ stdout: true, stderr: true }), 'airlock: this session is recorded (output only).\r\n');
  assert.equal(line({ stdout: true }), 'airlock: this session is recorded (standard output only).\r\n');
  assert.equal(line({ stderr: true }), 'airlock: this session is recorded (error output only).\r\n');
  assert.equal(line({ stdin: true, stdout: true }), 'airlock: this session is recorded (input and standard output only).\r\n');
  assert.equal(line({ forwarding: true }), 'airlock: this session is recorded (forwarded connections only).\r\n');
  assert.equal(line({ ...ALL_IO, forwarding: true }), 'airlock: this session is recorded (input, output and forwarded connections).\r\n');
  assert.equal(line(ALL_IO), 'airlock: this session is recorded (input and output).\r\n');
});
