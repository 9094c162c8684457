/**
 * ssh.motd and the recording notice reach interactive logins only; ssh.maxConnectionDuration puts
 * a deadline on a key login (real ssh, real recorder, real Docker).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { spawnSsh, ssh } from '../helpers/ssh.js';

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

describe('ssh.maxConnectionDuration on a key login', () => {
  const storage = mkdtempSync(join(tmpdir(), 'airlock-duration-audit-'));
  const suite = keyGatewaySuite({
    ssh: { maxConnectionDuration: '10s', deadlineWarning: '4s' },
    // Input not captured: the notice must not claim it is.
    audit: { enable: true, storage: 'file', file: { directory: storage }, intercept: { stdin: false } },
  });
  after(() => rm(storage, { recursive: true, force: true }));

  test('the notice shows the deadline and what is recorded; a warning comes first; the connection is closed at the deadline and its container removed', async () => {
    const loginAfter = Date.now();
    const child = await spawnSsh(suite.gw, { user: 'alice', identity: suite.fx.alice.path });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const noticeShown = new Promise<RegExpMatchArray>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = stdout.match(/airlock: this session ends at (\S+) \(in 0 minutes\)\.\r\n/);
        if (m) resolve(m);
      }),
    );
    const closed = once(child, 'close') as Promise<[number | null]>;
    // stdin stays open: only the gateway ends this session.
    const [, at] = await noticeShown;
    assert.match(stdout, /^airlock: this session is recorded \(output only\)\.\r\n/);
    const deadline = Date.parse(at!);
    // Login + 10 s, to the second (the notice drops the milliseconds).
    assert.ok(deadline >= Math.floor(loginAfter / 1000) * 1000 + 10_000 - 1000 && deadline <= Date.now() + 10_000, `deadline ${at}`);
    const containers = await suite.gw.containers();
    assert.equal(containers.length, 1, 'the session has its container');
    const [code] = await closed;
    assert.ok(Date.now() >= deadline, 'closed at the deadline, not before');
    assert.equal(code, 255);
    const warning = stderr.indexOf(`airlock: this session ends in 4 seconds (maximum connection duration, at ${at})`);
    const end = stderr.indexOf('airlock: this connection reached its maximum duration (10 seconds); the session is closed');
    assert.ok(warning >= 0 && end > warning, stderr);
    await suite.gw.waitForLog((l) => l.msg === 'connection deadline reached' && l.source === 'duration');
    await suite.gw.waitForIdle();
    const left = await suite.gw.containers();
    assert.deepEqual(left.filter((id) => containers.includes(id)), [], 'the container is removed');
  });
});
