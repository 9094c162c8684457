/**
 * The basic promise through the front door: the real OpenSSH client logs in with a key, its
 * command runs in a fresh container of the configured image, output/exit status/stdin come back,
 * and the container is gone afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';

describe('exec through the gateway (connection mode)', () => {
  const suite = keyGatewaySuite();

  it('runs the command in a container and returns its output', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo hello from $(cat /etc/hostname)' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^hello from [0-9a-f]{12}\n$/);
  });

  it('propagates the exit status', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'exit 7' });
    assert.equal(r.code, 7);
  });

  it('reports a program that kills itself with its 128+n exit status (the Engine cannot tell it from exit(n))', async () => {
    // src/backend/docker/README.md "Exit status heuristic": exit-signal only for a signal the
    // gateway delivered (or an OOM kill, below); OpenSSH then exits with the status as sent.
    for (const [command, code] of [['kill -KILL $$', 137], ['kill -TERM $$', 143]] as const) {
      const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command, args: ['-v'] });
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, /rtype exit-status/);
      assert.doesNotMatch(r.stderr, /rtype exit-signal/);
    }
  });

  it('keeps stdout and stderr apart', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo out; echo err >&2' });
    assert.equal(r.stdout.toString(), 'out\n');
    assert.match(r.stderr, /^err$/m);
    assert.doesNotMatch(r.stdout.toString(), /err/);
  });

  it('delivers stdin and its EOF (cat ends, all bytes arrive intact)', async () => {
    const input = randomBytes(3 * 1024 * 1024);
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'cat', input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(createHash('sha256').update(r.stdout).digest('hex'), createHash('sha256').update(input).digest('hex'));
  });

  it('streams large output without loss', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'head -c 20000000 /dev/zero | tr "\\0" a' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 20_000_000);
    assert.equal(r.stdout.indexOf('b'), -1);
  });

  it('runs as the image\'s non-root user with no capabilities and no-new-privileges', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'id -u; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status' });
    assert.equal(r.code, 0, r.stderr);
    const [uid, capEff, noNewPrivs] = r.stdout.toString().trim().split('\n');
    assert.equal(uid, '1000');
    assert.match(capEff ?? '', /CapEff:\s+0+$/);
    assert.match(noNewPrivs ?? '', /NoNewPrivs:\s+1$/);
  });

  it('applies the env policy: allowed names pass, others are refused', async () => {
    const r = await ssh(suite.gw, {
      user: 'alice',
      identity: suite.fx.alice.path,
      args: ['-o', 'SetEnv=LANG=C.UTF-8 SNEAKY=1'],
      command: 'echo "LANG=$LANG SNEAKY=${SNEAKY:-unset}"',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'LANG=C.UTF-8 SNEAKY=unset\n');
  });

  it('gives every connection a fresh container and removes it at the end', async () => {
    const a = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'touch /tmp/marker; cat /etc/hostname' });
    const b = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'ls /tmp/marker 2>&1; cat /etc/hostname' });
    const [missing, hostB] = b.stdout.toString().trim().split('\n');
    assert.match(missing ?? '', /No such file/);
    assert.notEqual(a.stdout.toString().trim(), hostB);
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
  });

  it('refuses an unknown key with "Permission denied" and starts nothing', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.stranger.path, command: 'true' });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
    await suite.gw.waitForIdle();
    const line = await suite.gw.waitForLog((l) => l.msg === 'authentication rejected' && l.fingerprint === suite.fx.stranger.fingerprint);
    assert.equal(line.username, 'alice');
    assert.deepEqual(await suite.gw.containers(), []);
  });

  it('refuses a listed key presented for another user', async () => {
    const r = await ssh(suite.gw, { user: 'bob', identity: suite.fx.alice.path, command: 'true' });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
  });
});

describe('exit-signal seen by OpenSSH (session mode, OOM kill)', () => {
  // The container is the program (session mode) and 32 MiB is far too little for a 200 MB shell
  // variable: the kernel's OOM killer ends it with SIGKILL, the Engine reports OOMKilled, and
  // the gateway sends exit-signal KILL (RFC 4254 §6.10) instead of exit-status 137.
  const suite = keyGatewaySuite({ docker: { execution: { mode: 'session', host: { memory: '32m' } } } });

  it('OpenSSH gets exit-signal, has no exit status and exits 255', async () => {
    const r = await ssh(suite.gw, {
      user: 'alice',
      identity: suite.fx.alice.path,
      command: 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived',
      args: ['-v'],
    });
    assert.equal(r.code, 255, r.stderr);
    assert.equal(r.stdout.toString(), '', 'the program was killed before its echo');
    assert.match(r.stderr, /client_input_channel_req: channel 0 rtype exit-signal/);
    assert.doesNotMatch(r.stderr, /rtype exit-status/);
    assert.match(r.stderr, /Exit status -1/);
    const ended = await suite.gw.waitForLog((l) => l.msg === 'session program ended');
    assert.deepEqual(ended.exit, { kind: 'signal', signal: 'KILL', coreDumped: false });
  });
});
