/**
 * What is particular to the SSH proxy backend (the shared behaviour is in
 * test/conformance/sshproxy.test.ts): the sftp subsystem passes through, the upstream host key is
 * pinned, the upstream login (key file, inline key, password, usernamePassThrough), the algorithm
 * and version settings, the connect timeout, and signals after stdin EOF. Upstream is a real
 * OpenSSH sshd; clients are the real OpenSSH ssh/sftp (ssh2 only to send `signal` requests).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { keyFixture, type KeyFixture } from '../helpers/fixture.js';
import { deepMerge, startGateway, type GatewayConfig, type TestGateway } from '../helpers/gateway.js';
import { makeKey } from '../helpers/keys.js';
import { spawnSsh, ssh, sshArgs } from '../helpers/ssh.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

const run = promisify(execFile);

describe('sshproxy backend', () => {
  let sshd: TestSshd;
  let fx: KeyFixture;
  let gw: TestGateway | undefined;
  let authorizedKeys: string;

  before(async () => {
    sshd = await startSshd();
    fx = await keyFixture();
    // alice, plus the upstream user's own name and an unknown one for usernamePassThrough.
    authorizedKeys = join(fx.dir, 'authorized_keys_proxy');
    await writeFile(authorizedKeys, ['alice', sshd.user, 'no-such-upstream-user'].map((u) => `${u} ${fx.alice.publicLine}`).join('\n') + '\n');
  });
  afterEach(async () => {
    await gw?.waitForIdle();
    assert.deepEqual(await sshd.userProcesses(), [], 'nothing may keep running upstream');
    await gw?.stop();
    gw = undefined;
  });
  after(async () => {
    await sshd?.stop();
    await fx?.cleanup();
  });

  const proxyConfig = (sshproxy: Record<string, unknown> = {}): GatewayConfig => ({
    auth: { publicKey: { method: 'authorizedKeys', authorizedKeys } },
    backend: 'sshproxy',
    sshproxy: {
      server: '127.0.0.1',
      port: sshd.port,
      username: sshd.user,
      privateKey: sshd.clientKey.path,
      allowedHostKeyFingerprints: [sshd.hostKeyFingerprint],
      ...sshproxy,
    },
  });
  const start = async (sshproxy: Record<string, unknown> = {}, extra: GatewayConfig = {}) => {
    gw = await startGateway(deepMerge(proxyConfig(sshproxy), extra));
    return gw;
  };
  const runAs = (g: TestGateway, command: string, user = 'alice') => ssh(g, { user, identity: fx.alice.path, command });
  const airlockLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('airlock:'));

  it('passes the sftp subsystem through: a file round trip with the real sftp client', async () => {
    const g = await start();
    const payload = randomBytes(2 * 1024 * 1024 + 5);
    const local = join(fx.dir, 'upload.bin');
    const back = join(fx.dir, 'download.bin');
    const remote = join(sshd.scratchDir, 'sftp-roundtrip.bin');
    await writeFile(local, payload);
    const batch = join(fx.dir, 'batch');
    await writeFile(batch, `put ${local} ${remote}\nget ${remote} ${back}\nrm ${remote}\n`);
    const args = sshArgs(g, { user: 'alice', identity: fx.alice.path }).filter((a) => a !== 'alice@127.0.0.1');
    // sftp takes -P for the port; everything else is the same option list as ssh's.
    const portAt = args.indexOf('-p');
    args.splice(portAt, 2, '-P', String(g.port));
    const { stderr } = await run('sftp', [...args, '-b', batch, 'alice@127.0.0.1']);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha(await readFile(back)), sha(payload), stderr);
  });

  it('refuses port forwarding with a line naming the backend (never dialled from the gateway host)', async () => {
    const g = await start({}, { security: { forwarding: { forwardingMode: 'enable', reverseForwardingMode: 'enable' } } });
    // The upstream sshd's port: reachable from the gateway host, so a wrong dial would answer.
    const direct = await ssh(g, { user: 'alice', identity: fx.alice.path, args: ['-W', `127.0.0.1:${sshd.port}`] });
    assert.equal(direct.code, 255);
    assert.doesNotMatch(direct.stdout.toString(), /SSH-2\.0/);
    assert.match(direct.stderr, /open failed: administratively prohibited: airlock: port forwarding is not supported by the sshproxy backend \[FORWARDING_UNAVAILABLE\]/);
    const reverse = await ssh(g, { user: 'alice', identity: fx.alice.path, args: ['-R', '127.0.0.1:23456:127.0.0.1:9'], command: 'echo ran' });
    assert.equal(reverse.stdout.toString(), 'ran\n', reverse.stderr);
    assert.match(reverse.stderr, /remote port forwarding failed/);
    assert.match(reverse.stderr, /airlock: port forwarding is not supported by the sshproxy backend \[FORWARDING_UNAVAILABLE\]/);
  });

  it('refuses an upstream whose host key is not pinned: one clear line, nothing sent upstream', async () => {
    const other = await makeKey(fx.dir, `other-host-key-${randomBytes(3).toString('hex')}`);
    const logFrom = sshd.log().length;
    const g = await start({ allowedHostKeyFingerprints: [other.fingerprint] });
    const r = await runAs(g, 'echo should-not-run');
    assert.equal(r.code, 255, r.stderr);
    assert.equal(r.stdout.length, 0);
    const lines = airlockLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', /host key is not trusted.*\[UPSTREAM_HOST_KEY_REJECTED\]/);
    assert.doesNotMatch(r.stderr, /SHA256:|127\.0\.0\.1/, 'fingerprints and addresses are for the operator log only');
    const logged = await g.waitForLog((l) => l.code === 'UPSTREAM_HOST_KEY_REJECTED');
    assert.match(JSON.stringify(logged), new RegExp(sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')));
    const upstreamLog = sshd.log().slice(logFrom);
    assert.match(upstreamLog, /Connection from 127\.0\.0\.1/, 'the gateway did connect');
    assert.doesNotMatch(upstreamLog, /Accepted \w+ for|userauth-request/, 'but never tried to log in');
  });

  it('logs in upstream with an inline key, or as the user themselves with usernamePassThrough', async () => {
    const g = await start({ usernamePassThrough: true, username: undefined, privateKey: await readFile(sshd.clientKey.path, 'utf8') });
    const ok = await runAs(g, 'id -un', sshd.user);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.toString(), `${sshd.user}\n`);
    const refused = await runAs(g, 'id -un', 'no-such-upstream-user');
    assert.equal(refused.code, 255);
    assert.match(airlockLines(refused.stderr)[0] ?? '', /could not log in to the upstream.*\[UPSTREAM_AUTH_FAILED\]/);
  });

  it('logs in upstream with a password, and reports a wrong one clearly', async () => {
    const g = await start({ privateKey: undefined, password: sshd.password });
    const ok = await runAs(g, 'echo via-password');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.toString(), 'via-password\n');
    await sshd.waitForLog(new RegExp(`Accepted password for ${sshd.user}`));
    await g.stop();
    const wrong = await start({ privateKey: undefined, password: 'not-the-password' });
    const refused = await runAs(wrong, 'true');
    assert.equal(refused.code, 255);
    assert.match(airlockLines(refused.stderr)[0] ?? '', /\[UPSTREAM_AUTH_FAILED\]/);
    assert.doesNotMatch(wrong.output(), /not-the-password/, 'the upstream password never reaches the log');
  });

  it('offers exactly the configured algorithms and client version upstream', async () => {
    const g = await start({
      ciphers: ['aes128-ctr'],
      kex: ['ecdh-sha2-nistp256'],
      macs: ['hmac-sha2-256'],
      hostKeyAlgos: ['ssh-ed25519'],
      clientVersion: 'SSH-2.0-AirlockProxyTest_1.0',
    });
    const r = await runAs(g, 'echo algos');
    assert.equal(r.code, 0, r.stderr);
    const log = await sshd.waitForLog(/remote software version AirlockProxyTest_1\.0/);
    assert.match(log, /kex: algorithm: ecdh-sha2-nistp256/);
    assert.match(log, /kex: client->server cipher: aes128-ctr MAC: hmac-sha2-256 /);
  });

  it('gives up on an upstream that never speaks after sshproxy.timeout, with a clear line', async () => {
    // Accepts TCP and stays silent, like a hung server or a firewall that black-holes the reply.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    }).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const g = await start({ port: (silent.address() as { port: number }).port, timeout: '1s' });
      const started = Date.now();
      const r = await runAs(g, 'true');
      assert.equal(r.code, 255);
      assert.match(airlockLines(r.stderr)[0] ?? '', /did not answer in time.*\[TIMEOUT\]/);
      assert.ok(Date.now() - started < 15_000, 'the timeout applies');
      await g.waitForIdle();
      // ssh2 reports the dropped upstream once more after the timeout; that must not crash the gateway.
      assert.deepEqual(g.logs.filter((l) => l.level === 'fatal').map((l) => l.msg), []);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('ends the upstream program when a client that had closed stdin disconnects (no orphan upstream)', async () => {
    const g = await start();
    const client = new ssh2.Client();
    client.on('error', () => undefined);
    client.connect({ host: '127.0.0.1', port: g.port, username: 'alice', privateKey: await readFile(fx.alice.path) });
    await once(client, 'ready');
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.exec('cat; echo after-eof; exec sleep 1000', (err, c) => (err ? reject(err) : resolve(c))),
    );
    let output = '';
    const sawEof = new Promise<void>((resolve) =>
      ch.on('data', (d: Buffer) => {
        output += d.toString();
        if (output.includes('after-eof')) resolve();
      }),
    );
    // EOF: the gateway ends the upstream channel's input (cat ending proves it arrived). From then
    // on ssh2's ClientChannel.signal() sends nothing, and sshd lets a program without a pty run on
    // after its channel closes — the KILL on disconnect must still reach it.
    ch.end();
    await sawEof;
    assert.ok((await sshd.userProcesses()).length > 0, 'sleep runs upstream');
    const closed = once(client, 'close');
    client.end();
    await closed;
    await g.waitForIdle();
    await sshd.waitForLog(/session_signal_req: signal KILL/);
    // afterEach asserts that no process of the upstream user is left.
  });

  it('tells the user when the upstream connection is lost mid-session', async () => {
    const g = await start();
    const child = await spawnSsh(g, { user: 'alice', identity: fx.alice.path, command: 'echo ready; sleep 1000' });
    child.stdin!.on('error', () => undefined);
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = once(child, 'close');
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('ready')) resolve();
      }),
    );
    // The upstream crashes: its per-connection process (running as the upstream user) dies.
    const { stdout: ps } = await run('ps', ['-u', sshd.user, '-o', 'pid=,args=']);
    const session = ps.split('\n').find((line) => /sshd: .*@notty/.test(line));
    assert.ok(session, ps);
    process.kill(Number(session.trim().split(/\s+/)[0]), 'SIGKILL');
    const [code] = (await closed) as [number | null];
    assert.equal(code, 255, stderr);
    assert.match(stderr, /^airlock: the connection to the upstream SSH server was lost \[EXEC_FAILED\]/m);
    // Like any OpenSSH server that dies, it leaves its session's programs behind: end them here.
    for (const pid of await sshd.userProcesses()) process.kill(Number(pid), 'SIGKILL');
  });
});
