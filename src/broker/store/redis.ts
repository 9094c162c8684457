import { once } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AcquireResult } from '../../auth/index.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { AirlockError, isAirlockError } from '../../core/errors.js';
import { sessionRecordSchema, type SessionRecord, type SessionState, type SessionStore } from './session-store.js';

export interface RedisStoreOptions {
  readonly url: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Key prefix (several gateway fleets may share one Redis). */
  readonly prefix?: string;
  /** Per-command and connect timeout. */
  readonly timeoutMs?: number;
}

/*
 * Layout, one session = two keys in the same cluster slot (hash tag {id}):
 *   <prefix>session:{id}         hash: record (JSON), revoked ("0"/"1"), revokedAt (ms)
 *   <prefix>session:{id}:leases  sorted set: connectionId → lease expiry (ms)
 * Both expire at the session's retainUntil (token expiry + grace + margin).
 * Every read-check-write is one Lua script, so concurrent gateways cannot overshoot a limit.
 */

const CREATE = `
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'revoked', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`;

const REVOKE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'revoked') ~= '1' then
  redis.call('HSET', KEYS[1], 'revoked', '1', 'revokedAt', ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;

// ARGV: now, lease expiry, connectionId. Returns {outcome[, record JSON]}.
const ACQUIRE = `
local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return {'unknown'} end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return {'revoked'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local max = tonumber(cjson.decode(rec)['maxConnections']) or 1
if redis.call('ZCARD', KEYS[2]) >= max then return {'full'} end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return {'ok', rec}`;

const RENEW = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return 'revoked' end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 'ok'`;

function unavailable(err: unknown): AirlockError {
  if (isAirlockError(err)) return err;
  return new AirlockError('STORE_UNAVAILABLE', `redis: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function corrupt(id: string): AirlockError {
  return new AirlockError('STORE_UNAVAILABLE', `redis: session ${id} has a malformed record`);
}

const SESSION_ID = /^[0-9a-f]{32}$/;

/**
 * Redis session store (ioredis). Commands fail fast while Redis is unreachable
 * (no offline queue, one attempt, short timeouts) with AirlockError STORE_UNAVAILABLE; the client
 * reconnects in the background. Revocations are published on `<prefix>revocations` so every
 * gateway ends the session's live connections at once.
 */
export async function createRedisSessionStore(options: RedisStoreOptions): Promise<SessionStore> {
  const clock = options.clock ?? systemClock;
  const prefix = options.prefix ?? 'airlock:';
  const timeoutMs = options.timeoutMs ?? 2_000;
  const logger = options.logger;
  const channel = `${prefix}revocations`;
  const key = (id: string) => `${prefix}session:{${id}}`;
  const leasesKey = (id: string) => `${prefix}session:{${id}}:leases`;

  let down = false;
  const client = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    lazyConnect: true,
  });
  // One warning per outage, not one per reconnect attempt.
  client.on('error', (err: Error) => {
    if (!down) logger.warn({ code: 'STORE_UNAVAILABLE', err: err.message }, 'redis session store unreachable');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info('redis session store reachable again');
    down = false;
  });
  // Wait briefly for the first connection; if Redis is down the gateway still starts (logins then
  // fail closed, or fall back to stateless tokens) and the client keeps reconnecting.
  const ready = once(client, 'ready').catch(() => undefined);
  client.connect().catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ready, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);

  let subscriber: Redis | undefined;
  const listeners = new Set<(id: string) => void>();
  const subscribe = () => {
    // The subscriber queues SUBSCRIBE until connected and re-subscribes after reconnects.
    subscriber = client.duplicate({ enableOfflineQueue: true, lazyConnect: false, maxRetriesPerRequest: null });
    subscriber.on('error', () => undefined); // reported by the main client
    subscriber.on('message', (ch: string, message: string) => {
      if (ch !== channel || !SESSION_ID.test(message)) return;
      for (const l of listeners) l(message);
    });
    subscriber.subscribe(channel).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'redis revocation subscription failed'));
  };

  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw unavailable(err);
    }
  };

  const parseRecord = (id: string, json: string): SessionRecord => {
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      throw corrupt(id);
    }
    const parsed = sessionRecordSchema.safeParse(raw);
    if (!parsed.success || parsed.data.id !== id) throw corrupt(id);
    return parsed.data as SessionRecord;
  };

  return {
    kind: 'redis',
    async create(record, retainUntil) {
      await run(() => client.eval(CREATE, 1, key(record.id), JSON.stringify(record), String(Math.ceil(retainUntil))));
    },
    async get(id) {
      if (!SESSION_ID.test(id)) return undefined;
      const results = await run(() =>
        client.pipeline().hgetall(key(id)).zcount(leasesKey(id), `(${clock.now()}`, '+inf').exec(),
      );
      const [hash, count] = results ?? [];
      if (!hash || hash[0] || !count || count[0]) throw unavailable(hash?.[0] ?? count?.[0] ?? new Error('empty pipeline reply'));
      const fields = hash[1] as Record<string, string>;
      if (fields.record === undefined) return undefined;
      const revokedAt = fields.revokedAt === undefined ? undefined : Number(fields.revokedAt);
      const state: SessionState = {
        record: parseRecord(id, fields.record),
        revoked: fields.revoked === '1',
        activeConnections: Number(count[1]),
        ...(revokedAt !== undefined && Number.isFinite(revokedAt) ? { revokedAt } : {}),
      };
      return state;
    },
    async revoke(id) {
      if (!SESSION_ID.test(id)) return false;
      const n = await run(() => client.eval(REVOKE, 1, key(id), String(clock.now()), channel, id));
      return n === 1;
    },
    onRevoked(listener) {
      listeners.add(listener);
      if (!subscriber) subscribe();
      return () => listeners.delete(listener);
    },
    async acquire(id, connectionId, leaseMs): Promise<AcquireResult> {
      const now = clock.now();
      const reply = await run(() => client.eval(ACQUIRE, 2, key(id), leasesKey(id), String(now), String(now + leaseMs), connectionId));
      const [outcome, json] = Array.isArray(reply) ? (reply as unknown[]) : [];
      if (outcome === 'ok' && typeof json === 'string') return { outcome: 'ok', session: parseRecord(id, json) };
      if (outcome === 'unknown' || outcome === 'revoked' || outcome === 'full') return { outcome };
      throw unavailable(new Error('unexpected reply to the acquire script'));
    },
    async renew(id, connectionId, leaseMs) {
      const reply = await run(() => client.eval(RENEW, 2, key(id), leasesKey(id), String(clock.now() + leaseMs), connectionId));
      if (reply === 'ok' || reply === 'unknown' || reply === 'revoked') return reply;
      throw unavailable(new Error('unexpected reply to the renew script'));
    },
    async release(id, connectionId) {
      await run(() => client.zrem(leasesKey(id), connectionId));
    },
    async ping() {
      await run(() => client.ping());
    },
    async close() {
      listeners.clear();
      for (const c of [subscriber, client]) {
        if (!c) continue;
        // QUIT drains pending replies; never wait for it on a dead connection.
        await Promise.race([c.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
        c.disconnect();
      }
    },
  };
}
