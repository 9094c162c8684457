/**
 * The production layout of the CI-debug use case, every part a real process: `airlock broker`
 * (provisioning API, signs tokens) and `airlock serve` (gateway with only the broker's public key
 * and `serveApi: false`) sharing one real redis-server. Provision at the broker, log in at the
 * gateway with the real OpenSSH client, single use and revoke across processes, Redis outages
 * with and without `allowStatelessTokens`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { assertNoGatewayLeaks, startGateway, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage, TEST_IMAGE } from '../helpers/docker.js';
import { spawnSsh, ssh } from '../helpers/ssh.js';
import { tempDir } from '../helpers/tmp.js';
import { provisionSession } from '../helpers/provision.js';

const KEY = randomBytes(20).toString('hex');
const AUDIENCE = 'airlock-split';


describe('airlock broker + airlock serve + Redis (split deployment)', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let redis: TestRedis;
  let broker: TestBroker;
  let gw: TestGateway;
  let stateless: TestGateway;

  before(async () => {
    await ensureTestImage();
    dir = await tempDir('airlock-split-');
    redis = await startRedis();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const privateKeyFile = join(dir.path, 'broker-ed25519.pem');
    const publicKeyFile = join(dir.path, 'broker-ed25519.pub.pem');
    await writeFile(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    broker = await startBroker(dir.path, {
      broker: {
        listen: '127.0.0.1:0',
        redisUrl: redis.url,
        provisionKeys: [KEY],
        publicHost: '127.0.0.1',
        // The broker puts the secret-free facts into the token (`ctx`); each gateway decides whether to use them.
        allowStatelessTokens: true,
        tokens: { audience: AUDIENCE, keys: [{ kid: 'k1', privateKeyFile }] },
      },
    });
    const gatewayBroker = { serveApi: false, redisUrl: redis.url, tokens: { audience: AUDIENCE, keys: [{ kid: 'k1', publicKeyFile }] } };
    gw = await startGateway({ broker: gatewayBroker });
    stateless = await startGateway({ broker: { ...gatewayBroker, allowStatelessTokens: true } });
  });
  after(async () => {
    await gw?.stop();
    await stateless?.stop();
    if (broker) assert.equal(await broker.stop(), 0);
    await redis?.stop();
    await dir?.cleanup();
    await assertNoGatewayLeaks();
  });

  const provision = (body: Record<string, unknown> = {}) =>
    provisionSession(broker.api, KEY, { image: TEST_IMAGE, commit_sha: 'c0ffee1', actor: 'octocat', ttl_seconds: 300, ...body });

  it('a token minted by the broker logs in at a gateway that holds only the public key', async () => {
    const s = await provision({ env: { GOPATH: '/go' } });
    const r = await ssh(gw, { user: s.token, command: 'echo "$AIRLOCK_SESSION_ID $AIRLOCK_ACTOR $AIRLOCK_COMMIT_SHA $GOPATH"' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), `${s.session_id} octocat c0ffee1 /go`);
    await gw.waitForIdle();
  });

  it('single use holds across processes; revoke at the broker ends the live connection at the gateway', async () => {
    const s = await provision();
    const live = await spawnSsh(gw, { user: s.token, command: 'echo in; sleep 120' });
    let out = '';
    const running = new Promise<void>((resolve) =>
      live.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('in\n')) resolve();
      }),
    );
    live.stdin!.end();
    await running;
    // The slot is taken in Redis: the second gateway refuses a concurrent login.
    const second = await ssh(stateless, { user: s.token, command: 'true' });
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /Permission denied/);

    const closed = once(live, 'close');
    const revokedAt = Date.now();
    const res = await fetch(`${broker.api}/v1/sessions/${s.session_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
    await closed;
    assert.ok(Date.now() - revokedAt < 10_000, 'ended within seconds of the revoke');
    const again = await ssh(gw, { user: s.token, command: 'true' });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /Permission denied/);
    await gw.waitForIdle();
    await stateless.waitForIdle();
  });

  it('Redis down: logins fail closed with one clear line; with allowStatelessTokens they run from the claims', async () => {
    const s = await provision({ pr_number: 7 });
    await redis.kill();
    try {
      const denied = await ssh(gw, { user: s.token, command: 'true' });
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /debug-session service is unavailable.*\[STORE_UNAVAILABLE\]/);
      assert.deepEqual(await gw.containers(), [], 'no container for a refused login');

      const r = await ssh(stateless, { user: s.token, command: 'echo "$AIRLOCK_SESSION_ID $AIRLOCK_PR_NUMBER"' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString().trim(), `${s.session_id} 7`);
      await stateless.waitForLog((l) => l.msg === 'session store unavailable: accepting a stateless token');
    } finally {
      await redis.restart();
    }
    await gw.waitForIdle();
    await stateless.waitForIdle();
  });
});
