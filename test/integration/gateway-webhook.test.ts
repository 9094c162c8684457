/**
 * ContainerSSH-compatible auth webhooks end to end: the real OpenSSH client logs in with a
 * password or a key, the webhook's answer (authenticatedUsername, environment, files) shapes the
 * container, and every failure of the webhook gives the user one clear line and no container.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertGatewayIdle, assertNoGatewayLeaks, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startWebhookServer, behaviours, type WebhookServer } from '../helpers/webhook-server.js';
import { keyFixture, type KeyFixture } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import { ensureTestImage } from '../helpers/docker.js';

describe('auth webhook through the gateway', () => {
  let hook: WebhookServer;
  let gw: TestGateway;
  let fx: KeyFixture;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    hook = await startWebhookServer();
    gw = await startGateway({
      auth: {
        password: { method: 'webhook', webhook: { url: hook.url, timeout: '300ms' } },
        publicKey: { method: 'webhook', webhook: { url: hook.url, timeout: '300ms' } },
        authTimeout: '1500ms',
      },
    });
  });
  afterEach(async () => {
    await assertGatewayIdle(gw);
  });
  after(async () => {
    await gw?.stop();
    await hook?.close();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('password login: webhook identity, environment and files reach the container', async () => {
    const greeting = Buffer.from('hello from the webhook\n').toString('base64');
    hook.setBehaviour(
      behaviours.acceptPasswords(
        { alice: 's3cret-pw' },
        {
          authenticatedUsername: 'alice@corp',
          environment: { BUILD_ID: { value: '42' } },
          metadata: { team: { value: 'platform' } },
          files: { '/home/airlock/.greeting': { value: greeting } },
        },
      ),
    );
    const r = await ssh(gw, { user: 'alice', password: 's3cret-pw', command: 'echo "BUILD_ID=$BUILD_ID"; cat /home/airlock/.greeting' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'BUILD_ID=42\nhello from the webhook\n');
    const req = hook.requests.find((q) => q.path === '/password');
    assert.ok(req);
    assert.equal(req.body.username, 'alice');
    assert.equal(Buffer.from(String(req.body.passwordBase64), 'base64').toString(), 's3cret-pw');
    assert.match(String(req.body.connectionId), /^[0-9a-f]{32}$/);
    assert.match(String(req.body.remoteAddress), /^127\.0\.0\.1:\d+$/);
    assert.match(String(req.body.clientVersion), /^SSH-2\.0-OpenSSH/);
    const authLine = await gw.waitForLog((l) => l.msg === 'connection authenticated');
    assert.equal(authLine.username, 'alice@corp');
    assert.doesNotMatch(gw.output(), /s3cret-pw/, 'the password must never reach the log');
  });

  it('public key login asks /pubkey with the key in authorized_keys form', async () => {
    hook.setBehaviour(behaviours.acceptPublicKeys({ alice: [fx.alice.publicLine] }));
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo key-ok' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'key-ok\n');
    const req = hook.requests.findLast((q) => q.path === '/pubkey');
    assert.equal(req?.body.publicKey, fx.alice.publicLine.split(' ').slice(0, 2).join(' '));
  });

  it('wrong password: Permission denied, no container', async () => {
    hook.setBehaviour(behaviours.acceptPasswords({ alice: 'right' }));
    const r = await ssh(gw, { user: 'alice', password: 'wrong', command: 'true' });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
  });

  for (const [name, behaviour, code] of [
    ['down (503)', behaviours.down('503'), 'AUTH_BACKEND_ERROR'],
    ['down (connection reset)', behaviours.down('reset'), 'AUTH_BACKEND_ERROR'],
    ['slow (beyond the timeout)', behaviours.slow(2000, behaviours.acceptPasswords({ alice: 'pw' })), 'AUTH_BACKEND_ERROR'],
    ['answering garbage', behaviours.garbage(), 'AUTH_BAD_RESPONSE'],
    ['answering the wrong shape', behaviours.wrongShape(), 'AUTH_BAD_RESPONSE'],
  ] as const) {
    it(`webhook ${name}: one clear line, fails closed, no container`, async () => {
      hook.setBehaviour(behaviour);
      const r = await ssh(gw, { user: 'alice', password: 'pw', command: 'echo should-not-run' });
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('airlock:'));
      assert.equal(lines.length, 1, `exactly one airlock line, got: ${r.stderr}`);
      assert.match(lines[0] ?? '', new RegExp(`^airlock: .*\\[${code}\\]\\r?$`));
      assert.match(r.stderr, /Permission denied/);
    });
  }
});
