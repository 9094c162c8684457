/**
 * security.* through the front door: each forbidden request is refused and the user sees one
 * `airlock: ... [POLICY_DENIED]` line (real OpenSSH client, real Docker workload).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { sftpBatch, ssh, sshArgs } from '../helpers/ssh.js';

const run = promisify(execFile);
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

describe('security policy: signals and maxSessions', () => {
  const suite = keyGatewaySuite({ security: { signal: { mode: 'filter', allow: ['TERM'] }, maxSessions: 1 } });

  test('a signal outside the allow list is refused with one line and never reaches the program; an allowed one does', async () => {
    const client = new ssh2.Client();
    client.on('error', () => undefined);
    const ready = once(client, 'ready');
    client.connect({ host: '127.0.0.1', port: suite.gw.port, username: 'alice', privateKey: await readFile(suite.fx.alice.path) });
    await ready;
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.exec("trap 'echo got-USR1' USR1; echo ready; while :; do sleep 1; done", (err, c) => (err ? reject(err) : resolve(c))),
      );
      let stdout = '';
      let stderr = '';
      const started = new Promise<void>((resolve) =>
        ch.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes('ready')) resolve();
        }),
      );
      const deniedLine = new Promise<void>((resolve) =>
        ch.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (DENIED('signal USR1').test(stderr)) resolve();
        }),
      );
      const exit = new Promise<unknown[]>((resolve) => ch.once('exit', (...args: unknown[]) => resolve(args)));
      await started;
      ch.signal('USR1');
      await deniedLine;
      ch.signal('TERM');
      const [code, signal] = await exit;
      assert.equal(code, null);
      assert.equal(signal, 'SIGTERM', 'the allowed signal reached the program'); // ssh2's client adds the SIG prefix
      assert.doesNotMatch(stdout, /got-USR1/, 'the refused signal never reached the program');
      await suite.gw.waitForLog((l) => l.code === 'POLICY_DENIED' && l.signal === 'USR1');
    } finally {
      client.end();
    }
    await suite.gw.waitForIdle();
  });

  test('a second session on one connection (OpenSSH multiplexing) is refused with one line', async () => {
    const control = join(suite.gw.dir, `cm-${process.pid}`);
    const args = sshArgs(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo first-session; sleep 60' });
    const first = spawn('ssh', ['-o', 'ControlMaster=yes', '-o', `ControlPath=${control}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      first.stderr.resume();
      await new Promise<void>((resolve, reject) => {
        first.stdout.on('data', (d: Buffer) => d.toString().includes('first-session') && resolve());
        first.once('close', () => reject(new Error('the first session ended early')));
      });
      // The control socket exists once the master session runs; the second client multiplexes over it.
      const second = await run('ssh', ['-o', 'ControlMaster=no', '-o', `ControlPath=${control}`, ...sshArgs(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo second-session' })]).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      assert.equal(second.code, 255);
      assert.doesNotMatch(second.stdout, /second-session/);
      assert.match(second.stderr, DENIED('more than 1 session on one connection'));
    } finally {
      first.kill('SIGTERM');
      await once(first, 'close');
    }
    await suite.gw.waitForIdle();
  });
});

/** The one line a session gets for the env requests security.env refused (names only). */
const ENV_DENIED = (names: string) => new RegExp(`airlock: setting environment variables? ${names} is not allowed by the gateway policy \\[POLICY_DENIED\\]`);
/** Prints each variable between brackets: empty brackets = not set in the container. */
const PRINT_ENV = 'echo "[${SECRET_TOKEN-unset}][${PLAIN_VAR-unset}]"';

describe('security policy: env deny list (mode enable) and command.mode disable', () => {
  const suite = keyGatewaySuite({ security: { env: { mode: 'enable', deny: ['SECRET_*'] }, command: { mode: 'disable' } } });

  test('a denied variable is not set and the user gets one line naming it (never its value); an allowed one is set', async () => {
    // command.mode is disable here: the shell reads the check from stdin.
    const res = await ssh(suite.gw, {
      user: 'alice',
      identity: suite.fx.alice.path,
      args: ['-o', 'SetEnv=SECRET_TOKEN=hunter2-value PLAIN_VAR=plain-value'],
      input: `${PRINT_ENV}\nexit\n`,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.toString().trim(), '[unset][plain-value]');
    assert.match(res.stderr, ENV_DENIED('SECRET_TOKEN'));
    assert.equal(res.stderr.match(/POLICY_DENIED/g)?.length, 1, 'one line');
    assert.doesNotMatch(res.stderr, /PLAIN_VAR|hunter2/);
    const logged = await suite.gw.waitForLog((l) => l.code === 'POLICY_DENIED' && l.name === 'SECRET_TOKEN');
    assert.equal(logged.level, 'info');
    await suite.gw.waitForIdle();
    assert.doesNotMatch(suite.gw.output(), /hunter2/, 'the refused value never reaches the log');
  });

  test('command.mode disable refuses every exec request with one line', async () => {
    const res = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo should-not-run' });
    assert.equal(res.code, 255);
    assert.equal(res.stdout.toString(), '');
    assert.match(res.stderr, DENIED('running commands'));
    await suite.gw.waitForIdle();
  });
});

describe('security policy: env filter (unlisted names) and subsystem filter with a deny list', () => {
  const suite = keyGatewaySuite({
    security: {
      env: { mode: 'filter', allow: ['LANG', 'PLAIN_*'] },
      subsystem: { mode: 'filter', allow: ['sftp', 'blocked'], deny: ['blocked'] },
    },
  });

  test('under mode filter an unlisted variable is refused with one line; a listed one is set', async () => {
    const res = await ssh(suite.gw, {
      user: 'alice',
      identity: suite.fx.alice.path,
      args: ['-o', 'SetEnv=SECRET_TOKEN=hunter2-value PLAIN_VAR=plain-value OTHER_VAR=1'],
      command: PRINT_ENV,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.toString().trim(), '[unset][plain-value]');
    assert.match(res.stderr, ENV_DENIED('SECRET_TOKEN, OTHER_VAR'));
    assert.doesNotMatch(res.stderr, /PLAIN_VAR|hunter2/);
    await suite.gw.waitForIdle();
  });

  test('a subsystem in both allow and deny is refused (deny wins); an allowed one works', async () => {
    const res = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'blocked', args: ['-s'] });
    assert.equal(res.code, 255);
    assert.match(res.stderr, DENIED('subsystem "blocked"'));
    await suite.gw.waitForIdle();
    const sftp = await sftpBatch(suite.gw, { user: 'alice', identity: suite.fx.alice.path }, ['pwd']);
    assert.equal(sftp.code, 0, sftp.stderr);
    assert.match(sftp.stdout.toString(), /Remote working directory: \//);
    await suite.gw.waitForIdle();
  });
});

describe('security policy: defaultMode disable', () => {
  // Every mode not set explicitly follows defaultMode; shell is set, so it stays usable.
  const suite = keyGatewaySuite({ security: { defaultMode: 'disable', shell: { mode: 'enable' } } });

  test('commands, subsystems and terminals are refused with one line each; the explicitly enabled shell runs', async () => {
    const exec = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo should-not-run' });
    assert.equal(exec.code, 255);
    assert.equal(exec.stdout.toString(), '');
    assert.match(exec.stderr, DENIED('running commands'));
    await suite.gw.waitForIdle();
    const sub = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'sftp', args: ['-s'] });
    assert.equal(sub.code, 255);
    assert.match(sub.stderr, DENIED('subsystem "sftp"'));
    await suite.gw.waitForIdle();
    const shell = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, input: 'echo from-shell\nexit\n' });
    assert.equal(shell.code, 0, shell.stderr);
    assert.match(shell.stdout.toString(), /from-shell/);
    await suite.gw.waitForIdle();
    const term = await sshInTerminal(suite.gw, { user: 'alice', identity: suite.fx.alice.path }, 'echo in-terminal-$((6*7))\nexit\n');
    assert.match(term.output, DENIED('a terminal \\(pty\\)'));
    assert.match(term.output, /in-terminal-42/, 'the shell ran without a terminal');
    await suite.gw.waitForIdle();
  });
});
