/** The provisioning API over real HTTP (port 0), with the in-memory store and with a real redis-server. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/index.js';
import { createBrokerRuntime, type BrokerRuntime, type StartedApi } from '../../src/broker/runtime.js';
import { createRedisSessionStore } from '../../src/broker/store/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const KEY_A = randomBytes(20).toString('hex');
const KEY_B = randomBytes(20).toString('hex');
const JWT_VALUE = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QifQ.c2lnbmF0dXJlLXZhbHVlLWhlcmU';

function memoryLog() {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) })), text: () => lines.join('') };
}

async function startBroker(dir: string, broker: Record<string, unknown>, log = memoryLog()) {
  const config = parseConfig(
    {
      ssh: { listen: '127.0.0.1:2222' },
      broker: {
        listen: '127.0.0.1:0',
        provisionKeys: [KEY_A, KEY_B],
        publicHost: 'gw.example.test',
        tokens: { generatedKeyPath: join(dir, 'broker.pem') },
        ...broker,
      },
    },
    'test',
  );
  const runtime = await createBrokerRuntime({ config: config.broker!, logger: log.logger, sshListen: { host: '127.0.0.1', port: 2222 } });
  const api = await runtime.startApi();
  return { runtime, api, base: `http://127.0.0.1:${api.address.port}`, log };
}

function call(base: string, method: string, path: string, body?: unknown, key: string | null = KEY_A, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      ...(key !== null ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

describe('provisioning API (in-memory store)', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let runtime: BrokerRuntime;
  let api: StartedApi;
  let base: string;
  let log: ReturnType<typeof memoryLog>;
  before(async () => {
    dir = await tempDir('airlock-api-');
    ({ runtime, api, base, log } = await startBroker(dir.path, { policy: { maxTtlSeconds: 2400, allowedImages: ['ghcr.io/acme/*', 'alpine:*'] } }));
  });
  after(async () => {
    await api?.close();
    await runtime?.close();
    await dir?.cleanup();
  });

  it('GET /healthz needs no key', async () => {
    const res = await call(base, 'GET', '/healthz', undefined, null);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', store: 'memory' });
  });

  it('refuses a missing or wrong key with 401 and WWW-Authenticate; every configured key works (rotation)', async () => {
    for (const key of [null, 'wrong-key-wrong-key', `${KEY_A}x`, KEY_A.slice(0, -1)]) {
      const res = await call(base, 'POST', '/v1/sessions', { image: 'alpine:3' }, key);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.deepEqual(await res.json(), { error: 'PROVISION_UNAUTHORIZED', message: 'missing or invalid provisioning key' });
    }
    const basic = await call(base, 'GET', '/v1/sessions/x', undefined, null, { authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` });
    assert.equal(basic.status, 401);
    for (const key of [KEY_A, KEY_B]) assert.equal((await call(base, 'POST', '/v1/sessions', { image: 'alpine:3' }, key)).status, 201);
  });

  it('provisions: token, ssh command, expiry (epoch and UTC), TTL capped by policy, secrets stripped', async () => {
    const started = Math.floor(Date.now() / 1000);
    const res = await call(base, 'POST', '/v1/sessions', {
      image: 'ghcr.io/acme/build:42',
      commit_sha: 'A3F5C9E1B2D4F6A8C0E2A4B6C8D0E2F4A6B8C0D2',
      pr_number: '17',
      actor: 'octocat',
      repository: 'acme/app',
      pipeline_run: '1234567',
      ttl_seconds: 99_999,
      env: { GOPATH: '/go', NPM_TOKEN: 'npm_secret', AUTH: `Bearer ${JWT_VALUE}` },
    });
    assert.equal(res.status, 201);
    const s = (await res.json()) as Record<string, unknown>;
    assert.match(String(s.session_id), /^[0-9a-f]{32}$/);
    assert.match(String(s.token), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(s.ssh_host, 'gw.example.test');
    assert.equal(s.ssh_port, 2222);
    assert.equal(s.ssh_command, `ssh -p 2222 ${String(s.token)}@gw.example.test`);
    assert.equal(s.ttl_seconds, 2400, 'capped by broker.policy.maxTtlSeconds');
    const exp = s.expires_at as number;
    assert.ok(Number.isInteger(exp) && exp >= started + 2400 && exp <= started + 2402);
    assert.equal(s.expires_at_human, new Date(exp * 1000).toISOString().replace('T', ' ').replace('.000Z', ' UTC'));
    assert.deepEqual(s.redacted_vars, ['AUTH', 'NPM_TOKEN']);
    assert.equal(s.max_connections, 1);

    const got = await call(base, 'GET', `/v1/sessions/${String(s.session_id)}`);
    assert.equal(got.status, 200);
    const meta = (await got.json()) as Record<string, unknown>;
    assert.deepEqual(meta.env_names, ['GOPATH']);
    assert.equal(meta.commit_sha, 'a3f5c9e1b2d4f6a8c0e2a4b6c8d0e2f4a6b8c0d2');
    assert.equal(meta.pr_number, 17);
    assert.equal(meta.revoked, false);
    assert.equal(meta.active_connections, 0);
    const text = JSON.stringify(meta);
    assert.ok(!text.includes('/go') && !text.includes(String(s.token)), 'no env values, no token');
    assert.ok(!log.text().includes(String(s.token)), 'the token never reaches the log');
    assert.ok(!log.text().includes('npm_secret') && !log.text().includes(JWT_VALUE), 'no secret values in the log');
    assert.match(log.text(), /"NPM_TOKEN":"name"/, 'the log says which names were stripped and why');
  });

  it('clear 400s: missing image, bad fields, unknown fields, bad JSON; 413 and 415', async () => {
    const bad = async (body: unknown, want: RegExp) => {
      const res = await call(base, 'POST', '/v1/sessions', body);
      assert.equal(res.status, 400);
      const json = (await res.json()) as { error: string; problems?: string[]; message: string };
      assert.equal(json.error, 'REQUEST_INVALID');
      assert.match([json.message, ...(json.problems ?? [])].join('\n'), want);
    };
    await bad({}, /^image: required$/m);
    await bad({ image: 'alpine:3; rm -rf /' }, /^image: must be an image reference/m);
    await bad({ image: 'alpine:3', commit_sha: 'xyz' }, /^commit_sha: must be a hex commit id/m);
    await bad({ image: 'alpine:3', pr_number: -1 }, /^pr_number:/m);
    await bad({ image: 'alpine:3', ttl_seconds: 0 }, /^ttl_seconds: must be at least 1$/m);
    await bad({ image: 'alpine:3', max_connections: 50 }, /^max_connections:/m);
    await bad({ image: 'alpine:3', env: { 'A=B': 'x' } }, /^env\.A=B: variable name "A=B" is invalid/m);
    await bad({ image: 'alpine:3', ttl: 60 }, /Unrecognized key.*"ttl"/);
    await bad('{"image": ', /JSON/);
    // Empty optional fields (a push build has no PR number) read as absent.
    assert.equal((await call(base, 'POST', '/v1/sessions', { image: 'alpine:3', pr_number: '', commit_sha: '' })).status, 201);
    const big = await call(base, 'POST', '/v1/sessions', { image: 'alpine:3', env: { BIG: 'x'.repeat(300 * 1024) } });
    assert.equal(big.status, 413);
    const form = await call(base, 'POST', '/v1/sessions', 'image=alpine', KEY_A, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 415);
  });

  it('env names are shell identifiers: anything else (a comma would corrupt AIRLOCK_REDACTED_VARS) is a 400 naming the variable', async () => {
    const rule = 'use letters, digits and "_", not starting with a digit, at most 256 characters';
    const refused = async (body: Record<string, unknown>, problem: string) => {
      const res = await call(base, 'POST', '/v1/sessions', { image: 'alpine:3', ...body });
      assert.equal(res.status, 400, problem);
      const json = (await res.json()) as { error: string; message: string; problems: string[] };
      assert.equal(json.error, 'REQUEST_INVALID');
      assert.equal(json.message, 'the request body is invalid');
      assert.deepEqual(json.problems, [problem]);
    };
    for (const name of ['A,B', 'GOOD,AWS_SECRET_ACCESS_KEY', '1ABC', 'WITH SPACE', 'BASH_FUNC_f%%', 'ÄRGER', 'A-B', 'A.B', '']) {
      await refused({ env: { GOPATH: '/go', [name]: 'x' } }, `env.${name}: variable name ${JSON.stringify(name)} is invalid: ${rule}`);
    }
    await refused({ env: { [`A${'X'.repeat(256)}`]: 'x' } }, `env.A${'X'.repeat(256)}: variable name ${JSON.stringify(`A${'X'.repeat(63)}…`)} is invalid: ${rule}`);
    // The names a client stripped itself are listed in the same variable: same rule.
    await refused({ redacted_vars: ['NPM_TOKEN', 'A,B'] }, `redacted_vars.1: variable name "A,B" is invalid: ${rule}`);

    const ok = await call(base, 'POST', '/v1/sessions', { image: 'alpine:3', env: { _UNDER: '1', lower_9: '2', [`Z${'Z'.repeat(255)}`]: '3' }, redacted_vars: ['MY_TOKEN'] });
    assert.equal(ok.status, 201);
    const s = (await ok.json()) as { session_id: string; redacted_vars: string[] };
    assert.deepEqual(s.redacted_vars, ['MY_TOKEN']);
    const meta = (await (await call(base, 'GET', `/v1/sessions/${s.session_id}`)).json()) as { env_names: string[] };
    assert.deepEqual(meta.env_names, ['Z'.repeat(256), '_UNDER', 'lower_9']);
  });

  it('403 for an image outside broker.policy.allowedImages', async () => {
    const res = await call(base, 'POST', '/v1/sessions', { image: 'docker.io/evil/miner:latest' });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: string }).error, 'POLICY_DENIED');
  });

  it('DELETE revokes (GET shows it), and unknown sessions are 404', async () => {
    const s = (await (await call(base, 'POST', '/v1/sessions', { image: 'alpine:3' })).json()) as { session_id: string };
    const del = await call(base, 'DELETE', `/v1/sessions/${s.session_id}`);
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { session_id: s.session_id, revoked: true });
    const meta = (await (await call(base, 'GET', `/v1/sessions/${s.session_id}`)).json()) as { revoked: boolean; revoked_at: number };
    assert.equal(meta.revoked, true);
    assert.ok(meta.revoked_at > 0);
    for (const method of ['GET', 'DELETE']) {
      const res = await call(base, method, `/v1/sessions/${'0'.repeat(32)}`);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: string }).error, 'SESSION_NOT_FOUND');
    }
    assert.equal((await call(base, 'GET', '/v1/nothing')).status, 404);
  });
});

describe('provisioning API with Redis (what `airlock broker` uses)', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let redis: TestRedis;
  let broker: Awaited<ReturnType<typeof startBroker>>;
  before(async () => {
    dir = await tempDir('airlock-api-redis-');
    redis = await startRedis();
    broker = await startBroker(dir.path, { redisUrl: redis.url, policy: { defaultTtlSeconds: 600, defaultMaxConnections: 2 } });
  });
  after(async () => {
    await broker?.api.close();
    await broker?.runtime.close();
    await redis?.stop();
    await dir?.cleanup();
  });

  it('a session provisioned here is in Redis for every gateway, with its TTL', async () => {
    const res = await call(broker.base, 'POST', '/v1/sessions', { image: 'alpine:3', actor: 'octocat' });
    assert.equal(res.status, 201);
    const s = (await res.json()) as { session_id: string; ttl_seconds: number; max_connections: number };
    assert.equal(s.ttl_seconds, 600);
    assert.equal(s.max_connections, 2);
    const gatewaySide = await createRedisSessionStore({ url: redis.url, logger: pino({ level: 'silent' }) });
    try {
      const state = await gatewaySide.get(s.session_id);
      assert.equal(state?.record.actor, 'octocat');
      assert.equal(state?.record.maxConnections, 2);
    } finally {
      await gatewaySide.close();
    }
  });

  it('Redis down: /healthz 503 and provisioning 503 STORE_UNAVAILABLE; both recover', async () => {
    await redis.kill();
    const health = await call(broker.base, 'GET', '/healthz', undefined, null);
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'unavailable', store: 'redis', error: 'STORE_UNAVAILABLE' });
    const res = await call(broker.base, 'POST', '/v1/sessions', { image: 'alpine:3' });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: string }).error, 'STORE_UNAVAILABLE');
    await redis.restart();
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await call(broker.base, 'GET', '/healthz', undefined, null)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200);
    assert.equal((await call(broker.base, 'POST', '/v1/sessions', { image: 'alpine:3' })).status, 201);
  });
});
