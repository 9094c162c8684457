/**
 * The operator listener on its own (real HTTP servers on 127.0.0.1 port 0): routes, readiness
 * answers and deadlines, sharing one address, draining, and a clear error for a taken port.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startOperatorListener, type OperatorListener, type ReadinessCheck } from '../../src/observability/http.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { AirlockError, isAirlockError } from '../../src/core/errors.js';

const logLines: Record<string, unknown>[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }),
);

const url = (a: AddressInfo | undefined, path: string) => {
  assert.ok(a, 'endpoint bound');
  return `http://${a.address}:${a.port}${path}`;
};

describe('operator listener', () => {
  const listeners: OperatorListener[] = [];
  after(async () => {
    for (const l of listeners) await l.close();
  });
  const start = async (...args: Parameters<typeof startOperatorListener>) => {
    const l = await startOperatorListener(...args);
    listeners.push(l);
    return l;
  };

  it('metrics and health on separate ports; each port serves only its own paths', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.connectionAccepted({});
    const l = await start({
      metrics: { host: '127.0.0.1', port: 0, path: '/custom-metrics', render: () => metrics.render(), contentType: metrics.contentType },
      // Another loopback address: equal `host:port` strings (port 0 too) would share one server.
      health: { host: '127.0.0.2', port: 0, checks: [] },
      logger,
    });
    assert.equal(l.healthAddress?.address, '127.0.0.2');
    const m = await fetch(url(l.metricsAddress, '/custom-metrics'));
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(await m.text(), /^containerssh_ssh_connections_total 1$/m);
    assert.equal((await fetch(url(l.metricsAddress, '/healthz'))).status, 404, 'health paths are not on the metrics port');
    assert.equal((await fetch(url(l.healthAddress, '/custom-metrics'))).status, 404, 'metrics are not on the health port');
    const h = await fetch(url(l.healthAddress, '/healthz'));
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const post = await fetch(url(l.healthAddress, '/readyz'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await fetch(url(l.healthAddress, '/readyz?verbose=1'), { method: 'HEAD' });
    assert.equal(head.status, 200, 'query strings are ignored; HEAD works for probes');
  });

  it('the same address for both: one server answers all three paths', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const l = await start({
      metrics: { host: '127.0.0.1', port: 0, path: '/metrics', render: () => metrics.render(), contentType: metrics.contentType },
      health: { host: '127.0.0.1', port: 0, checks: [] },
      logger,
    });
    assert.equal(l.metricsAddress?.port, l.healthAddress?.port);
    for (const path of ['/metrics', '/healthz', '/readyz']) assert.equal((await fetch(url(l.healthAddress, path))).status, 200, path);
  });

  it('/readyz: 200 when every check answers, 503 naming the failed check by error code, per-check deadline', async () => {
    let storeUp = true;
    let pings = 0;
    const checks: ReadinessCheck[] = [
      {
        name: 'backend',
        check: async () => {
          pings++;
          await new Promise((r) => setTimeout(r, 50)); // a probe burst must share this round
        },
      },
      {
        name: 'sessionStore',
        check: async () => {
          if (!storeUp) throw new AirlockError('STORE_UNAVAILABLE', 'redis down');
        },
      },
    ];
    const l = await start({ health: { host: '127.0.0.1', port: 0, checks }, logger });
    const ok = await Promise.all([1, 2, 3].map(() => fetch(url(l.healthAddress, '/readyz'))));
    for (const r of ok) {
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { status: 'ready', checks: { backend: 'ok', sessionStore: 'ok' } });
    }
    assert.equal(pings, 1, 'concurrent probes share one round of checks');

    storeUp = false;
    const down = await fetch(url(l.healthAddress, '/readyz'));
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), { status: 'not ready', checks: { backend: 'ok', sessionStore: 'STORE_UNAVAILABLE' } });
    assert.ok(logLines.some((line) => line.msg === 'not ready'), 'the transition is logged');
    assert.equal((await fetch(url(l.healthAddress, '/healthz'))).status, 200, 'liveness does not depend on the checks');

    const hanging = await start({
      health: { host: '127.0.0.1', port: 0, timeoutMs: 200, checks: [{ name: 'backend', check: () => new Promise<void>(() => undefined) }] },
      logger,
    });
    const t0 = Date.now();
    const slow = await fetch(url(hanging.healthAddress, '/readyz'));
    assert.equal(slow.status, 503);
    assert.deepEqual(await slow.json(), { status: 'not ready', checks: { backend: 'TIMEOUT' } });
    assert.ok(Date.now() - t0 < 2_000, 'a hanging dependency does not hang the probe');
  });

  it('draining: /readyz turns 503 while /healthz stays 200', async () => {
    const l = await start({ health: { host: '127.0.0.1', port: 0, checks: [] }, logger });
    assert.equal((await fetch(url(l.healthAddress, '/readyz'))).status, 200);
    l.setDraining();
    const r = await fetch(url(l.healthAddress, '/readyz'));
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { status: 'draining', checks: {} });
    assert.equal((await fetch(url(l.healthAddress, '/healthz'))).status, 200);
  });

  it('a taken port fails with OPERATOR_LISTEN_FAILED naming the address; nothing stays bound', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as AddressInfo).port;
    try {
      const metrics = createMetrics({ defaultMetrics: false });
      await assert.rejects(
        startOperatorListener({
          // The metrics server binds first, then the health one fails: the metrics one must be
          // closed again (a server left open would also keep this test file from finishing).
          metrics: { host: '127.0.0.1', port: 0, path: '/metrics', render: () => metrics.render(), contentType: metrics.contentType },
          health: { host: '127.0.0.1', port, checks: [] },
          logger,
        }),
        (err) => {
          assert.ok(isAirlockError(err));
          assert.equal(err.code, 'OPERATOR_LISTEN_FAILED');
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port} for /healthz, /readyz: EADDRINUSE`));
          return true;
        },
      );
    } finally {
      blocker.close();
    }
  });

  it('closing ends keep-alive connections at once', async () => {
    const l = await startOperatorListener({ health: { host: '127.0.0.1', port: 0, checks: [] }, logger });
    const r = await fetch(url(l.healthAddress, '/healthz')); // undici keeps the socket alive
    await r.text();
    const t0 = Date.now();
    await l.close();
    assert.ok(Date.now() - t0 < 1_000, `close took ${Date.now() - t0} ms`);
    await assert.rejects(fetch(url(l.healthAddress, '/healthz')));
  });
});
