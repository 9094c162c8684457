/**
 * Port forwarding through the front door: the real OpenSSH client (`-L`, `-W`, `-R`, `-O
 * cancel`) against real Docker. `ssh -L` must dial from inside the workload's network namespace
 * (through the network-helper sidecar), `ssh -R` must listen inside it; both are off by default
 * and refused for a certificate without permit-port-forwarding; nothing is left behind.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AuditType, scanBinary } from '../../src/audit/index.js';
import type { AuditMessage } from '../../src/audit/format/binary-format.js';
import { ensureRelayImage, inspectContainer, RELAY_IMAGE } from '../helpers/docker.js';
import { keyGatewaySuite } from '../helpers/fixture.js';
import type { LogLine, TestGateway } from '../helpers/gateway.js';
import { makeKey } from '../helpers/keys.js';
import { connectOutcome, exchange, freePort, socksExchange, startTcpServer, type TestTcpServer } from '../helpers/net.js';
import { spawnSsh, ssh, startSshMaster, sshArgs } from '../helpers/ssh.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

const ENABLED = { forwarding: { forwardingMode: 'enable', reverseForwardingMode: 'enable' } };
/** Any fixed port works inside a workload: every connection has a fresh network namespace. */
const INSIDE_PORT = 23456;

/** The gateway's containers of one role (`connection`, `relay`) with their inspect data. */
async function containersByRole(gw: TestGateway, role: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const id of await gw.containers()) {
    const info = await inspectContainer(id).catch(() => undefined);
    const labels = (info?.['Config'] as { Labels?: Record<string, string> } | undefined)?.Labels ?? {};
    if (info && labels['airlock.role'] === role) out.push(info);
  }
  return out;
}

async function workloadAddress(gw: TestGateway): Promise<string> {
  const [main] = await containersByRole(gw, 'connection');
  assert.ok(main, 'a connection container');
  const ip = (main['NetworkSettings'] as { IPAddress?: string }).IPAddress;
  assert.ok(ip, 'the workload has an address on the bridge network');
  return ip;
}

/** Echoes every chunk with an "echo:" prefix; ends when the client does. */
function echoServer(): Promise<TestTcpServer> {
  return startTcpServer((s) => {
    s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
    s.on('end', () => s.end());
  });
}

/** Speaks first (a banner), then answers the first line and closes. */
function bannerServer(): Promise<TestTcpServer> {
  return startTcpServer((s) => {
    s.write('220 hello from the test host\n');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) s.end(`got:${got}`);
    });
    s.on('end', () => s.end());
  });
}

/** `ssh -W host:port`: sends `input` (then EOF), returns the bytes received and the rate. */
async function pumpW(gw: TestGateway, identity: string, target: string, input: Buffer | undefined): Promise<{ code: number | null; received: number; stdout: Buffer; stderr: string; ms: number }> {
  const child = spawn('ssh', sshArgs(gw, { user: 'alice', identity, args: ['-W', target] }), { stdio: ['pipe', 'pipe', 'pipe'] });
  let received = 0;
  const head: Buffer[] = [];
  let stderr = '';
  const started = performance.now();
  child.stdout.on('data', (d: Buffer) => {
    received += d.length;
    if (head.length < 16) head.push(d);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined);
  if (input) child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, received, stdout: Buffer.concat(head), stderr, ms: performance.now() - started };
}

describe('port forwarding enabled (security.forwarding)', async () => {
  // An SSH CA next to the authorized keys, for the certificate cases.
  const caDir = await tempDir('airlock-fwd-ca-');
  const ca = await makeKey(caDir.path, 'ca');
  const suite = keyGatewaySuite({ security: ENABLED, auth: { publicKey: { trustedUserCAKeys: [`${ca.path}.pub`] } } });
  before(() => ensureRelayImage());
  after(() => caDir.cleanup());
  const alice = () => ({ user: 'alice', identity: suite.fx.alice.path });

  it('ssh -L (and -D) reach a server listening only inside the workload; the gateway host cannot reach it', async () => {
    const inside = await freePort(); // free on the host too: "refused here" then means something
    const local = await freePort();
    const socks = await freePort();
    const master = await startSshMaster(suite.gw, { ...alice(), args: ['-L', `127.0.0.1:${local}:127.0.0.1:${inside}`, '-D', `127.0.0.1:${socks}`] });
    try {
      const started = await master.run(`mkdir -p /tmp/www && echo inside-only > /tmp/www/index.html && httpd -p 127.0.0.1:${inside} -h /tmp/www && echo started`);
      assert.equal(started.code, 0, started.stderr);
      // Eight at once as the connection's first forwarding use: one helper serves them all.
      const answers = await Promise.all(Array.from({ length: 8 }, () => exchange(local, 'GET /index.html HTTP/1.0\r\n\r\n')));
      for (const answer of answers.map(String)) {
        assert.match(answer, /^HTTP\/1\.[01] 200 OK/);
        assert.match(answer, /inside-only/);
      }
      assert.equal((await containersByRole(suite.gw, 'relay')).length, 1);
      // -D (SOCKS) opens the same kind of channel.
      const viaSocks = (await socksExchange(socks, '127.0.0.1', inside, 'GET /index.html HTTP/1.0\r\n\r\n')).toString();
      assert.match(viaSocks, /^HTTP\/1\.[01] 200 OK[\s\S]*inside-only/);
      // The server is bound to the workload's loopback: the gateway host reaches it neither on
      // its own loopback nor at the container's address, so the dial happened inside.
      assert.equal(await connectOutcome('127.0.0.1', inside), 'ECONNREFUSED');
      assert.equal(await connectOutcome(await workloadAddress(suite.gw), inside), 'ECONNREFUSED');
      await suite.gw.waitForLog((l) => l.msg === 'port forwarding channel open' && l.port === inside);
    } finally {
      await master.stop();
    }
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
  });

  it('ssh -W to a port nobody listens on inside the workload: the channel is refused with the reason', async () => {
    const res = await pumpW(suite.gw, suite.fx.alice.path, `127.0.0.1:${INSIDE_PORT}`, undefined);
    assert.equal(res.code, 255);
    assert.match(res.stderr, new RegExp(`open failed: connect failed: airlock: could not connect to 127\\.0\\.0\\.1:${INSIDE_PORT} inside the workload: Connection refused \\[FORWARD_TARGET_FAILED\\]`));
    await suite.gw.waitForLog((l) => l.code === 'FORWARD_TARGET_FAILED' && l.port === INSIDE_PORT);
    await suite.gw.waitForIdle();
  });

  it('ssh -R listens inside the workload: data round-trips both ways, also when the server speaks first; -O cancel stops it', async () => {
    const echo = await echoServer();
    const banner = await bannerServer();
    const spec = `127.0.0.1:${INSIDE_PORT}:127.0.0.1:${echo.port}`;
    const master = await startSshMaster(suite.gw, { ...alice(), args: ['-R', spec, '-R', `0:127.0.0.1:${banner.port}`] });
    try {
      await master.waitForStderr(new RegExp(`remote forward success for: listen 127\\.0\\.0\\.1:${INSIDE_PORT}`));
      const dynamic = Number((await master.waitForStderr(new RegExp(`Allocated port (\\d+) for remote forward to 127\\.0\\.0\\.1:${banner.port}`)))[1]);
      assert.ok(dynamic >= 32768 && dynamic <= 60999, `allocated port ${dynamic}`);

      // Client speaks first and half-closes (busybox nc shuts down its write side on EOF).
      const echoed = await master.run(`echo hi | nc 127.0.0.1 ${INSIDE_PORT}`);
      assert.equal(echoed.code, 0, echoed.stderr);
      assert.equal(echoed.stdout.toString(), 'echo:hi\n');
      assert.equal(echo.accepted(), 1);

      // Server speaks first: the client inside writes only after the banner has arrived.
      const converse = [
        'cd /tmp && rm -f in out && mkfifo in',
        `{ until grep -q 220 out 2>/dev/null; do usleep 10000; done; echo hello; } > in &`,
        `nc 127.0.0.1 ${dynamic} < in > out; cat out`,
      ].join('\n');
      const conversation = await master.run(converse);
      assert.equal(conversation.code, 0, conversation.stderr);
      assert.equal(conversation.stdout.toString(), '220 hello from the test host\ngot:hello\n');

      // Only loopback connections are relayed (like sshd's GatewayPorts=no): from the
      // container's own bridge address the connection is closed without reaching the host.
      const ip = await workloadAddress(suite.gw);
      const outside = await master.run(`echo sneaky | nc ${ip} ${INSIDE_PORT}; echo rc=$?`);
      assert.doesNotMatch(outside.stdout.toString(), /echo:/);
      assert.equal(echo.accepted(), 1, 'nothing reached the host server');

      const cancelled = await master.control('cancel', ['-R', spec]);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      const refused = await master.run(`echo hi | nc 127.0.0.1 ${INSIDE_PORT}`);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /Connection refused/);
      await suite.gw.waitForLog((l) => l.msg === 'remote port forwarding cancelled' && l.port === INSIDE_PORT);

      // A port already taken inside the workload: refused, and the reason reaches the next session.
      const busy = INSIDE_PORT + 2;
      assert.equal((await master.run(`nc -ll -p ${busy} -e true </dev/null >/dev/null 2>&1 & echo started`)).code, 0);
      const taken = await master.control('forward', ['-R', `127.0.0.1:${busy}:127.0.0.1:${echo.port}`]);
      assert.notEqual(taken.code, 0);
      await suite.gw.waitForLog((l) => l.code === 'FORWARD_TARGET_FAILED' && l.request === 'tcpip-forward' && l.bindPort === busy);
      const next = await master.run('true');
      assert.match(next.stderr, new RegExp(`airlock: could not listen on port ${busy} inside the workload: bind: Address already in use \\[FORWARD_TARGET_FAILED\\]`));
    } finally {
      await master.stop();
      await echo.close();
      await banner.close();
    }
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
  });

  it('the network helper shares the workload network namespace, is hardened and labelled, and is removed after a client kill -9', async () => {
    const echo = await echoServer();
    const master = await startSshMaster(suite.gw, { ...alice(), args: ['-R', `127.0.0.1:${INSIDE_PORT}:127.0.0.1:${echo.port}`] });
    let relayId: string;
    try {
      await master.waitForStderr(/remote forward success/);
      const [main] = await containersByRole(suite.gw, 'connection');
      const [relay] = await containersByRole(suite.gw, 'relay');
      assert.ok(main && relay);
      relayId = String(relay['Id']);
      const labels = (relay['Config'] as { Labels: Record<string, string> }).Labels;
      const mainLabels = (main['Config'] as { Labels: Record<string, string> }).Labels;
      assert.equal(labels['airlock.connection'], mainLabels['airlock.connection']);
      assert.equal(labels['airlock.gateway'], suite.gw.gatewayId);
      assert.equal(labels['airlock.user'], 'alice');
      const config = relay['Config'] as { User: string; Image: string };
      assert.equal(config.User, '65534:65534');
      assert.equal(config.Image, RELAY_IMAGE);
      const host = relay['HostConfig'] as Record<string, unknown>;
      assert.equal(host['NetworkMode'], `container:${String(main['Id'])}`);
      assert.deepEqual(host['CapDrop'], ['ALL']);
      assert.equal(host['ReadonlyRootfs'], true);
      assert.ok((host['SecurityOpt'] as string[]).includes('no-new-privileges'));
      assert.equal((host['LogConfig'] as { Type: string }).Type, 'none');
      assert.equal(host['PidsLimit'], 256);
      assert.equal(host['Memory'], 64 * 1024 * 1024);
      // A connection in flight when the client dies.
      const echoed = await master.run(`echo hi | nc 127.0.0.1 ${INSIDE_PORT}`);
      assert.equal(echoed.stdout.toString(), 'echo:hi\n');
    } finally {
      master.child.kill('SIGKILL');
      await once(master.child, 'close').catch(() => undefined);
      await master.stop();
      await echo.close();
    }
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
    await assert.rejects(inspectContainer(relayId), 'the relay container is gone');
  });

  it('a certificate without permit-port-forwarding may not forward; one with it may', async () => {
    const key = await makeKey(suite.fx.dir, 'cert-noforward');
    await run('ssh-keygen', ['-q', '-s', ca.path, '-I', 'no-forwarding', '-n', 'alice', '-O', 'no-port-forwarding', `${key.path}.pub`]);
    const refused = await pumpW(suite.gw, key.path, `127.0.0.1:${INSIDE_PORT}`, undefined);
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /open failed: administratively prohibited: airlock: port forwarding \(ssh -L\) for this certificate is not allowed by the gateway policy \[POLICY_DENIED\]/);
    const reverse = await ssh(suite.gw, { user: 'alice', identity: key.path, args: ['-R', `127.0.0.1:${INSIDE_PORT}:127.0.0.1:9`], command: 'echo ran' });
    assert.equal(reverse.code, 0, reverse.stderr);
    assert.match(reverse.stderr, /remote port forwarding failed/);
    assert.match(reverse.stderr, /airlock: remote port forwarding \(ssh -R\) for this certificate is not allowed by the gateway policy \[POLICY_DENIED\]/);

    const allowed = await makeKey(suite.fx.dir, 'cert-forward');
    await run('ssh-keygen', ['-q', '-s', ca.path, '-I', 'forwarding', '-n', 'alice', `${allowed.path}.pub`]);
    const reached = await pumpW(suite.gw, allowed.path, `127.0.0.1:${INSIDE_PORT}`, undefined);
    // Allowed: the workload is dialled (nothing listens there, so the target refuses).
    assert.match(reached.stderr, /connect failed: .*Connection refused \[FORWARD_TARGET_FAILED\]/);
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
  });

  it('throughput: ssh -W in both directions through the network helper (bytes counted end to end)', async (t) => {
    const size = 256 * 1024 * 1024;
    const down = INSIDE_PORT;
    const up = INSIDE_PORT + 1;
    const master = await startSshMaster(suite.gw, alice());
    try {
      const started = await master.run(
        `nc -ll -p ${down} -e head -c ${size} /dev/zero </dev/null >/dev/null 2>&1 & nc -ll -p ${up} -e wc -c </dev/null >/dev/null 2>&1 & echo ok`,
      );
      assert.equal(started.code, 0, started.stderr);
      // Separate connections for the transfers (the master keeps the servers' workload).
      const from = await masterW(master.muxArgs, `127.0.0.1:${down}`, undefined);
      assert.equal(from.received, size, from.stderr);
      const to = await masterW(master.muxArgs, `127.0.0.1:${up}`, Buffer.alloc(size, 7));
      assert.equal(to.stdout.toString().trim(), String(size), to.stderr);
      const rate = (bytes: number, ms: number) => (bytes / (1024 * 1024) / (ms / 1000)).toFixed(1);
      t.diagnostic(`ssh -W workload→client: ${rate(size, from.ms)} MiB/s; client→workload: ${rate(size, to.ms)} MiB/s (${size / 1024 / 1024} MiB each)`);
    } finally {
      await master.stop();
    }
    await suite.gw.waitForIdle();

    async function masterW(mux: readonly string[], target: string, input: Buffer | undefined) {
      const child = await spawnSsh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: [...mux, '-W', target] });
      let received = 0;
      const head: Buffer[] = [];
      let stderr = '';
      const t0 = performance.now();
      child.stdout!.on('data', (d: Buffer) => {
        received += d.length;
        if (head.length < 4) head.push(d);
      });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin!.on('error', () => undefined);
      if (input) child.stdin!.end(input);
      await once(child, 'close');
      return { received, stdout: Buffer.concat(head), stderr, ms: performance.now() - t0 };
    }
  });
});

describe('port forwarding off by default', () => {
  const suite = keyGatewaySuite();

  it('ssh -L/-W is refused as administratively prohibited with one airlock line and a POLICY_DENIED log line', async () => {
    const res = await pumpW(suite.gw, suite.fx.alice.path, '127.0.0.1:22', undefined);
    assert.equal(res.code, 255);
    assert.match(res.stderr, /open failed: administratively prohibited: airlock: port forwarding \(ssh -L\) is not allowed by the gateway policy \[POLICY_DENIED\]/);
    await suite.gw.waitForLog((l) => l.code === 'POLICY_DENIED' && l.request === 'direct-tcpip');
    await suite.gw.waitForIdle();
  });

  it('ssh -R is refused: OpenSSH reports the failure, the session shows why, the log has POLICY_DENIED', async () => {
    const res = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: ['-R', `127.0.0.1:${INSIDE_PORT}:127.0.0.1:9`], command: 'echo ran' });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.toString(), 'ran\n');
    assert.match(res.stderr, new RegExp(`remote port forwarding failed for listen port ${INSIDE_PORT}`));
    assert.match(res.stderr, /airlock: remote port forwarding \(ssh -R\) is not allowed by the gateway policy \[POLICY_DENIED\]/);
    await suite.gw.waitForLog((l) => l.code === 'POLICY_DENIED' && l.request === 'tcpip-forward');
    const strict = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: ['-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${INSIDE_PORT}:127.0.0.1:9`], command: 'echo ran' });
    assert.equal(strict.code, 255);
    assert.equal(strict.stdout.toString(), '');
    await suite.gw.waitForIdle();
    assert.ok(!suite.gw.logs.some((l) => l.msg === 'network helper started'), 'no helper container was started');
  });
});

describe('port forwarding where it cannot work', () => {
  describe('session mode', () => {
    const suite = keyGatewaySuite({ security: ENABLED, docker: { execution: { mode: 'session' } } });
    it('is refused with a line that says why', async () => {
      const res = await pumpW(suite.gw, suite.fx.alice.path, `127.0.0.1:${INSIDE_PORT}`, undefined);
      assert.equal(res.code, 255);
      assert.match(res.stderr, /administratively prohibited: airlock: port forwarding needs a container per connection \(docker\.execution\.mode: connection\) \[FORWARDING_UNAVAILABLE\]/);
      await suite.gw.waitForIdle();
      assert.deepEqual(await suite.gw.containers(), []);
    });
  });

  describe('relay image missing (docker.relay.image)', () => {
    const suite = keyGatewaySuite({ security: ENABLED, docker: { relay: { image: 'airlock-relay:not-built' } } });
    it('fails closed with a system error; the log says how to build the image', async () => {
      const res = await pumpW(suite.gw, suite.fx.alice.path, `127.0.0.1:${INSIDE_PORT}`, undefined);
      assert.equal(res.code, 255);
      assert.match(res.stderr, /airlock: port forwarding failed in the gateway; try again later \[FORWARDING_FAILED\]/);
      const line = await suite.gw.waitForLog((l) => l.code === 'FORWARDING_FAILED');
      assert.match(JSON.stringify(line), /airlock-relay:not-built.*build-relay-image\.sh/);
      await suite.gw.waitForIdle();
      assert.deepEqual(await suite.gw.containers(), []);
    });
  });
});

describe('port forwarding is audited', async () => {
  const storage = await tempDir('airlock-fwd-audit-');
  const suite = keyGatewaySuite({
    security: ENABLED,
    audit: { enable: true, format: 'binary', storage: 'file', file: { directory: storage.path }, intercept: { forwarding: true } },
  });
  before(() => ensureRelayImage());
  after(() => storage.cleanup());

  it('records 202/203 reverse forward and cancel, 303/304 channels with their bytes, and closes with byte counts', async () => {
    const echo = await echoServer();
    const spec = `127.0.0.1:${INSIDE_PORT}:127.0.0.1:${echo.port}`;
    const master = await startSshMaster(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: ['-R', spec] });
    let connectionId: string;
    try {
      await master.waitForStderr(/remote forward success/);
      const echoed = await master.run(`echo audited | nc 127.0.0.1 ${INSIDE_PORT}; nc -ll -p ${INSIDE_PORT + 1} -e echo served-inside </dev/null >/dev/null 2>&1 &`);
      assert.equal(echoed.stdout.toString(), 'echo:audited\n', echoed.stderr);
      // Through the master: a second connection would get a workload of its own.
      const through = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: [...master.muxArgs, '-W', `127.0.0.1:${INSIDE_PORT + 1}`] });
      assert.equal(through.stdout.toString(), 'served-inside\n', through.stderr);
      assert.equal((await master.control('cancel', ['-R', spec])).code, 0);
      const authenticated = suite.gw.logs.find((l: LogLine) => l.msg === 'remote port forwarding listening');
      connectionId = String(authenticated?.['connectionId']);
    } finally {
      await master.stop();
      await echo.close();
    }
    await suite.gw.waitForIdle();
    const stored = await suite.gw.waitForLog((l) => l.msg === 'recording stored' && l.connectionId === connectionId, 30_000);
    const msgs: AuditMessage[] = [];
    await scanBinary([await readFile(join(String(stored['location']), 'audit.airlock'))], (m) => {
      msgs.push(m);
    });
    const of = (type: number) => msgs.filter((m) => m.type === type);
    const [reverse] = of(AuditType.RequestReverseForward);
    assert.deepEqual(reverse?.payload, { bindHost: '127.0.0.1', bindPort: INSIDE_PORT, boundPort: INSIDE_PORT });
    assert.deepEqual(of(AuditType.RequestCancelReverseForward).map((m) => m.payload), [{ bindHost: '127.0.0.1', bindPort: INSIDE_PORT, found: true }]);
    const [reverseChannel] = of(AuditType.NewReverseForwardChannel);
    assert.ok(reverseChannel && reverseChannel.channelId !== null);
    assert.equal(reverseChannel.payload['connectedPort'], INSIDE_PORT);
    assert.equal(reverseChannel.payload['originatorHost'], '127.0.0.1');
    const [forward] = of(AuditType.NewForwardChannel);
    assert.ok(forward && forward.channelId !== null);
    assert.equal(forward.payload['hostToConnect'], '127.0.0.1');
    assert.equal(forward.payload['portToConnect'], INSIDE_PORT + 1);
    for (const ch of [reverseChannel.channelId, forward.channelId]) {
      assert.ok(msgs.some((m) => m.type === AuditType.NewChannelSuccessful && m.channelId === ch), `301 for channel ${ch}`);
    }
    // Each channel starts with 300 (its type), then its details (303 / 304), then 301.
    for (const [detail, type] of [[reverseChannel, 'forwarded-tcpip'], [forward, 'direct-tcpip']] as const) {
      const ofChannel = msgs.filter((m) => m.channelId === detail.channelId).map((m) => m.type);
      assert.deepEqual(ofChannel.slice(0, 3), [AuditType.NewChannel, detail.type, AuditType.NewChannelSuccessful], `channel ${detail.channelId}`);
      assert.deepEqual(msgs.find((m) => m.type === AuditType.NewChannel && m.channelId === detail.channelId)?.payload, { type });
    }
    // audit.intercept.forwarding: the forwarded bytes, per direction.
    const bytes = (ch: number | null, stream: number) =>
      Buffer.concat(msgs.filter((m) => m.type === AuditType.IO && m.channelId === ch && m.payload['stream'] === stream).map((m) => Buffer.from(m.payload['data'] as Uint8Array))).toString();
    assert.equal(bytes(reverseChannel.channelId, 1), 'audited\n');
    assert.equal(bytes(reverseChannel.channelId, 0), 'echo:audited\n');
    assert.equal(bytes(forward.channelId, 1), 'served-inside\n');
    const close = msgs.find((m) => m.type === AuditType.Close && m.channelId === forward.channelId);
    assert.deepEqual(close?.payload, { bytesToWorkload: 0, bytesFromWorkload: 'served-inside\n'.length });
    assert.ok((await readdir(storage.path)).length > 0);
  });
});
