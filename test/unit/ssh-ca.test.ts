/**
 * The certificate verifier on certificates made by the real `ssh-keygen -s`: every refusal
 * reason, tampering anywhere in the blob, the revocation list format, and the userauth signature.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { parseAuthorizedKeyLine } from '../../src/auth/public-key.js';
import { certificateDeadline, checkCertificate, createSshCaProvider, loadTrustedCaKeys, verifyCertificateUserauthSignature } from '../../src/auth/ssh-ca.js';
import { EMPTY_REVOCATION_LIST, loadRevocationList, parseRevocationList, type RevocationList } from '../../src/auth/revocation-list.js';
import { AirlockError } from '../../src/core/errors.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestKey;
let rsaCa: TestKey;
let trusted: Set<string>;
let n = 0;

async function cert(options: readonly string[], signer: TestKey = ca, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519'): Promise<{ blob: Buffer; key: TestKey }> {
  const key = await makeKey(dir, `u${++n}`, type);
  await run('ssh-keygen', ['-q', '-s', signer.path, '-I', `id-${n}`, ...options, `${key.path}.pub`]);
  const line = (await readFile(`${key.path}-cert.pub`, 'utf8')).trim();
  const parsed = parseAuthorizedKeyLine(line);
  assert.ok(parsed, line);
  return { blob: parsed.blob, key };
}

const NOW = Date.parse('2030-06-01T00:00:00Z');
function check(blob: Buffer, overrides: { username?: string; remoteAddress?: string; revoked?: RevocationList; now?: number } = {}) {
  return checkCertificate({
    blob,
    username: overrides.username ?? 'alice',
    remoteAddress: overrides.remoteAddress ?? '192.0.2.10:50000',
    trustedCaKeys: trusted,
    revoked: overrides.revoked ?? EMPTY_REVOCATION_LIST,
    now: overrides.now ?? NOW,
  });
}
const codeOf = (r: ReturnType<typeof check>) => (r.ok ? 'OK' : r.code);

before(async () => {
  ({ path: dir, cleanup } = await tempDir('airlock-ca-unit-'));
  ca = await makeKey(dir, 'ca');
  rsaCa = await makeKey(dir, 'ca-rsa', 'rsa');
  trusted = loadTrustedCaKeys([ca.publicLine, `${rsaCa.path}.pub`]);
});
after(() => cleanup());

describe('checkCertificate', () => {
  test('accepts a valid certificate and reports its grant', async () => {
    const { blob } = await cert(['-n', 'alice,bob', '-V', '20300101:20310101', '-z', '42', '-O', 'force-command=uptime', '-O', 'no-port-forwarding']);
    const r = check(blob);
    assert.ok(r.ok);
    assert.equal(r.grant.serial, 42n);
    assert.equal(r.grant.forceCommand, 'uptime');
    assert.equal(r.grant.permitPty, true);
    assert.equal(r.grant.permitPortForwarding, false);
    assert.equal(r.grant.keyId, `id-${n}`);
  });

  test('RSA CA, RSA and ECDSA certified keys', async () => {
    assert.equal(codeOf(check((await cert(['-n', 'alice'], rsaCa)).blob)), 'OK');
    assert.equal(codeOf(check((await cert(['-n', 'alice'], ca, 'rsa')).blob)), 'OK');
    assert.equal(codeOf(check((await cert(['-n', 'alice'], rsaCa, 'ecdsa')).blob)), 'OK');
  });

  test('validity window: the bounds are [after, before)', async () => {
    const { blob } = await cert(['-n', 'alice', '-V', '20300101000000Z:20300102000000Z']);
    const start = Date.parse('2030-01-01T00:00:00Z');
    const end = Date.parse('2030-01-02T00:00:00Z');
    assert.equal(codeOf(check(blob, { now: start - 1000 })), 'CERT_NOT_YET_VALID');
    assert.equal(codeOf(check(blob, { now: start })), 'OK');
    assert.equal(codeOf(check(blob, { now: end - 1000 })), 'OK');
    assert.equal(codeOf(check(blob, { now: end })), 'CERT_EXPIRED');
  });

  test('principals must be present and contain the login name', async () => {
    assert.equal(codeOf(check((await cert(['-n', 'bob'])).blob)), 'CERT_PRINCIPAL_MISMATCH');
    assert.equal(codeOf(check((await cert([])).blob)), 'CERT_PRINCIPAL_MISMATCH'); // no -n: empty list
    assert.equal(codeOf(check((await cert(['-n', 'bob,alice'])).blob)), 'OK');
  });

  test('untrusted CA, host certificate, unknown critical option', async () => {
    const other = await makeKey(dir, 'other-ca');
    assert.equal(codeOf(check((await cert(['-n', 'alice'], other)).blob)), 'CERT_UNTRUSTED_CA');
    assert.equal(codeOf(check((await cert(['-h', '-n', 'alice'])).blob)), 'CERT_NOT_USER');
    assert.equal(codeOf(check((await cert(['-n', 'alice', '-O', 'critical:no-such-option=x'])).blob)), 'CERT_OPTION_UNSUPPORTED');
    // Unknown extensions are not critical and are ignored.
    assert.equal(codeOf(check((await cert(['-n', 'alice', '-O', 'extension:something@example.com'])).blob)), 'OK');
  });

  test('source-address: addresses and CIDR blocks, IPv4-mapped clients', async () => {
    const { blob } = await cert(['-n', 'alice', '-O', 'source-address=192.0.2.0/24,2001:db8::1']);
    assert.equal(codeOf(check(blob, { remoteAddress: '192.0.2.77:1' })), 'OK');
    assert.equal(codeOf(check(blob, { remoteAddress: '::ffff:192.0.2.77:1' })), 'OK');
    assert.equal(codeOf(check(blob, { remoteAddress: '2001:db8::1:22' })), 'OK');
    assert.equal(codeOf(check(blob, { remoteAddress: '198.51.100.1:1' })), 'CERT_SOURCE_ADDRESS');
  });

  test('flipping any single byte of the certificate makes it unusable', async () => {
    const { blob } = await cert(['-n', 'alice', '-O', 'force-command=true']);
    assert.equal(codeOf(check(blob)), 'OK');
    for (let i = 0; i < blob.length; i++) {
      const tampered = Buffer.from(blob);
      tampered[i] = (tampered[i] ?? 0) ^ 0x01;
      const r = check(tampered);
      assert.equal(r.ok, false, `byte ${i} flipped was accepted`);
    }
  });

  test('revocation by serial, serial range, key id, certified key, fingerprint and CA key', async () => {
    const { blob, key } = await cert(['-n', 'alice', '-z', '100']);
    const list = (text: string) => parseRevocationList(text);
    assert.equal(codeOf(check(blob, { revoked: list('serial: 99\n') })), 'OK');
    assert.equal(codeOf(check(blob, { revoked: list('serial: 100\n') })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list('serial: 90-110\n') })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`id: id-${n}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`key: ${key.publicLine}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`# bare key line\n${key.publicLine}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`sha256: ${key.fingerprint}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`${ca.publicLine}\n`) })), 'CERT_REVOKED');
    // The ssh-keygen -k spec forms: sha1:/sha256: take a public key, hash: a fingerprint.
    assert.equal(codeOf(check(blob, { revoked: list(`sha1: ${key.publicLine}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`sha256: ${key.publicLine}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`hash: ${key.fingerprint}\n`) })), 'CERT_REVOKED');
    assert.equal(codeOf(check(blob, { revoked: list(`sha1: ${rsaCa.publicLine}\nhash: ${rsaCa.fingerprint}\n`) })), 'OK');
  });

  test('revocation list: malformed lines are errors, not silently ignored', () => {
    assert.throws(() => parseRevocationList('serial: abc\n'), /line 1/);
    assert.throws(() => parseRevocationList('nonsense\n'), /line 1/);
    assert.throws(() => parseRevocationList('# fine\nsha1: SHA1:abc\n'), /line 2/);
    assert.throws(() => parseRevocationList('hash: MD5:ab:cd\n'), /line 1: only SHA256/);
    // As ssh-keygen -k: serial 0 means "no serial" and cannot be revoked by number.
    assert.throws(() => parseRevocationList('serial: 0-5\n'), /line 1: serial 0 cannot be revoked/);
  });

  test('loadRevocationList (start-up): an unreadable or malformed file is a config error naming it', async () => {
    const isConfigError = (file: string, pattern: RegExp) => (e: unknown) =>
      e instanceof AirlockError && e.code === 'CONFIG_INVALID' && e.message.includes(file) && pattern.test(e.message);
    assert.throws(() => loadRevocationList(`${dir}/no-such-krl`), isConfigError(`${dir}/no-such-krl`, /cannot read/));
    const damaged = `${dir}/damaged-krl`;
    await run('ssh-keygen', ['-q', '-k', '-f', damaged, `${ca.path}.pub`]);
    await writeFile(damaged, (await readFile(damaged)).subarray(0, 20));
    assert.throws(() => loadRevocationList(damaged), isConfigError(damaged, /truncated/));
    const plain = `${dir}/plain-revoked`;
    await writeFile(plain, `id: gone\n${ca.publicLine}\n`);
    assert.equal(loadRevocationList(plain).keys.size, 1);
  });
});

describe('loadTrustedCaKeys', () => {
  test('inline keys and files; unreadable or empty entries are config errors', async () => {
    assert.equal(loadTrustedCaKeys([ca.publicLine]).size, 1);
    assert.equal(loadTrustedCaKeys([`${rsaCa.path}.pub`, ca.publicLine]).size, 2);
    assert.throws(() => loadTrustedCaKeys([`${dir}/missing.pub`]), (e: unknown) => e instanceof AirlockError && e.code === 'CONFIG_INVALID');
    assert.throws(() => loadTrustedCaKeys([ca.path]), (e: unknown) => e instanceof AirlockError && e.code === 'CONFIG_INVALID'); // a private key file
  });
});

describe('verifyCertificateUserauthSignature', () => {
  test('accepts a signature by the certified key and refuses other keys and data', async () => {
    for (const type of ['ed25519', 'rsa', 'ecdsa'] as const) {
      const { blob, key } = await cert(['-n', 'alice'], ca, type);
      const data = Buffer.from(`userauth request ${type}`);
      // ssh-keygen -Y sign produces an SSHSIG whose inner signature is the plain SSH signature blob.
      const signature = await sshsigInner(key.path, data);
      // SSHSIG signs a wrapper, not `data` itself: verify against that wrapper.
      const signed = sshsigSignedData(data);
      assert.equal(verifyCertificateUserauthSignature(blob, signature, signed), true, type);
      assert.equal(verifyCertificateUserauthSignature(blob, signature, Buffer.concat([signed, Buffer.from('x')])), false, type);
      const other = await cert(['-n', 'alice'], ca, type);
      assert.equal(verifyCertificateUserauthSignature(other.blob, signature, signed), false, type);
    }
  });
});

describe('createSshCaProvider', () => {
  test('accepts a certificate with the session restrictions, says why it refuses, ignores plain keys', async () => {
    const provider = createSshCaProvider({ trustedCaKeys: trusted, clock: { now: () => NOW }, logger: pino({ level: 'silent' }) });
    const request = { connectionId: 'c', username: 'alice', remoteAddress: '127.0.0.1:1', clientVersion: 'x', metadata: {}, environment: {}, files: {} };
    const never = new AbortController().signal;
    const good = await cert(['-n', 'alice', '-O', 'no-pty', '-O', 'force-command=id']);
    const credential = (blob: Buffer) => ({ method: 'publickey' as const, algorithm: 'x', blob, authorizedKey: '', fingerprint: '' });
    const ok = await provider.authenticate(credential(good.blob), request, never);
    assert.equal(ok.outcome, 'accept');
    assert.deepEqual(ok.session, { forceCommand: 'id', permitPty: false, permitPortForwarding: true });
    const bad = await provider.authenticate(credential((await cert(['-n', 'bob'])).blob), request, never);
    assert.equal(bad.outcome, 'reject');
    assert.match(bad.userMessage ?? '', /\[CERT_PRINCIPAL_MISMATCH\]$/);
    const plain = parseAuthorizedKeyLine(good.key.publicLine);
    assert.ok(plain);
    assert.equal((await provider.authenticate(credential(plain.blob), request, never)).reason, 'NOT_A_CERTIFICATE');
    const unreadable = createSshCaProvider({ trustedCaKeys: trusted, revokedKeysFile: `${dir}/nope`, clock: { now: () => NOW }, logger: pino({ level: 'silent' }) });
    assert.equal((await unreadable.authenticate(credential(good.blob), request, never)).outcome, 'error');
  });

  test('closeAtExpiry: the certificate\'s valid before becomes the deadline (off by default, as in sshd; never for a forever certificate)', async () => {
    const request = { connectionId: 'c', username: 'alice', remoteAddress: '127.0.0.1:1', clientVersion: 'x', metadata: {}, environment: {}, files: {} };
    const never = new AbortController().signal;
    const credential = (blob: Buffer) => ({ method: 'publickey' as const, algorithm: 'x', blob, authorizedKey: '', fingerprint: '' });
    const bounded = await cert(['-n', 'alice', '-V', '20300101000000Z:20300701120000Z']);
    const forever = await cert(['-n', 'alice']);
    const deps = { trustedCaKeys: trusted, clock: { now: () => NOW }, logger: pino({ level: 'silent' }) };
    assert.equal((await createSshCaProvider(deps).authenticate(credential(bounded.blob), request, never)).deadline, undefined);
    const closing = createSshCaProvider({ ...deps, closeAtExpiry: true });
    assert.equal((await closing.authenticate(credential(bounded.blob), request, never)).deadline?.toISOString(), '2030-07-01T12:00:00.000Z');
    assert.equal((await closing.authenticate(credential(forever.blob), request, never)).deadline, undefined);
    assert.equal(certificateDeadline(0xffff_ffff_ffff_ffffn), undefined);
    assert.equal(certificateDeadline(2n ** 62n), undefined, 'beyond what a Date holds');
  });
});

/** SSHSIG (PROTOCOL.sshsig) signed data for namespace "file", sha512. */
function sshsigSignedData(message: Buffer): Buffer {
  const str = (b: Buffer | string) => {
    const body = typeof b === 'string' ? Buffer.from(b) : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, body]);
  };
  const hash = createHashSync('sha512', message);
  return Buffer.concat([Buffer.from('SSHSIG'), str('file'), str(''), str('sha512'), str(hash)]);
}

function createHashSync(alg: string, data: Buffer): Buffer {
  return createHash(alg).update(data).digest();
}

/** Signs with the real `ssh-keygen -Y sign` and returns the inner SSH signature blob. */
async function sshsigInner(keyPath: string, data: Buffer): Promise<Buffer> {
  const file = `${dir}/msg-${++n}`;
  await writeFile(file, data);
  await run('ssh-keygen', ['-q', '-Y', 'sign', '-n', 'file', '-f', keyPath, file]);
  const armored = await readFile(`${file}.sig`, 'utf8');
  const b64 = armored.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const sig = Buffer.from(b64, 'base64');
  // MAGIC(6) uint32 version, string publickey, string namespace, string reserved, string hash_alg, string signature
  let pos = 6 + 4;
  const next = () => {
    const len = sig.readUInt32BE(pos);
    const out = sig.subarray(pos + 4, pos + 4 + len);
    pos += 4 + len;
    return out;
  };
  next();
  next();
  next();
  next();
  return next();
}
