/**
 * /metrics of the real `airlock serve` after real OpenSSH sessions: the exposition passes
 * `promtool check metrics` (Debian package prometheus), the ContainerSSH and airlock_* figures
 * match what happened, nothing identifies a user, and the audit recorder's upload backlog shows.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const OPERATOR = { metrics: { enable: true, listen: '127.0.0.1:0' }, docker: { reaper: { interval: '0' } } };

async function metricsUrl(gw: TestGateway): Promise<string> {
  const line = await gw.waitForLog((l) => l.msg === 'operator listener started');
  return `http://127.0.0.1:${Number(line.metricsPort)}/metrics`;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** `promtool check metrics` reads the exposition on stdin; exit 0 and no output = clean. */
async function promtool(text: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdin.end(text);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

describe('metrics after real SSH sessions', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let url: string;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    gw = await keyGateway(fx, OPERATOR);
    url = await metricsUrl(gw);
  });
  after(async () => {
    await gw?.stop();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('passes promtool and counts connections, auth, container and program starts, bytes and durations', async () => {
    const input = randomBytes(256 * 1024);
    const ok = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'cat', input });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.length, input.length);
    const denied = await ssh(gw, { user: 'alice', identity: fx.stranger.path, command: 'true' });
    assert.equal(denied.code, 255);
    await gw.waitForIdle();

    const text = await scrape(url);
    const lint = await promtool(text);
    assert.equal(lint.code, 0, lint.output);
    assert.equal(lint.output, '', 'promtool has no complaint');

    assert.equal(sample(text, 'containerssh_ssh_connections_total'), 2);
    assert.equal(sample(text, 'containerssh_ssh_current_connections'), 0);
    assert.equal(sample(text, 'containerssh_ssh_successful_handshakes_total'), 2);
    assert.equal(sample(text, 'containerssh_ssh_failed_handshakes_total'), 0);
    assert.equal(sample(text, 'containerssh_auth_success_total'), 1);
    assert.ok(sample(text, 'containerssh_auth_failures_total')! >= 1, 'the stranger key was refused');
    assert.equal(sample(text, 'containerssh_auth_server_failures_total'), 0);
    assert.equal(sample(text, 'containerssh_config_server_requests_total'), 0);
    assert.equal(sample(text, 'containerssh_backend_requests_total'), 2, 'one container start + one exec');
    assert.equal(sample(text, 'containerssh_backend_errors_total'), 0);
    assert.equal(sample(text, 'airlock_auth_duration_seconds_count', 'method="publickey",outcome="accept"'), 1);
    assert.equal(sample(text, 'airlock_container_start_seconds_count', 'outcome="success"'), 1);
    assert.ok(sample(text, 'airlock_container_start_seconds_sum', 'outcome="success"')! > 0);
    assert.equal(sample(text, 'airlock_process_start_seconds_count', 'kind="exec",outcome="success"'), 1);
    assert.equal(sample(text, 'airlock_session_duration_seconds_count'), 1, 'only the logged-in connection is a session');
    // The SSH stream carries the 256 KiB each way, plus encryption and protocol overhead.
    assert.ok(sample(text, 'airlock_ssh_transferred_bytes_total', 'direction="received"')! > input.length);
    assert.ok(sample(text, 'airlock_ssh_transferred_bytes_total', 'direction="sent"')! > input.length);
    assert.ok(sample(text, 'airlock_session_transferred_bytes_sum', 'direction="sent"')! > input.length);
    assert.equal(sample(text, 'airlock_recordings_pending_upload'), 0, 'audit off: nothing pending');
    assert.ok(sample(text, 'process_resident_memory_bytes')! > 0);

    // No per-user labels: neither the user, the key nor a connection id appears anywhere.
    const connectionId = String(gw.logs.find((l) => l.msg === 'connection authenticated')?.connectionId);
    for (const secret of ['alice', fx.alice.fingerprint, fx.stranger.fingerprint, connectionId]) {
      assert.ok(!text.includes(secret), `metrics must not contain ${secret}`);
    }
  });

  it('a connection that drops before the key exchange is a failed handshake', async () => {
    const before = sample(await scrape(url), 'containerssh_ssh_failed_handshakes_total') ?? 0;
    // A client that sends its version line and then hangs up (a port scanner, a broken client).
    const { Socket } = await import('node:net');
    const sock = new Socket();
    sock.connect(gw.port, '127.0.0.1');
    await once(sock, 'connect');
    const accepted = () => gw.logs.filter((l) => l.msg === 'connection accepted').length;
    const n = accepted();
    sock.write('SSH-2.0-scanner\r\n');
    await gw.waitForLog(() => accepted() > n); // ssh2 has read the version line: a connection
    sock.destroy();
    await gw.waitForIdle();
    const text = await scrape(url);
    assert.equal(sample(text, 'containerssh_ssh_failed_handshakes_total'), before + 1);
    assert.equal(sample(text, 'containerssh_ssh_current_connections'), 0);
  });
});

describe('metrics: the audit recorder\'s upload backlog', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let spool: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    spool = await tempDir('airlock-metrics-spool-');
    // A port nobody listens on: every upload attempt is refused, so recordings wait in the spool.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    gw = await keyGateway(fx, {
      ...OPERATOR,
      ssh: { shutdownTimeout: '1s' },
      audit: {
        enable: true,
        storage: 's3',
        s3: { local: spool.path, bucket: 'recordings', endpoint: `http://127.0.0.1:${deadPort}`, accessKey: 'test', secretKey: 'testtest', pathStyleAccess: true },
      },
    });
    url = await metricsUrl(gw);
  });
  let url: string;
  after(async () => {
    await gw?.stop();
    await fx?.cleanup();
    await spool?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('shows the recording pending upload and the failed attempts', async () => {
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo recorded' });
    assert.equal(r.code, 0, r.stderr);
    await gw.waitForLog((l) => l.msg === 'recording upload failed; retrying from the spool');
    const text = await scrape(url);
    assert.equal(sample(text, 'airlock_recordings_pending_upload'), 1);
    assert.ok(sample(text, 'airlock_recording_upload_failures_total')! >= 1);
    const lint = await promtool(text);
    assert.equal(lint.code, 0, lint.output);
  });
});
