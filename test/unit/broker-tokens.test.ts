/** Session tokens (src/broker/tokens.ts): round trip, rotation, and the attacks a verifier must refuse. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, base64url } from 'jose';
import { AirlockError } from '../../src/core/errors.js';
import type { Clock } from '../../src/core/clock.js';
import {
  TOKEN_TYPE,
  createTokenIssuer,
  createTokenVerifier,
  loadTokenKeys,
  newSessionId,
  type TokenKeySet,
} from '../../src/broker/tokens.js';
import { tempDir } from '../helpers/tmp.js';

const AUDIENCE = 'airlock-test';
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

function fixedClock(ms: number): Clock & { set(ms: number): void } {
  let now = ms;
  return { now: () => now, set: (v) => (now = v) };
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AirlockError, `expected AirlockError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('session tokens', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let keys: TokenKeySet;
  let otherKeys: TokenKeySet;
  let publicPem: string;

  before(async () => {
    dir = await tempDir('airlock-tokens-');
    keys = await loadTokenKeys([], join(dir.path, 'broker.pem'));
    publicPem = await readFile(join(dir.path, 'broker.pem.pub'), 'utf8');
    otherKeys = await loadTokenKeys([], join(dir.path, 'other.pem'));
  });
  after(async () => dir.cleanup());

  const issue = async (opts: { clockMs?: number; ttlSeconds?: number; keySet?: TokenKeySet; audience?: string } = {}) => {
    const clock = fixedClock(opts.clockMs ?? T0);
    const issuer = createTokenIssuer({ keys: opts.keySet ?? keys, audience: opts.audience ?? AUDIENCE, clock });
    const sessionId = newSessionId();
    const token = await issuer.issue({ sessionId, expiresAt: clock.now() + (opts.ttlSeconds ?? 600) * 1000 });
    return { token, sessionId };
  };
  const verifier = (clockMs = T0 + 1000, keySet: TokenKeySet = keys, toleranceSeconds = 5) =>
    createTokenVerifier({ keys: keySet, audience: AUDIENCE, clockToleranceSeconds: toleranceSeconds, clock: fixedClock(clockMs) });

  it('round trip: EdDSA, kid and typ in the header, claims sub/aud/iat/nbf/exp/jti', async () => {
    const { token, sessionId } = await issue();
    const [headerB64, payloadB64] = token.split('.');
    const header = JSON.parse(Buffer.from(headerB64!, 'base64url').toString()) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(payloadB64!, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(header, { alg: 'EdDSA', kid: keys.signing!.kid, typ: TOKEN_TYPE });
    assert.deepEqual(Object.keys(payload).sort(), ['aud', 'exp', 'iat', 'jti', 'nbf', 'sub']);
    assert.equal(payload.exp, T0 / 1000 + 600);
    const verified = await verifier().verify(token);
    assert.equal(verified.sessionId, sessionId);
    assert.equal(verified.expiresAt, T0 + 600_000);
    assert.equal(verified.stateless, undefined);
  });

  it('the generated key is persisted (0600, public half next to it) and reused', async () => {
    const again = await loadTokenKeys([], join(dir.path, 'broker.pem'));
    assert.equal(again.signing!.kid, keys.signing!.kid);
    assert.equal((await stat(join(dir.path, 'broker.pem'))).mode & 0o777, 0o600);
    assert.match(publicPem, /BEGIN PUBLIC KEY/);
  });

  it('refuses alg: none', async () => {
    const { sessionId } = await issue();
    const unsigned = new UnsecuredJWT({ jti: 'abcdefghijkl' })
      .setSubject(sessionId)
      .setAudience(AUDIENCE)
      .setIssuedAt(T0 / 1000)
      .setNotBefore(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 600)
      .encode();
    await rejects(verifier().verify(unsigned), 'TOKEN_INVALID');
    // Same, with our kid and typ in the header.
    const header = base64url.encode(JSON.stringify({ alg: 'none', kid: keys.signing!.kid, typ: TOKEN_TYPE }));
    await rejects(verifier().verify(`${header}.${unsigned.split('.')[1]}.`), 'TOKEN_INVALID');
  });

  it('refuses HS256 signed with the EdDSA public key as the secret (algorithm confusion)', async () => {
    const { sessionId } = await issue();
    let tried = 0;
    for (const secret of [new TextEncoder().encode(publicPem), keys.signing!.verifyKey as unknown as Uint8Array]) {
      let forged: string;
      try {
        forged = await new SignJWT({})
          .setProtectedHeader({ alg: 'HS256', kid: keys.signing!.kid, typ: TOKEN_TYPE })
          .setSubject(sessionId)
          .setAudience(AUDIENCE)
          .setIssuedAt(T0 / 1000)
          .setNotBefore(T0 / 1000)
          .setExpirationTime(T0 / 1000 + 600)
          .setJti('abcdefghijkl')
          .sign(secret instanceof Uint8Array ? secret : new TextEncoder().encode(publicPem));
      } catch {
        continue; // jose refuses to HMAC with a KeyObject: that variant cannot even be built
      }
      await rejects(verifier().verify(forged), 'TOKEN_INVALID');
      tried++;
    }
    assert.ok(tried >= 1, 'at least the PEM-as-secret forgery was built and refused');
  });

  it('refuses EdDSA tokens when only an HS256 secret is configured, and the reverse', async () => {
    const secretFile = join(dir.path, 'hs.secret');
    await writeFile(secretFile, 'x'.repeat(40) + '\n');
    const hs = await loadTokenKeys([{ kid: 'k1', secretFile }], join(dir.path, 'unused.pem'));
    assert.equal(hs.signing!.alg, 'HS256');
    const ed = await loadTokenKeys([{ kid: 'k1', privateKeyFile: join(dir.path, 'broker.pem') }], join(dir.path, 'unused.pem'));
    const { token: hsToken } = await issue({ keySet: hs });
    const { token: edToken } = await issue({ keySet: ed });
    assert.ok(await verifier(T0 + 1000, hs).verify(hsToken));
    await rejects(verifier(T0 + 1000, hs).verify(edToken), 'TOKEN_INVALID');
    await rejects(verifier(T0 + 1000, ed).verify(hsToken), 'TOKEN_INVALID');
  });

  it('refuses a token signed by another key, even with our kid', async () => {
    const { token } = await issue({ keySet: otherKeys });
    await rejects(verifier().verify(token), 'TOKEN_INVALID'); // unknown kid
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: keys.signing!.kid, typ: TOKEN_TYPE })
      .setSubject(newSessionId())
      .setAudience(AUDIENCE)
      .setIssuedAt(T0 / 1000)
      .setNotBefore(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 600)
      .setJti('abcdefghijkl')
      .sign(otherKeys.signing!.signKey!);
    await rejects(verifier().verify(forged), 'TOKEN_INVALID');
  });

  it('refuses a tampered payload', async () => {
    const { token } = await issue();
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    payload.sub = newSessionId();
    await rejects(verifier().verify(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`), 'TOKEN_INVALID');
    payload.exp = (payload.exp as number) + 3600;
    await rejects(verifier().verify(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`), 'TOKEN_INVALID');
  });

  it('expired → TOKEN_EXPIRED, with a small clock tolerance', async () => {
    const { token } = await issue({ ttlSeconds: 60 });
    assert.ok(await verifier(T0 + 63_000).verify(token)); // 3 s late, tolerance 5 s
    await rejects(verifier(T0 + 66_000).verify(token), 'TOKEN_EXPIRED');
  });

  it('not yet valid → TOKEN_NOT_YET_VALID', async () => {
    const { token } = await issue({ clockMs: T0 + 60_000 });
    assert.ok(await verifier(T0 + 57_000).verify(token)); // gateway clock 3 s behind: tolerated
    await rejects(verifier(T0).verify(token), 'TOKEN_NOT_YET_VALID');
  });

  it('wrong audience → TOKEN_INVALID', async () => {
    const { token } = await issue({ audience: 'another-gateway' });
    await rejects(verifier().verify(token), 'TOKEN_INVALID');
  });

  it('refuses our key used for another kind of JWT (typ), missing kid, missing claims, and a bad sub', async () => {
    const key = keys.signing!;
    const base = () =>
      new SignJWT({}).setAudience(AUDIENCE).setIssuedAt(T0 / 1000).setNotBefore(T0 / 1000).setExpirationTime(T0 / 1000 + 600);
    const wrongTyp = await base().setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' }).setSubject(newSessionId()).setJti('abcdefghijkl').sign(key.signKey!);
    await rejects(verifier().verify(wrongTyp), 'TOKEN_INVALID');
    const noKid = await base().setProtectedHeader({ alg: 'EdDSA', typ: TOKEN_TYPE }).setSubject(newSessionId()).setJti('abcdefghijkl').sign(key.signKey!);
    await rejects(verifier().verify(noKid), 'TOKEN_INVALID');
    const noJti = await base().setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: TOKEN_TYPE }).setSubject(newSessionId()).sign(key.signKey!);
    await rejects(verifier().verify(noJti), 'TOKEN_INVALID');
    const badSub = await base().setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: TOKEN_TYPE }).setSubject('../../etc').setJti('abcdefghijkl').sign(key.signKey!);
    await rejects(verifier().verify(badSub), 'TOKEN_INVALID');
    await rejects(verifier().verify('not.a.token'), 'TOKEN_INVALID');
  });

  it('never honours a token for longer than the hard one-hour cap, whatever its exp says', async () => {
    const key = keys.signing!;
    const long = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: TOKEN_TYPE })
      .setSubject(newSessionId())
      .setAudience(AUDIENCE)
      .setIssuedAt(T0 / 1000)
      .setNotBefore(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 86_400)
      .setJti('abcdefghijkl')
      .sign(key.signKey!);
    assert.ok(await verifier(T0 + 3_000_000).verify(long));
    await rejects(verifier(T0 + 3_700_000).verify(long), 'TOKEN_EXPIRED');
  });

  it('rotation: the first signing key signs; an old public key still verifies', async () => {
    const oldPub = join(dir.path, 'broker.pem.pub');
    const newPriv = join(dir.path, 'new.pem');
    const { privateKey } = generateKeyPairSync('ed25519');
    await writeFile(newPriv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const rotated = await loadTokenKeys([{ kid: 'new', privateKeyFile: newPriv }, { kid: keys.signing!.kid, publicKeyFile: oldPub }], join(dir.path, 'x.pem'));
    assert.equal(rotated.signing!.kid, 'new');
    const { token: oldToken } = await issue(); // signed with the old private key
    assert.ok(await verifier(T0 + 1000, rotated).verify(oldToken));
    const { token: newToken } = await issue({ keySet: rotated });
    assert.match(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString()).kid as string, /^new$/);
    await rejects(verifier(T0 + 1000, keys).verify(newToken), 'TOKEN_INVALID');
  });

  it('key loading errors are TOKEN_KEY_INVALID with a fix', async () => {
    const short = join(dir.path, 'short.secret');
    await writeFile(short, 'too-short');
    await rejects(loadTokenKeys([{ secretFile: short }], 'x'), 'TOKEN_KEY_INVALID');
    await rejects(loadTokenKeys([{ privateKeyFile: join(dir.path, 'missing.pem') }], 'x'), 'TOKEN_KEY_INVALID');
    const rsa = join(dir.path, 'rsa.pem');
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await rejects(loadTokenKeys([{ privateKeyFile: rsa }], 'x'), 'TOKEN_KEY_INVALID');
    const pubOnly = await loadTokenKeys([{ publicKeyFile: join(dir.path, 'broker.pem.pub') }], 'x');
    assert.throws(() => createTokenIssuer({ keys: pubOnly, audience: AUDIENCE }), /no token key can sign/);
    await rejects(
      loadTokenKeys([{ kid: 'a', privateKeyFile: join(dir.path, 'broker.pem') }, { kid: 'a', publicKeyFile: join(dir.path, 'broker.pem.pub') }], 'x'),
      'TOKEN_KEY_INVALID',
    );
  });

  it('stateless facts travel in the ctx claim only when asked for', async () => {
    const clock = fixedClock(T0);
    const issuer = createTokenIssuer({ keys, audience: AUDIENCE, clock });
    const sessionId = newSessionId();
    const token = await issuer.issue({
      sessionId,
      expiresAt: T0 + 60_000,
      stateless: { image: 'alpine:3', commitSha: 'abc1234', prNumber: 7, actor: 'octocat' },
    });
    const v = await verifier().verify(token);
    assert.deepEqual(v.stateless, { image: 'alpine:3', commitSha: 'abc1234', prNumber: 7, actor: 'octocat' });
  });
});
