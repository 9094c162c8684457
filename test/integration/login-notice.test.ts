/** ssh.motd and the recording notice reach interactive logins only (real ssh, real recorder). */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';

describe('login notice', () => {
  const storage = mkdtempSync(join(tmpdir(), 'airlock-motd-audit-'));
  const suite = keyGatewaySuite({ ssh: { motd: 'Welcome to the prod bastion' }, audit: { enable: true, storage: 'file', file: { directory: storage } } });
  // Registered after the suite's hooks: runs once its gateway has stopped.
  after(() => rm(storage, { recursive: true, force: true }));

  test('a shell login sees the motd and that it is recorded; an exec does not', async () => {
    const shell = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, input: 'echo in-shell\nexit\n' });
    assert.equal(shell.code, 0, shell.stderr);
    const out = shell.stdout.toString();
    assert.match(out, /^Welcome to the prod bastion\r\nairlock: this session is recorded \(input and output\)\.\r\n/);
    assert.match(out, /in-shell/);
    await suite.gw.waitForIdle();
    const exec = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo only-this' });
    assert.equal(exec.stdout.toString(), 'only-this\n');
    await suite.gw.waitForIdle();
  });
});
