import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionDeadline } from '../../src/ssh/connection.js';

test('connection deadline: the earlier of the credential\'s end and login + ssh.maxConnectionDuration; none without either', () => {
  const login = Date.parse('2030-01-01T10:00:00Z');
  const hour = 3_600_000;
  assert.equal(connectionDeadline(undefined, login, 0), undefined, 'no limit by default');
  assert.deepEqual(connectionDeadline(undefined, login, hour), { at: new Date(login + hour), source: 'duration' });
  const token = new Date(login + 10 * 60_000);
  assert.deepEqual(connectionDeadline(token, login, 0), { at: token, source: 'auth' });
  assert.deepEqual(connectionDeadline(token, login, hour), { at: token, source: 'auth' }, 'an earlier token expiry wins');
  assert.deepEqual(connectionDeadline(new Date(login + 2 * hour), login, hour), { at: new Date(login + hour), source: 'duration' });
});
