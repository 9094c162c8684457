/**
 * The ContainerSSH authorization step (`auth.authz`, `POST <url>/authz`): first the client
 * against a real HTTP webhook (request shape, merge, fail closed), then through the real OpenSSH
 * client: a denial is "Permission denied" plus one line and no container, an answer's
 * environment/metadata/files reach the container, and an authz webhook that is down denies.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createAuthzWebhook, type AuthzRequest } from '../../src/auth/authz.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { behaviours, startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { spawnSsh, ssh } from '../helpers/ssh.js';
import { ensureTestImage, inspectContainer } from '../helpers/docker.js';

const never = new AbortController().signal;

function captureLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  return { logger, text: () => lines.join('') };
}

const authzRequest = (overrides: Partial<AuthzRequest> = {}): AuthzRequest => ({
  connectionId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
  username: 'bob',
  authenticatedUsername: 'bob@corp',
  remoteAddress: '192.0.2.7:51234',
  clientVersion: 'SSH-2.0-OpenSSH_9.6',
  metadata: { team: { value: 'red', sensitive: false }, apiKey: { value: 'k-123', sensitive: true } },
  environment: { SHARED: { value: 'from-auth', sensitive: false } },
  files: {},
  ...overrides,
});

describe('authz webhook client', () => {
  let hook: WebhookServer;
  before(async () => {
    hook = await startWebhookServer();
  });
  after(async () => hook?.close());
  const authz = (log = captureLogger()) =>
    createAuthzWebhook({ url: hook.url, timeoutMs: 300, authTimeoutMs: 900, retryInitialDelayMs: 50, logger: log.logger });

  it('POST /authz: connection facts, authenticatedUsername, non-sensitive maps; the answer merges key by key', async () => {
    hook.setBehaviour(
      behaviours.authz({
        'bob@corp': { authenticatedUsername: 'bob', metadata: { team: { value: 'blue' } }, environment: { AUTHZ: { value: '1' }, SHARED: { value: 'from-authz' } } },
      }),
    );
    const d = await authz().authorize(authzRequest(), never);
    assert.equal(d.outcome, 'accept');
    assert.equal(d.authenticatedUsername, 'bob');
    assert.deepEqual(d.metadata, { team: { value: 'blue', sensitive: false }, apiKey: { value: 'k-123', sensitive: true } });
    assert.deepEqual(d.environment, { SHARED: { value: 'from-authz', sensitive: false }, AUTHZ: { value: '1', sensitive: false } });
    const sent = hook.requests.at(-1);
    assert.equal(sent?.path, '/authz');
    assert.deepEqual(sent?.body, {
      username: 'bob',
      remoteAddress: '192.0.2.7:51234',
      connectionId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
      clientVersion: 'SSH-2.0-OpenSSH_9.6',
      metadata: { team: { value: 'red', sensitive: false } },
      environment: { SHARED: { value: 'from-auth', sensitive: false } },
      files: {},
      authenticatedUsername: 'bob@corp',
    });
    // Without an authenticatedUsername in the answer the authenticated one stays.
    hook.setBehaviour(behaviours.authz({ 'bob@corp': {} }));
    assert.equal((await authz().authorize(authzRequest(), never)).authenticatedUsername, 'bob@corp');
  });

  it('success:false denies (AUTHZ_DENIED); down and garbage fail closed', async () => {
    hook.setBehaviour(behaviours.authz({}));
    assert.deepEqual(await authz().authorize(authzRequest(), never), { outcome: 'reject', reason: 'AUTHZ_DENIED' });
    hook.setBehaviour(behaviours.down('reset'));
    assert.deepEqual(await authz().authorize(authzRequest(), never), { outcome: 'error', reason: 'AUTH_BACKEND_ERROR' });
    hook.setBehaviour(behaviours.garbage());
    const log = captureLogger();
    assert.deepEqual(await authz(log).authorize(authzRequest(), never), { outcome: 'error', reason: 'AUTH_BAD_RESPONSE' });
    assert.match(log.text(), /authz webhook answer is not JSON/);
    assert.ok(!log.text().includes('k-123'), 'sensitive values are never logged');
  });

  it('an authz URL with credentials or another scheme is a configuration error', () => {
    assert.throws(() => createAuthzWebhook({ url: 'http://u:p@authz:1', timeoutMs: 1, authTimeoutMs: 1, logger: captureLogger().logger }), /CONFIG_INVALID|must not contain/);
    assert.throws(() => createAuthzWebhook({ url: 'ftp://authz', timeoutMs: 1, authTimeoutMs: 1, logger: captureLogger().logger }), /must be http or https/);
  });
});

describe('authz through the gateway (real ssh)', () => {
  let hook: WebhookServer;
  let gw: TestGateway;
  let fx: KeyFixture;
  const greeting = Buffer.from('granted by authz\n').toString('base64');
  const allowAll = () =>
    behaviours.byPath({
      '/password': behaviours.acceptPasswords({ bob: 'bob-pw-Quartz' }, { environment: { FROM_AUTH: { value: 'auth' }, SHARED: { value: 'auth' } } }),
      '/authz': behaviours.authz({
        bob: {
          metadata: { team: { value: 'platform' } },
          environment: { FROM_AUTHZ: { value: 'authz' }, SHARED: { value: 'authz' } },
          files: { '/home/airlock/.authz': { value: greeting } },
        },
      }),
    });

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    hook = await startWebhookServer();
    gw = await keyGateway(fx, {
      auth: {
        password: { method: 'webhook', webhook: { url: hook.url, timeout: '300ms' } },
        authz: { method: 'webhook', webhook: { url: hook.url, timeout: '300ms' } },
        authTimeout: '1500ms',
      },
    });
  });
  afterEach(async () => {
    await gw.waitForIdle();
    assert.deepEqual(await gw.containers(), [], 'no container may outlive its connection');
  });
  after(async () => {
    await gw?.stop();
    await hook?.close();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('authz denies a valid key: "Permission denied" plus the reason line, no container', async () => {
    hook.setBehaviour(allowAll()); // lists bob only
    const before = hook.requests.length;
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo should-not-run' });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /^airlock: this login is not allowed .*\[AUTHZ_DENIED\]$/m);
    assert.match(r.stderr, /Permission denied/);
    const asked = hook.requests.slice(before).filter((q) => q.path === '/authz');
    assert.equal(asked.length, 1, 'asked once, after the signature was verified (not at the key probe)');
    assert.equal(asked[0]?.body.authenticatedUsername, 'alice');
    assert.equal(asked[0]?.body.username, 'alice');
    const denied = await gw.waitForLog((l) => l.msg === 'authorization denied' && l.username === 'alice');
    assert.equal(denied.reason, 'AUTHZ_DENIED');
  });

  it('authz adds environment, metadata and files: visible in the container, merged key by key over the auth answer', async () => {
    hook.setBehaviour(allowAll());
    const r = await ssh(gw, { user: 'bob', password: 'bob-pw-Quartz', command: 'env | sort | grep -E "^(FROM_AUTH|FROM_AUTHZ|SHARED)="; cat /home/airlock/.authz' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'FROM_AUTH=auth\nFROM_AUTHZ=authz\nSHARED=authz\ngranted by authz\n');
    const sent = hook.requests.findLast((q) => q.path === '/authz');
    assert.deepEqual((sent?.body.environment as Record<string, unknown>).FROM_AUTH, { value: 'auth', sensitive: false }, 'authz sees what auth collected');
    assert.doesNotMatch(gw.output(), /bob-pw-Quartz/);

    // Metadata becomes the container's airlock.meta.* labels.
    const live = await spawnSsh(gw, { user: 'bob', password: 'bob-pw-Quartz', command: 'echo ready; read line' });
    live.stderr!.resume();
    await new Promise<void>((resolve, reject) => {
      let out = '';
      live.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      live.once('close', () => reject(new Error(`ssh ended before "ready": ${out}`)));
    });
    const [id] = await gw.containers();
    assert.ok(id);
    const labels = ((await inspectContainer(id)).Config as { Labels: Record<string, string> }).Labels;
    assert.equal(labels['airlock.meta.team'], 'platform');
    assert.equal(labels['airlock.user'], 'bob');
    live.stdin!.end('done\n');
    await new Promise((resolve) => live.once('close', resolve));
  });

  for (const [name, behaviour, code] of [
    ['down', behaviours.down('503'), 'AUTH_BACKEND_ERROR'],
    ['answering garbage', behaviours.garbage(), 'AUTH_BAD_RESPONSE'],
  ] as const) {
    it(`authz webhook ${name}: the login is denied with one clear line, no container`, async () => {
      hook.setBehaviour(behaviours.byPath({ '/password': behaviours.acceptPasswords({ bob: 'bob-pw-Quartz' }), '/authz': behaviour }));
      const r = await ssh(gw, { user: 'bob', password: 'bob-pw-Quartz', command: 'echo should-not-run' });
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, new RegExp(`airlock: .*\\[${code}\\]`));
      assert.match(r.stderr, /Permission denied/);
      const line = await gw.waitForLog((l) => l.msg === 'authorization backend error' && l.reason === code);
      assert.equal(line.outcome, 'error');
    });
  }
});
