/** The Redis session store against a real redis-server: atomic slots across gateways, TTLs, pub/sub revocation, outages. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisSessionStore } from '../../src/broker/store/redis.js';
import type { SessionRecord, SessionStore } from '../../src/broker/store/session-store.js';
import { newSessionId } from '../../src/broker/tokens.js';
import { AirlockError } from '../../src/core/errors.js';
import { retry } from '../../src/core/retry.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const quiet = pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    id: newSessionId(),
    image: 'alpine:3',
    actor: 'octocat',
    env: { GOPATH: '/go' },
    redactedVars: ['GITHUB_TOKEN'],
    maxConnections: 1,
    createdAt: now,
    expiresAt: now + 600_000,
    ...overrides,
  };
}

describe('redis session store', () => {
  let redis: TestRedis;
  let raw: Redis;
  const stores: SessionStore[] = [];
  const open = async (clock?: { now(): number }) => {
    const s = await createRedisSessionStore({ url: redis.url, logger: quiet, ...(clock ? { clock } : {}), timeoutMs: 1_000 });
    stores.push(s);
    return s;
  };

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { lazyConnect: true });
    await raw.connect();
  });
  after(async () => {
    for (const s of stores) await s.close();
    raw.disconnect();
    await redis.stop();
  });

  it('stores a session under its id with a TTL, and reads it back validated', async () => {
    const store = await open();
    const r = record();
    await store.create(r, r.expiresAt + 60_000);
    const state = await store.get(r.id);
    assert.deepEqual(state, { record: r, revoked: false, activeConnections: 0 });
    const pttl = await raw.pttl(`airlock:session:{${r.id}}`);
    assert.ok(pttl > 600_000 && pttl <= 660_000, `pttl ${pttl}`);
    assert.equal(await store.get(newSessionId()), undefined);
    assert.equal(await store.get('../../*'), undefined);
  });

  it('max_connections holds across two gateways under a burst (Lua script, one round trip)', async () => {
    const a = await open();
    const b = await open();
    const r = record({ maxConnections: 2 });
    await a.create(r, r.expiresAt + 60_000);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).acquire(r.id, `conn-${i}`, 30_000)),
    );
    const ok = results.filter((x) => x.outcome === 'ok');
    assert.equal(ok.length, 2);
    assert.equal(results.filter((x) => x.outcome === 'full').length, 10);
    assert.deepEqual(ok[0]?.outcome === 'ok' ? ok[0].session : undefined, r);
    assert.equal((await a.get(r.id))?.activeConnections, 2);
    const leasesTtl = await raw.pttl(`airlock:session:{${r.id}}:leases`);
    assert.ok(leasesTtl > 0, 'leases expire with the session');
    const winners = results.map((x, i) => (x.outcome === 'ok' ? `conn-${i}` : undefined)).filter((x) => x !== undefined);
    await a.release(r.id, winners[0]!);
    assert.equal((await b.get(r.id))?.activeConnections, 1);
    assert.equal((await b.acquire(r.id, 'late', 30_000)).outcome, 'ok');
  });

  it('leases of a gateway that stopped renewing run out', async () => {
    let now = Date.now();
    const clock = { now: () => now };
    const store = await open(clock);
    const r = record();
    await store.create(r, r.expiresAt + 60_000);
    assert.equal((await store.acquire(r.id, 'crashed', 20_000)).outcome, 'ok');
    assert.equal((await store.acquire(r.id, 'second', 20_000)).outcome, 'full');
    now += 10_000;
    assert.equal(await store.renew(r.id, 'crashed', 20_000), 'ok'); // renewed: still held
    now += 15_000; // 15 s after the renewal: the 20 s lease still holds
    assert.equal((await store.acquire(r.id, 'second', 20_000)).outcome, 'full');
    now += 10_000; // 25 s after the last renewal
    assert.equal((await store.acquire(r.id, 'second', 20_000)).outcome, 'ok');
  });

  it('revoke blocks new logins and reaches every gateway through pub/sub', async () => {
    const a = await open();
    const b = await open();
    const r = record({ maxConnections: 5 });
    await a.create(r, r.expiresAt + 60_000);
    assert.equal((await a.acquire(r.id, 'live', 30_000)).outcome, 'ok');
    const heard = new Promise<string>((resolve) => b.onRevoked(resolve));
    // The subscriber connects asynchronously: publish until it has subscribed.
    await retry(
      async () => {
        if ((await raw.pubsub('NUMSUB', 'airlock:revocations'))[1] !== 1) throw new Error('not subscribed yet');
      },
      { deadline: Date.now() + 5_000, initialDelayMs: 20 },
    );
    assert.equal(await a.revoke(r.id), true);
    assert.equal(await heard, r.id);
    assert.equal((await a.acquire(r.id, 'new', 30_000)).outcome, 'revoked');
    assert.equal(await b.renew(r.id, 'live', 30_000), 'revoked');
    const state = await b.get(r.id);
    assert.equal(state?.revoked, true);
    assert.ok(typeof state?.revokedAt === 'number');
    assert.equal(await a.revoke(newSessionId()), false);
    assert.equal(await a.renew(newSessionId(), 'x', 1000), 'unknown');
    assert.equal((await a.acquire(newSessionId(), 'x', 1000)).outcome, 'unknown');
  });

  it('a malformed record is an error, never a session', async () => {
    const store = await open();
    const id = newSessionId();
    await raw.hset(`airlock:session:{${id}}`, { record: '{"id":"nope"}', revoked: '0' });
    await assert.rejects(store.acquire(id, 'x', 1000), (e: unknown) => e instanceof AirlockError && e.code === 'STORE_UNAVAILABLE');
    await assert.rejects(store.get(id), (e: unknown) => e instanceof AirlockError && e.code === 'STORE_UNAVAILABLE');
  });

  it('Redis down: calls fail fast with STORE_UNAVAILABLE, and work again after it returns', async () => {
    const store = await open();
    const r = record();
    await store.create(r, r.expiresAt + 60_000);
    await redis.kill();
    const started = Date.now();
    await assert.rejects(store.acquire(r.id, 'x', 1000), (e: unknown) => e instanceof AirlockError && e.code === 'STORE_UNAVAILABLE');
    await assert.rejects(store.ping(), (e: unknown) => e instanceof AirlockError && e.code === 'STORE_UNAVAILABLE');
    assert.ok(Date.now() - started < 5_000, 'no offline queue: the login does not hang');
    await redis.restart();
    await retry(() => store.ping(), { deadline: Date.now() + 15_000, initialDelayMs: 100 });
    // The server came back empty (no persistence): the session is gone, and the store says so.
    assert.equal((await store.acquire(r.id, 'x', 1000)).outcome, 'unknown');
    await raw.ping().catch(() => undefined);
  });

  it('Redis down at start-up: the store still opens (gateway starts), then connects when Redis appears', async () => {
    await redis.kill();
    const started = Date.now();
    const store = await open();
    assert.ok(Date.now() - started < 3_000, 'start-up does not hang on a dead Redis');
    await assert.rejects(store.ping(), (e: unknown) => e instanceof AirlockError && e.code === 'STORE_UNAVAILABLE');
    await redis.restart();
    await retry(() => store.ping(), { deadline: Date.now() + 15_000, initialDelayMs: 100 });
    const r = record();
    await store.create(r, r.expiresAt + 60_000);
    assert.equal((await store.acquire(r.id, 'x', 1000)).outcome, 'ok');
  });
});
