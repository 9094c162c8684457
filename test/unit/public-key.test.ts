import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { blobKeyType, describePublicKey, parseAuthorizedKeyLine, verifyUserauthSignature } from '../../src/auth/public-key.js';

interface TestKey {
  readonly algorithm: string;
  readonly blob: Buffer;
  readonly pubLine: string;
  readonly keygenFingerprint: string;
  readonly priv: ParsedKey;
}

const KINDS = [
  { name: 'ed25519', args: ['-t', 'ed25519'], algorithm: 'ssh-ed25519' },
  { name: 'rsa', args: ['-t', 'rsa', '-b', '2048'], algorithm: 'ssh-rsa' },
  { name: 'ecdsa256', args: ['-t', 'ecdsa', '-b', '256'], algorithm: 'ecdsa-sha2-nistp256' },
  { name: 'ecdsa384', args: ['-t', 'ecdsa', '-b', '384'], algorithm: 'ecdsa-sha2-nistp384' },
  { name: 'ecdsa521', args: ['-t', 'ecdsa', '-b', '521'], algorithm: 'ecdsa-sha2-nistp521' },
] as const;

let dir: string;
const keys = new Map<string, TestKey>();
const data = Buffer.from('session id + userauth request stands in here');

function generate(name: string, args: readonly string[]): TestKey {
  const file = join(dir, name);
  execFileSync('ssh-keygen', [...args, '-N', '', '-C', `${name}@test`, '-q', '-f', file]);
  const pubLine = readFileSync(`${file}.pub`, 'utf8').trim();
  const [algorithm, b64] = pubLine.split(' ');
  // `ssh-keygen -lf` prints "<bits> SHA256:... <comment> (<TYPE>)".
  const keygenFingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';
  const priv = ssh2.utils.parseKey(readFileSync(file));
  if (priv instanceof Error) throw priv;
  return { algorithm: algorithm ?? '', blob: Buffer.from(b64 ?? '', 'base64'), pubLine, keygenFingerprint, priv };
}

function sign(key: TestKey, payload: Buffer, hashAlgo?: string): Buffer {
  const sig: unknown = key.priv.sign(payload, hashAlgo);
  if (!Buffer.isBuffer(sig)) throw new Error(`signing failed: ${String(sig)}`);
  return sig;
}

function must(name: string): TestKey {
  const key = keys.get(name);
  assert.ok(key, `test key ${name} was generated`);
  return key;
}

/** The hash the SSH layer passes for each key type (ctx.hashAlgo): rsa-sha2-256 for RSA. */
const hashFor = (algorithm: string): string | undefined => (algorithm === 'ssh-rsa' ? 'sha256' : undefined);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'airlock-pk-'));
  for (const k of KINDS) keys.set(k.name, generate(k.name, k.args));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('describePublicKey', () => {
  for (const k of KINDS) {
    test(`${k.name}: fingerprint equals ssh-keygen -lf, authorized key equals the .pub line`, () => {
      const key = must(k.name);
      assert.equal(key.algorithm, k.algorithm);
      const d = describePublicKey(key.algorithm, key.blob);
      assert.match(key.keygenFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      assert.equal(d.fingerprint, key.keygenFingerprint);
      assert.equal(d.authorizedKey, key.pubLine.split(' ').slice(0, 2).join(' '));
    });
  }
});

describe('parseAuthorizedKeyLine', () => {
  test('parses an ssh-keygen .pub line with its comment', () => {
    const key = must('ed25519');
    const parsed = parseAuthorizedKeyLine(`  ${key.pubLine}  `);
    assert.ok(parsed);
    assert.equal(parsed.algorithm, 'ssh-ed25519');
    assert.ok(parsed.blob.equals(key.blob));
    assert.equal(parsed.comment, 'ed25519@test');
  });

  test('parses a line without comment', () => {
    const key = must('rsa');
    const parsed = parseAuthorizedKeyLine(key.pubLine.split(' ').slice(0, 2).join(' '));
    assert.equal(parsed?.algorithm, 'ssh-rsa');
    assert.equal(parsed?.comment, '');
  });

  test('returns null for blank lines, comments and malformed lines', () => {
    const ed = must('ed25519');
    const b64 = ed.blob.toString('base64');
    for (const line of ['', '   ', '# ssh-ed25519 AAAA', 'ssh-ed25519', 'ssh-ed25519 !!!notbase64', `ssh-rsa ${b64}`, `ssh-ed25519 ${b64.slice(0, -3)}`, 'ssh-ed25519 AAAA']) {
      assert.equal(parseAuthorizedKeyLine(line), null, JSON.stringify(line));
    }
  });
});

describe('blobKeyType', () => {
  test('reads the algorithm from a wire blob and refuses garbage', () => {
    assert.equal(blobKeyType(must('ecdsa256').blob), 'ecdsa-sha2-nistp256');
    assert.equal(blobKeyType(Buffer.alloc(0)), null);
    assert.equal(blobKeyType(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x41])), null);
  });
});

describe('verifyUserauthSignature', () => {
  for (const k of KINDS) {
    test(`${k.name}: a valid signature verifies; wrong data, a corrupted signature and another key's signature do not`, () => {
      const key = must(k.name);
      const hashAlgo = hashFor(key.algorithm);
      const signature = sign(key, data, hashAlgo);
      assert.equal(verifyUserauthSignature({ blob: key.blob, signature, signedData: data, hashAlgo }), true);

      const otherData = Buffer.concat([data, Buffer.from('x')]);
      assert.equal(verifyUserauthSignature({ blob: key.blob, signature, signedData: otherData, hashAlgo }), false);

      const corrupted = Buffer.from(signature);
      const at = corrupted.length - 5;
      corrupted[at] = (corrupted[at] ?? 0) ^ 0x01;
      assert.equal(verifyUserauthSignature({ blob: key.blob, signature: corrupted, signedData: data, hashAlgo }), false);

      const other = must(k.name === 'ed25519' ? 'rsa' : 'ed25519');
      const otherSig = sign(other, data, hashFor(other.algorithm));
      assert.equal(verifyUserauthSignature({ blob: key.blob, signature: otherSig, signedData: data, hashAlgo }), false);
    });
  }

  test('a second key of the same type does not verify the first one\'s signature', () => {
    const a = must('ed25519');
    const b = generate('ed25519-b', ['-t', 'ed25519']);
    const sig = sign(b, data);
    assert.equal(verifyUserauthSignature({ blob: b.blob, signature: sig, signedData: data }), true);
    assert.equal(verifyUserauthSignature({ blob: a.blob, signature: sig, signedData: data }), false);
  });

  test('RSA: rsa-sha2-512 verifies; the hash must match the one signed with', () => {
    const key = must('rsa');
    const sig512 = sign(key, data, 'sha512');
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: sig512, signedData: data, hashAlgo: 'sha512' }), true);
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: sig512, signedData: data, hashAlgo: 'sha256' }), false);
  });

  test('RSA: plain ssh-rsa (SHA-1) is refused unless allowed', () => {
    const key = must('rsa');
    const sig1 = sign(key, data, 'sha1');
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: sig1, signedData: data }), false);
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: sig1, signedData: data, allowRsaSha1: true }), true);
  });

  test('a hash algorithm the key type does not use is refused', () => {
    const key = must('ed25519');
    const sig = sign(key, data);
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: sig, signedData: data, hashAlgo: 'sha256' }), false);
    const ec = must('ecdsa256');
    const ecSig = sign(ec, data);
    assert.equal(verifyUserauthSignature({ blob: ec.blob, signature: ecSig, signedData: data, hashAlgo: 'sha512' }), false);
  });

  test('garbage never throws and returns false', () => {
    const key = must('ed25519');
    const sig = sign(key, data);
    const garbage = [
      Buffer.alloc(0),
      Buffer.from('not a key at all'),
      Buffer.from([0, 0, 0, 11, ...Buffer.from('ssh-ed25519'), 0, 0, 0, 3, 1, 2, 3]),
      key.blob.subarray(0, key.blob.length - 1),
      Buffer.concat([key.blob, Buffer.from([0])]),
      // The text form of the key is not a wire blob, even though ssh2's parseKey would take it.
      Buffer.from(key.pubLine),
    ];
    for (const blob of garbage) {
      assert.equal(verifyUserauthSignature({ blob, signature: sig, signedData: data }), false, blob.toString('hex'));
    }
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: Buffer.alloc(0), signedData: data }), false);
    assert.equal(verifyUserauthSignature({ blob: key.blob, signature: Buffer.from('garbage'), signedData: data }), false);
  });

  test('certificates are refused (verified by the SSH CA provider, not here)', () => {
    const user = generate('cert-user', ['-t', 'ed25519']);
    execFileSync('ssh-keygen', ['-q', '-s', join(dir, 'ed25519'), '-I', 'test', '-n', 'alice', join(dir, 'cert-user.pub')]);
    const cert = parseAuthorizedKeyLine(readFileSync(join(dir, 'cert-user-cert.pub'), 'utf8'));
    assert.ok(cert);
    assert.equal(cert.algorithm, 'ssh-ed25519-cert-v01@openssh.com');
    // Signed by the certified key itself: still false, certificates are not this helper's job.
    const sig = sign(user, data);
    assert.equal(verifyUserauthSignature({ blob: user.blob, signature: sig, signedData: data }), true);
    assert.equal(verifyUserauthSignature({ blob: cert.blob, signature: sig, signedData: data }), false);
  });
});
