/**
 * `GET /healthz` and `/readyz` of the real `airlock serve` (health.listen): ready only while the
 * container engine answers and, with a broker, while its session store answers; 503 while
 * draining after SIGTERM. The probes never share a port with the broker's API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { spawnSsh } from '../helpers/ssh.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const HEALTH = { health: { enable: true, listen: '127.0.0.1:0' }, docker: { reaper: { interval: '0' } } };

async function healthBase(gw: TestGateway): Promise<string> {
  const line = await gw.waitForLog((l) => l.msg === 'operator listener started');
  assert.equal(line.metricsPort, undefined, 'metrics are off unless enabled');
  return `http://127.0.0.1:${Number(line.healthPort)}`;
}

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

describe('health endpoints', () => {
  let fx: KeyFixture;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
  });
  after(async () => {
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('the engine answers: /healthz 200, /readyz 200 with the backend check', async () => {
    const gw = await keyGateway(fx, HEALTH);
    try {
      const base = await healthBase(gw);
      assert.deepEqual(await get(`${base}/healthz`), { status: 200, body: { status: 'ok' } });
      assert.deepEqual(await get(`${base}/readyz`), { status: 200, body: { status: 'ready', checks: { backend: 'ok' } } });
    } finally {
      await gw.stop();
    }
  });

  it('the Docker socket is unreachable: /readyz 503 BACKEND_UNAVAILABLE, /healthz still 200', async () => {
    const gw = await keyGateway(fx, { ...HEALTH, docker: { ...HEALTH.docker, connection: { host: 'unix:///nonexistent.sock' } } });
    try {
      const base = await healthBase(gw);
      assert.deepEqual(await get(`${base}/readyz`), { status: 503, body: { status: 'not ready', checks: { backend: 'BACKEND_UNAVAILABLE' } } });
      assert.deepEqual(await get(`${base}/healthz`), { status: 200, body: { status: 'ok' } });
      const warn = await gw.waitForLog((l) => l.msg === 'not ready');
      assert.deepEqual(warn.checks, { backend: 'BACKEND_UNAVAILABLE' }, 'the transition is logged once with the reason');
    } finally {
      await gw.stop();
    }
  });

  it('after SIGTERM /readyz answers 503 "draining" while sessions finish', async () => {
    const gw = await keyGateway(fx, { ...HEALTH, ssh: { shutdownTimeout: '3s' } });
    const base = await healthBase(gw);
    const client = await spawnSsh(gw, { user: 'alice', identity: fx.alice.path, command: 'sleep 60' });
    client.stdin!.end();
    try {
      await gw.waitForLog((l) => l.msg === 'session program started');
      assert.equal((await get(`${base}/readyz`)).status, 200);
      gw.child.kill('SIGTERM');
      await gw.waitForLog((l) => l.msg === 'shutting down: draining connections');
      assert.deepEqual(await get(`${base}/readyz`), { status: 503, body: { status: 'draining', checks: {} } });
      assert.equal((await get(`${base}/healthz`)).status, 200, 'still alive while draining');
    } finally {
      assert.equal(await gw.stop(), 0);
      if (client.exitCode === null) await once(client, 'close');
    }
  });
});

describe('health endpoints with the broker (Redis session store)', () => {
  let fx: KeyFixture;
  let redis: TestRedis;
  let gw: TestGateway;
  let base: string;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    redis = await startRedis();
    gw = await keyGateway(fx, {
      ...HEALTH,
      broker: { listen: '127.0.0.1:0', provisionKeys: ['metrics-test-provision-key'], redisUrl: redis.url },
    });
    base = await healthBase(gw);
  });
  after(async () => {
    await gw?.stop();
    await redis?.stop();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('checks the session store too: 503 STORE_UNAVAILABLE while Redis is down, ready again after', async () => {
    assert.deepEqual(await get(`${base}/readyz`), { status: 200, body: { status: 'ready', checks: { backend: 'ok', sessionStore: 'ok' } } });
    const api = await gw.waitForLog((l) => l.msg === 'broker API listening');
    assert.notEqual(Number(api.port), Number(new URL(base).port), 'the probes have their own port');
    assert.notEqual((await fetch(`http://127.0.0.1:${Number(api.port)}/readyz`)).status, 200, 'and the broker API does not serve them');

    await redis.kill();
    assert.deepEqual(await get(`${base}/readyz`), {
      status: 503,
      body: { status: 'not ready', checks: { backend: 'ok', sessionStore: 'STORE_UNAVAILABLE' } },
    });
    await redis.restart();
    // ioredis reconnects with its own backoff, which announces nothing: probe like an orchestrator.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await get(`${base}/readyz`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200)); // reconnect backoff has no event to await
    }
    assert.equal(status, 200, 'ready again once Redis is back');
  });
});
