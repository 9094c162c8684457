/**
 * Failed-login limits (`auth.rateLimit`) through the front door: the real OpenSSH client fails
 * to log in from one source address (`ssh -b 127.0.0.3`) or for one user name until the limit
 * blocks it; then even a correct key or password is refused at once — the webhook is not asked —
 * with one clear line and no container, while other addresses and users log in as usual. One
 * log line per block and the airlock_auth_* counters show it.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh, type SshOptions } from '../helpers/ssh.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { behaviours, startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';
import { ensureTestImage } from '../helpers/docker.js';

const BOB_PASSWORD = 'bob-Correct-Horse-9';

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('failed-login limits per source address and per user (real ssh)', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let hook: WebhookServer;
  let metricsUrl: string;

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    hook = await startWebhookServer(behaviours.acceptPasswords({ bob: BOB_PASSWORD }));
    gw = await keyGateway(fx, {
      auth: {
        password: { method: 'webhook', webhook: { url: hook.url } },
        rateLimit: {
          perIp: { maxFailures: 4, window: '10m', blockFor: '10m' },
          perUser: { maxFailures: 2, window: '10m', blockFor: '10m' },
        },
      },
      metrics: { enable: true, listen: '127.0.0.1:0' },
    });
    const line = await gw.waitForLog((l) => l.msg === 'operator listener started');
    metricsUrl = `http://127.0.0.1:${Number(line.metricsPort)}/metrics`;
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

  const from = (source: string, opts: SshOptions) => ssh(gw, { ...opts, args: ['-b', source, ...(opts.args ?? [])] });
  const wrongPassword = (source: string, user: string) => from(source, { user, password: 'wrong-guess', command: 'true' });
  const blockLines = () => gw.logs.filter((l) => l.msg === 'failed-login limit reached: blocking');

  const assertRefused = (r: Awaited<ReturnType<typeof ssh>>) => {
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /^airlock: too many failed logins from this address or for this user; try again later \[AUTH_RATE_LIMITED\]$/m);
  };

  it('per address: after 4 failures from 127.0.0.3 a correct key and password from there are refused; 127.0.0.1 is not affected', async () => {
    for (let i = 1; i <= 4; i++) {
      const r = await wrongPassword('127.0.0.3', `guess${i}`);
      assert.equal(r.code, 255);
      assert.match(r.stderr, /Permission denied/);
      assert.doesNotMatch(r.stderr, /AUTH_RATE_LIMITED/, `failure ${i} is still an ordinary refusal`);
    }
    const block = await gw.waitForLog((l) => l.msg === 'failed-login limit reached: blocking' && l.scope === 'ip');
    assert.equal(block.source, '127.0.0.3');
    assert.equal(block.code, 'AUTH_RATE_LIMITED');
    assert.ok(Date.parse(String(block.blockedUntil)) > Date.now() + 9 * 60_000);

    const asked = hook.requests.length;
    assertRefused(await from('127.0.0.3', { user: 'alice', identity: fx.alice.path, command: 'echo in' }));
    assertRefused(await from('127.0.0.3', { user: 'bob', password: BOB_PASSWORD, command: 'echo in' }));
    assert.equal(hook.requests.length, asked, 'a blocked attempt never reaches the webhook');

    const other = await from('127.0.0.1', { user: 'alice', identity: fx.alice.path, command: 'echo in' });
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout.toString(), 'in\n');
    assert.equal(blockLines().length, 1, 'one log line per block, not per refused attempt');
  });

  it('per user: after 2 failures for bob, his correct password is refused from another address; alice is not affected', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await wrongPassword('127.0.0.1', 'bob')).code, 255);
    const block = await gw.waitForLog((l) => l.msg === 'failed-login limit reached: blocking' && l.scope === 'user');
    assert.equal(block.username, 'bob');

    const asked = hook.requests.length;
    assertRefused(await from('127.0.0.2', { user: 'bob', password: BOB_PASSWORD, command: 'echo in' }));
    assert.equal(hook.requests.length, asked);

    const alice = await from('127.0.0.1', { user: 'alice', identity: fx.alice.path, command: 'echo in' });
    assert.equal(alice.code, 0, alice.stderr);
    assert.doesNotMatch(gw.output(), /wrong-guess|bob-Correct-Horse-9/, 'passwords never reach the log');
  });

  it('the blocks and refused attempts are counted by scope (no user or address labels)', async () => {
    const text = await (await fetch(metricsUrl)).text();
    assert.equal(sample(text, 'airlock_auth_blocks_total', 'scope="ip"'), 1);
    assert.equal(sample(text, 'airlock_auth_blocks_total', 'scope="user"'), 1);
    assert.equal(sample(text, 'airlock_auth_rate_limited_total', 'scope="ip"'), 2);
    assert.equal(sample(text, 'airlock_auth_rate_limited_total', 'scope="user"'), 1);
    assert.doesNotMatch(text, /127\.0\.0\.3|bob|guess/);
  });
});
