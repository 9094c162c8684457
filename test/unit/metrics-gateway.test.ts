/**
 * The gateway's metric bookkeeping (src/observability/metrics.ts), read back from the rendered
 * Prometheus text exactly as a scraper sees it. Time is injected, so durations are exact.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { register as globalRegistry } from 'prom-client';
import { createMetrics } from '../../src/observability/metrics.js';
import type { BackendConnection, Process, ProcessRequest } from '../../src/backend/backend.js';
import { AirlockError } from '../../src/core/errors.js';

/** The value of one sample line `name{labels} value` (labels in the order prom-client prints them). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** A fake ssh2 Connection: only the private TCP socket's byte counters matter here. */
function fakeClient() {
  const sock = { bytesRead: 0, bytesWritten: 0 };
  return { client: { _sock: sock }, sock };
}

const fakeProcess = {} as Process;
function fakeConnection(startProcess: (r: ProcessRequest) => Promise<Process>): BackendConnection & { closedWith?: string } {
  const conn: BackendConnection & { closedWith?: string } = {
    startProcess,
    async close(reason) {
      conn.closedWith = reason;
    },
  };
  return conn;
}

const exec: ProcessRequest = { channelId: 0, kind: 'exec', command: 'true', env: {} };

describe('gateway metrics', () => {
  it('a whole connection: handshake, login, container start, program start, bytes, duration', async () => {
    const t = clock();
    const m = createMetrics({ defaultMetrics: false, now: t.now });
    const { client, sock } = fakeClient();
    const meter = m.connectionAccepted(client);
    meter.handshake();
    meter.handshake(); // a re-key emits 'handshake' again: still one handshake
    m.authAttempt('publickey', 'reject', 3);
    m.authAttempt('publickey', 'accept', 40);
    meter.authenticated();

    let release!: (c: BackendConnection) => void;
    const inner = fakeConnection(async () => {
      t.advance(50);
      return fakeProcess;
    });
    const opened = meter.workload(new Promise<BackendConnection>((r) => (release = r)));
    t.advance(350);
    release(inner);
    const conn = await opened;
    assert.equal(await conn.startProcess(exec), fakeProcess, 'the wrapper returns the backend\'s process');
    await conn.close('bye');
    assert.equal(inner.closedWith, 'bye', 'close reaches the backend connection');

    sock.bytesRead = 1000;
    sock.bytesWritten = 5000;
    let text = await m.render();
    assert.equal(sample(text, 'containerssh_ssh_current_connections'), 1);
    assert.equal(sample(text, 'airlock_ssh_transferred_bytes_total', 'direction="received"'), 1000, 'open connections count live');
    assert.equal(sample(text, 'airlock_ssh_transferred_bytes_total', 'direction="sent"'), 5000);

    t.advance(60_000);
    sock.bytesRead = 2000;
    sock.bytesWritten = 9000;
    meter.closed();
    meter.closed(); // idempotent
    text = await m.render();
    assert.equal(sample(text, 'containerssh_ssh_connections_total'), 1);
    assert.equal(sample(text, 'containerssh_ssh_current_connections'), 0);
    assert.equal(sample(text, 'containerssh_ssh_successful_handshakes_total'), 1);
    assert.equal(sample(text, 'containerssh_ssh_failed_handshakes_total'), 0);
    assert.equal(sample(text, 'containerssh_auth_server_requests_total'), 2);
    assert.equal(sample(text, 'containerssh_auth_success_total'), 1);
    assert.equal(sample(text, 'containerssh_auth_failures_total'), 1);
    assert.equal(sample(text, 'containerssh_auth_server_failures_total'), 0);
    assert.equal(sample(text, 'airlock_auth_duration_seconds_count', 'method="publickey",outcome="accept"'), 1);
    assert.equal(sample(text, 'airlock_auth_duration_seconds_sum', 'method="publickey",outcome="accept"'), 0.04);
    assert.equal(sample(text, 'airlock_auth_duration_seconds_bucket', 'le="0.025",method="publickey",outcome="accept"'), 0);
    assert.equal(sample(text, 'airlock_auth_duration_seconds_bucket', 'le="0.05",method="publickey",outcome="accept"'), 1);
    assert.equal(sample(text, 'containerssh_backend_requests_total'), 2, 'workload start + program start');
    assert.equal(sample(text, 'containerssh_backend_errors_total'), 0);
    assert.equal(sample(text, 'airlock_container_start_seconds_sum', 'outcome="success"'), 0.35);
    assert.equal(sample(text, 'airlock_container_start_seconds_bucket', 'le="0.25",outcome="success"'), 0);
    assert.equal(sample(text, 'airlock_container_start_seconds_bucket', 'le="0.5",outcome="success"'), 1);
    assert.equal(sample(text, 'airlock_process_start_seconds_sum', 'kind="exec",outcome="success"'), 0.05);
    // Login at t=1000 (+350 +50 +60000 later): the session lasted 60.4 s.
    assert.equal(sample(text, 'airlock_session_duration_seconds_count'), 1);
    assert.equal(sample(text, 'airlock_session_duration_seconds_sum'), 60.4);
    assert.equal(sample(text, 'airlock_session_transferred_bytes_sum', 'direction="sent"'), 9000);
    assert.equal(sample(text, 'airlock_ssh_transferred_bytes_total', 'direction="received"'), 2000, 'final counts move to the closed total');
    assert.equal(sample(text, 'airlock_ssh_transferred_bytes_total', 'direction="sent"'), 9000);
  });

  it('byte totals stay monotonic while connections come and go', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const a = fakeClient();
    const b = fakeClient();
    const ma = m.connectionAccepted(a.client);
    m.connectionAccepted(b.client);
    a.sock.bytesWritten = 100;
    b.sock.bytesWritten = 30;
    assert.equal(sample(await m.render(), 'airlock_ssh_transferred_bytes_total', 'direction="sent"'), 130);
    a.sock.bytesWritten = 150;
    ma.closed();
    b.sock.bytesWritten = 40;
    assert.equal(sample(await m.render(), 'airlock_ssh_transferred_bytes_total', 'direction="sent"'), 190);
  });

  it('a connection that closes before the key exchange is a failed handshake, not a session', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.connectionAccepted({}).closed(); // no socket reachable: counted, no bytes
    const text = await m.render();
    assert.equal(sample(text, 'containerssh_ssh_failed_handshakes_total'), 1);
    assert.equal(sample(text, 'containerssh_ssh_successful_handshakes_total'), 0);
    assert.equal(sample(text, 'airlock_session_duration_seconds_count'), 0);
  });

  it('backend failures: the same rejection comes back, counted with its error code', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const meter = m.connectionAccepted({});
    meter.handshake();
    meter.authenticated();
    const boom = new AirlockError('IMAGE_NOT_FOUND', 'no such image');
    await assert.rejects(meter.workload(Promise.reject(boom)), (err) => err === boom);

    const failing = await meter.workload(
      Promise.resolve(
        fakeConnection(async () => {
          throw new Error('exec create failed');
        }),
      ),
    );
    await assert.rejects(failing.startProcess({ ...exec, kind: 'shell' }), /exec create failed/);
    const text = await m.render();
    assert.equal(sample(text, 'containerssh_backend_requests_total'), 3);
    assert.equal(sample(text, 'containerssh_backend_errors_total'), 2);
    assert.equal(sample(text, 'airlock_backend_errors_total', 'operation="openConnection",code="IMAGE_NOT_FOUND"'), 1);
    assert.equal(sample(text, 'airlock_backend_errors_total', 'operation="startProcess",code="INTERNAL"'), 1, 'a foreign error counts as INTERNAL');
    assert.equal(sample(text, 'airlock_container_start_seconds_count', 'outcome="error"'), 1);
    assert.equal(sample(text, 'airlock_process_start_seconds_count', 'kind="shell",outcome="error"'), 1);
  });

  it('auth backend errors are auth server failures', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.authAttempt('password', 'error', 2_000);
    const text = await m.render();
    assert.equal(sample(text, 'containerssh_auth_server_failures_total'), 1);
    assert.equal(sample(text, 'containerssh_auth_failures_total'), 0);
    assert.equal(sample(text, 'airlock_auth_duration_seconds_sum', 'method="password",outcome="error"'), 2);
  });

  it('failed-login limits: refused attempts and started blocks by scope, both scopes present from the start', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let text = await m.render();
    for (const scope of ['ip', 'user']) {
      assert.equal(sample(text, 'airlock_auth_rate_limited_total', `scope="${scope}"`), 0);
      assert.equal(sample(text, 'airlock_auth_blocks_total', `scope="${scope}"`), 0);
    }
    m.authBlocked('ip');
    m.authRateLimited('ip');
    m.authRateLimited('ip');
    m.authRateLimited('user');
    text = await m.render();
    assert.equal(sample(text, 'airlock_auth_blocks_total', 'scope="ip"'), 1);
    assert.equal(sample(text, 'airlock_auth_blocks_total', 'scope="user"'), 0);
    assert.equal(sample(text, 'airlock_auth_rate_limited_total', 'scope="ip"'), 2);
    assert.equal(sample(text, 'airlock_auth_rate_limited_total', 'scope="user"'), 1);
  });

  it('audit figures are read at scrape time; the pool gauge is read from the pool', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let text = await m.render();
    assert.equal(sample(text, 'airlock_recordings_pending_upload'), 0, 'no recorder wired: 0');
    assert.equal(sample(text, 'airlock_recording_upload_failures_total'), 0);
    const stats = { pending: 3, failedAttempts: 7 };
    m.setAuditSource(() => stats);
    text = await m.render();
    assert.equal(sample(text, 'airlock_recordings_pending_upload'), 3);
    assert.equal(sample(text, 'airlock_recording_upload_failures_total'), 7);
    stats.pending = 0;
    stats.failedAttempts = 9;
    text = await m.render();
    assert.equal(sample(text, 'airlock_recordings_pending_upload'), 0);
    assert.equal(sample(text, 'airlock_recording_upload_failures_total'), 9);

    const pool = { image: 'airlock-test:busybox', idle: 4 };
    m.setPoolSource(() => pool);
    assert.equal(sample(await m.render(), 'airlock_pool_ready_containers', 'image="airlock-test:busybox"'), 4);
    pool.idle = 1; // a claim: the next scrape sees it without anyone pushing the figure
    assert.equal(sample(await m.render(), 'airlock_pool_ready_containers', 'image="airlock-test:busybox"'), 1);
  });

  it('every app has its own registry; nothing lands in prom-client\'s global one', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics();
    a.connectionAccepted({});
    assert.equal(sample(await a.render(), 'containerssh_ssh_connections_total'), 1);
    const textB = await b.render();
    assert.equal(sample(textB, 'containerssh_ssh_connections_total'), 0);
    assert.ok(sample(textB, 'process_resident_memory_bytes')! > 0, 'default process metrics are on by default');
    assert.match(textB, /^# TYPE nodejs_active_handles gauge$/m);
    assert.doesNotMatch(textB, /^nodejs_active_\w+_total/m, 'gauges named _total (promtool rejects them) are dropped');
    assert.equal(globalRegistry.getSingleMetric('containerssh_ssh_connections_total'), undefined);
    assert.equal(a.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  });
});
