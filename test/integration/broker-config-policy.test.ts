/**
 * The `broker.policy` keys of the config file, through the front door: `secretNamePatterns` and
 * `keepEnvNames` decide what the provisioning API strips and what the container's environment
 * holds; `deadlineGraceSeconds` lets a live connection outlive its token, but admits no new login.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { startGateway, assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ssh, spawnSsh } from '../helpers/ssh.js';
import { assertContainersGone, containersCreatedBetween, ensureTestImage, managedContainers } from '../helpers/docker.js';
import { retry } from '../../src/core/retry.js';
import { provisionSession } from '../helpers/provision.js';

const KEY = randomBytes(24).toString('hex');
const JWT_VALUE = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QifQ.c2lnbmF0dXJlLXZhbHVlLWhlcmU';
const GRACE_SECONDS = 8;


describe('broker.policy from the config file: secret patterns, kept names, deadline grace', () => {
  let gw: TestGateway;
  let api: string;

  before(async () => {
    await ensureTestImage();
    gw = await startGateway({
      broker: {
        listen: '127.0.0.1:0',
        provisionKeys: [KEY],
        policy: {
          // Replaces the default list (SECRET, TOKEN, KEY, ...).
          secretNamePatterns: ['INTERNAL_', 'KEY'],
          keepEnvNames: ['KEYBOARD_LAYOUT', 'KEY_NOTE'],
          deadlineGraceSeconds: GRACE_SECONDS,
        },
      },
    });
    api = `http://127.0.0.1:${String((await gw.waitForLog((l) => l.msg === 'broker API listening')).port)}`;
  });
  after(async () => {
    await gw?.stop();
    await assertNoGatewayLeaks();
  });

  const provision = (body: Record<string, unknown>) => provisionSession(api, KEY, { image: 'airlock-test:busybox', ...body });
  const containersOf = (sessionId: string) => managedContainers({ gatewayId: gw.gatewayId, labels: { 'airlock.meta.session_id': sessionId } });

  it('secretNamePatterns and keepEnvNames: config → API answer → the container environment', async () => {
    const s = await provision({
      env: {
        INTERNAL_THING: 'internal-value-1',
        internal_lower: 'internal-value-2', // patterns are case-insensitive
        SSH_KEY_PATH: '/keys/deploy', // the second custom pattern
        KEYBOARD_LAYOUT: 'us', // contains KEY, but kept by name
        KEY_NOTE: `Bearer ${JWT_VALUE}`, // kept by name, stripped by its value all the same
        MAX_TOKENS: '4096', // TOKEN is a default pattern only: the configured list replaced it
        GOPATH: '/home/runner/go',
      },
    });
    const stripped = ['INTERNAL_THING', 'KEY_NOTE', 'SSH_KEY_PATH', 'internal_lower'];
    assert.deepEqual(s.redacted_vars, stripped);

    const r = await ssh(gw, { user: s.token, command: 'env' });
    assert.equal(r.code, 0, r.stderr);
    const env = new Map(r.stdout.toString().split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(env.get('GOPATH'), '/home/runner/go');
    assert.equal(env.get('KEYBOARD_LAYOUT'), 'us');
    assert.equal(env.get('MAX_TOKENS'), '4096');
    for (const name of stripped) assert.equal(env.get(name), undefined, `${name} reached the container`);
    const out = r.stdout.toString();
    for (const value of ['internal-value-1', 'internal-value-2', '/keys/deploy', JWT_VALUE]) assert.ok(!out.includes(value), `${value} reached the container`);
    assert.equal(env.get('AIRLOCK_REDACTED_VARS'), stripped.join(','));
    assert.equal(env.get('AIRLOCK_SESSION_ID'), s.session_id);
    await gw.waitForIdle();
  });

  it('deadlineGraceSeconds: a live connection runs on past expiry, then is closed and its container removed; no new login during the grace', async () => {
    const s = await provision({ ttl_seconds: 6 });
    const live = await spawnSsh(gw, { user: s.token, command: 'echo in; sleep 120' });
    let text = '';
    let closedAt: number | undefined;
    live.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    live.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    live.stdin!.end();
    const closed = once(live, 'close').then(([code]) => {
      closedAt = Date.now();
      return code as number | null;
    });
    await retry(
      async () => {
        if (!/^in$/m.test(text)) throw new Error('not yet');
      },
      { deadline: Date.now() + 30_000, initialDelayMs: 50, maxDelayMs: 200 },
    );
    assert.equal((await containersOf(s.session_id)).length, 1, 'the session container runs while connected');

    // Wait for the token's expiry itself (a known instant), then log in during the grace.
    await delay(Math.max(0, s.expires_at * 1000 + 200 - Date.now()));
    const since = Date.now();
    const refused = await ssh(gw, { user: s.token, command: 'true' });
    const until = Date.now();
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /airlock: the debug-session token has expired; provision a new session \[TOKEN_EXPIRED\]/);
    assert.match(refused.stderr, /Permission denied/);
    assert.deepEqual(await containersCreatedBetween(since, until, { gatewayId: gw.gatewayId }), [], 'no container for a login during the grace');
    assert.equal(closedAt, undefined, 'the live connection outlives its token during the grace');

    const code = await closed;
    assert.notEqual(code, 0);
    assert.ok(closedAt !== undefined && closedAt >= (s.expires_at + GRACE_SECONDS - 1) * 1000, 'closed at expiry + grace, not before');
    assert.match(text, /access has expired/);
    await assertContainersGone({ gatewayId: gw.gatewayId, labels: { 'airlock.meta.session_id': s.session_id } });
    await gw.waitForIdle();
  });
});
