/**
 * Forged and misused CI-debug tokens against a running gateway, through the real OpenSSH client:
 * each gets "Permission denied" with its one-line coded reason, and the Docker engine records no
 * container created for it. The forgeries name a live session, so nothing but the forgery is
 * wrong; that session still works afterwards (and its login is seen creating a container, which
 * shows the engine check can see one).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startGateway, assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/ssh.js';
import { containersCreatedBetween, ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { provisionSession, type ProvisionedSession } from '../helpers/provision.js';

const KEY = randomBytes(24).toString('hex');
const AUDIENCE = 'airlock-attacks';
const KID = 'attack-test-key';
const TYP = 'airlock-session+jwt';

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

interface Claims {
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

describe('forged CI-debug tokens through OpenSSH: Permission denied with the reason, no container', () => {
  let gw: TestGateway;
  let api: string;
  let dir: { path: string; cleanup: () => Promise<void> };
  let privateKey: KeyObject;
  let publicKey: KeyObject;

  before(async () => {
    await ensureTestImage();
    dir = await tempDir('airlock-attacks-');
    ({ privateKey, publicKey } = generateKeyPairSync('ed25519'));
    const keyFile = join(dir.path, 'broker.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    gw = await startGateway({
      // Eight refusals from 127.0.0.1 in a row: keep the per-address block (10 by default) out of the way.
      auth: { rateLimit: { perIp: { maxFailures: 50 } } },
      broker: {
        listen: '127.0.0.1:0',
        provisionKeys: [KEY],
        tokens: { audience: AUDIENCE, keys: [{ kid: KID, privateKeyFile: keyFile }] },
      },
    });
    api = `http://127.0.0.1:${String((await gw.waitForLog((l) => l.msg === 'broker API listening')).port)}`;
  });
  after(async () => {
    await gw?.stop();
    await dir?.cleanup();
    await assertNoGatewayLeaks();
  });

  let session: ProvisionedSession;
  let now: number;
  before(async () => {
    session = await provisionSession(api, KEY, { image: 'airlock-test:busybox', actor: 'octocat', ttl_seconds: 600 });
    now = Math.floor(Date.now() / 1000);
  });

  const claims = (extra: Partial<Claims> = {}): Claims => ({
    sub: session.session_id,
    aud: AUDIENCE,
    iat: now,
    nbf: now,
    exp: session.expires_at,
    jti: randomBytes(12).toString('base64url'),
    ...extra,
  });
  const signEdDSA = (c: Claims) => new SignJWT({ ...c }).setProtectedHeader({ alg: 'EdDSA', kid: KID, typ: TYP }).sign(privateKey);
  // HS256 keyed with the verifier's *public* key: the classic confusion, if the token chose the algorithm.
  const signHs256 = (c: Claims, secret: Uint8Array) => new SignJWT({ ...c }).setProtectedHeader({ alg: 'HS256', kid: KID, typ: TYP }).sign(secret);
  const publicPem = () => Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }));
  const publicRaw = () => Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');

  const attacks: ReadonlyArray<readonly [string, () => Promise<string>, ErrorCode]> = [
    ['alg: none (empty signature)', async () => `${b64url({ alg: 'none', kid: KID, typ: TYP })}.${b64url(claims())}.`, 'TOKEN_INVALID'],
    ['HS256 keyed with the public key PEM (jose)', () => signHs256(claims(), publicPem()), 'TOKEN_INVALID'],
    [
      'HS256 keyed with the public key PEM (by hand)',
      async () => {
        const signingInput = `${b64url({ alg: 'HS256', kid: KID, typ: TYP })}.${b64url(claims())}`;
        return `${signingInput}.${createHmac('sha256', publicPem()).update(signingInput).digest('base64url')}`;
      },
      'TOKEN_INVALID',
    ],
    ['HS256 keyed with the raw 32-byte public key', () => signHs256(claims(), publicRaw()), 'TOKEN_INVALID'],
    [
      'the real token with a tampered payload (later exp), original signature',
      async () => {
        const [header, , signature] = session.token.split('.');
        return `${header}.${b64url(claims({ exp: session.expires_at + 3000 }))}.${signature}`;
      },
      'TOKEN_INVALID',
    ],
    ['nbf ten minutes ahead (real key)', () => signEdDSA(claims({ nbf: now + 600 })), 'TOKEN_NOT_YET_VALID'],
    ['aud of another gateway fleet (real key)', () => signEdDSA(claims({ aud: 'airlock-elsewhere' })), 'TOKEN_INVALID'],
    ['a session id the store does not know (real key)', () => signEdDSA(claims({ sub: randomBytes(16).toString('hex') })), 'SESSION_NOT_FOUND'],
  ];

  for (const [what, forge, code] of attacks) {
    it(`${what}: Permission denied with [${code}], no container`, async () => {
      const token = await forge();
      const logged = gw.logs.length;
      const since = Date.now();
      const r = await ssh(gw, { user: token, command: 'echo should-not-run' });
      const until = Date.now();
      assert.equal(r.code, 255, r.stderr);
      const line = `airlock: ${ERROR_CODES[code].userMessage} [${code}]`;
      assert.ok(r.stderr.split(/\r?\n/).includes(line), `expected the line "${line}" in:\n${r.stderr}`);
      assert.match(r.stderr, /Permission denied/);
      assert.ok(!r.stdout.toString().includes('should-not-run'));
      assert.deepEqual(await containersCreatedBetween(since, until, { gatewayId: gw.gatewayId }), [], 'the engine created a container');
      const refusals = gw.logs.slice(logged).filter((l) => l.msg === 'authentication rejected');
      assert.deepEqual(refusals.map((l) => l.reason), [code], 'one logged refusal, with its code');
      assert.ok(!gw.output().includes(token), 'the forged token never reaches the log');
    });
  }

  it('the session the forgeries named is untouched: its own token logs in, and the engine check sees its container', async () => {
    const since = Date.now();
    const ok = await ssh(gw, { user: session.token, command: 'echo "actor=$AIRLOCK_ACTOR"' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.toString(), 'actor=octocat\n');
    await gw.waitForIdle();
    const created = await containersCreatedBetween(since, Date.now(), { gatewayId: gw.gatewayId, labels: { 'airlock.meta.session_id': session.session_id } });
    assert.equal(created.length, 1, 'one container created for the real login');
  });
});
