/**
 * security.* through the front door: each forbidden request is refused and the user sees one
 * `airlock: ... [POLICY_DENIED]` line (real OpenSSH client, real Docker workload).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import { sshInTerminal } from '../helpers/terminal-ssh.js';

const DENIED = (what: string) => new RegExp(`airlock: ${what} is not allowed by the gateway policy \\[POLICY_DENIED\\]`);

describe('security policy: command allow list, shell, subsystem', () => {
  const suite = keyGatewaySuite({
    security: {
      command: { mode: 'filter', allow: ['echo allowed'] },
      shell: { mode: 'disable' },
      subsystem: { mode: 'filter', allow: ['not-sftp'] },
    },
  });

  test('an allowed command runs; any other command is refused with one line', async () => {
    const ok = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo allowed' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.toString().trim(), 'allowed');
    const no = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo allowed; id' });
    assert.equal(no.code, 255);
    assert.equal(no.stdout.toString(), '');
    assert.match(no.stderr, DENIED('command "echo allowed; id"'));
    await suite.gw.waitForLog((l) => l.code === 'POLICY_DENIED' && l.kind === 'exec');
    await suite.gw.waitForIdle();
  });

  test('an interactive shell is refused', async () => {
    const res = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, input: 'echo from-shell\n' });
    assert.equal(res.code, 255);
    assert.doesNotMatch(res.stdout.toString(), /from-shell/);
    assert.match(res.stderr, DENIED('an interactive shell'));
    await suite.gw.waitForIdle();
  });

  test('a subsystem outside the allow list is refused', async () => {
    const res = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'sftp', args: ['-s'] });
    assert.equal(res.code, 255);
    assert.match(res.stderr, DENIED('subsystem "sftp"'));
    await suite.gw.waitForIdle();
  });
});

describe('security policy: forceCommand and tty', () => {
  const suite = keyGatewaySuite({
    security: { forceCommand: 'echo forced:$SSH_ORIGINAL_COMMAND', tty: { mode: 'disable' } },
  });

  test('forceCommand runs instead of the requested command', async () => {
    const res = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'cat /etc/passwd' });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.toString().trim(), 'forced:cat /etc/passwd');
    await suite.gw.waitForIdle();
  });

  test('a terminal is refused with one line; the (forced) program runs without it', async () => {
    const res = await sshInTerminal(suite.gw, { user: 'alice', identity: suite.fx.alice.path }, '');
    assert.match(res.output, /PTY allocation request failed/);
    assert.match(res.output, DENIED('a terminal \\(pty\\)'));
    assert.match(res.output, /forced:/);
    await suite.gw.waitForIdle();
  });
});
