/**
 * ssh.hostcerts start-up checks on host keys and certificates made by the real `ssh-keygen`, and
 * the key objects handed to ssh2 (src/ssh/host-certificates.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { certificateHostKeyEntries, loadHostCertificates, ssh2SupportsHostCertificates } from '../../src/ssh/host-certificates.js';
import { loadHostKeys, type HostKey } from '../../src/ssh/host-keys.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

let dir: string;
let cleanup: () => Promise<void>;
let hostCa: TestKey;
let keys: Record<'ed25519' | 'rsa' | 'ecdsa', TestKey>;
let hostKeys: HostKey[];
const ALL_ALGOS = ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ecdsa-sha2-nistp256'];
const NOW = Date.now();

let n = 0;
/** Signs a copy of `key`'s public key; returns the certificate file. */
async function certify(key: TestKey, options: readonly string[]): Promise<string> {
  const pub = join(dir, `cert${++n}.pub`);
  await copyFile(`${key.path}.pub`, pub);
  await run('ssh-keygen', ['-q', '-s', hostCa.path, '-I', `gw-${n}`, ...options, pub]);
  return pub.replace(/\.pub$/, '-cert.pub');
}

const load = (files: string[], algos = ALL_ALGOS) => loadHostCertificates(files, hostKeys, { now: NOW, hostKeyAlgos: algos });

/** Rejects with HOSTCERT_INVALID, a message naming `file` and matching `pattern`. */
async function refused(files: string[], file: string, pattern: RegExp, algos = ALL_ALGOS): Promise<void> {
  await assert.rejects(load(files, algos), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'HOSTCERT_INVALID');
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

before(async () => {
  ({ path: dir, cleanup } = await tempDir('airlock-hostcert-unit-'));
  hostCa = await makeKey(dir, 'host-ca');
  keys = { ed25519: await makeKey(dir, 'hk-ed25519'), rsa: await makeKey(dir, 'hk-rsa', 'rsa'), ecdsa: await makeKey(dir, 'hk-ecdsa', 'ecdsa') };
  hostKeys = await loadHostKeys(Object.values(keys).map((k) => k.path), join(dir, 'unused'));
});

after(async () => {
  await cleanup?.();
});

describe('loadHostCertificates', () => {
  test('the installed ssh2 carries the host certificate patch (npm ci ran patch-package)', () => {
    assert.equal(ssh2SupportsHostCertificates(), true);
  });

  test('ed25519, RSA and ECDSA host certificates load, each with its certificate algorithms', async () => {
    const files = [await certify(keys.ed25519, ['-h', '-n', 'gw']), await certify(keys.rsa, ['-h']), await certify(keys.ecdsa, ['-h', '-V', '-5m:+1h'])];
    const certs = await load(files);
    assert.deepEqual(
      certs.map((c) => c.algorithms),
      [['ssh-ed25519-cert-v01@openssh.com'], ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com'], ['ecdsa-sha2-nistp256-cert-v01@openssh.com']],
    );
    assert.deepEqual(
      certs.map((c) => c.hostKey.source),
      [keys.ed25519.path, keys.rsa.path, keys.ecdsa.path],
    );
    // RSA follows ssh.hostKeyAlgos: only the SHA-2 variants offered there.
    assert.deepEqual((await load([files[1] ?? ''], ['ssh-ed25519', 'rsa-sha2-256']))[0]?.algorithms, ['rsa-sha2-256-cert-v01@openssh.com']);
    assert.deepEqual(await load([]), []);
  });

  test('refuses user certificates, expired or not yet valid ones, and certificates for other keys', async () => {
    const user = await certify(keys.ed25519, ['-n', 'alice']);
    await refused([user], user, /is a user certificate; sign the host key with `ssh-keygen -s <ca> -h`/);
    const expired = await certify(keys.ed25519, ['-h', '-V', '20200101:20200102']);
    await refused([expired], expired, /expired at 2020-01-02T00:00:00\.000Z/);
    const future = await certify(keys.ed25519, ['-h', '-V', '20990101:20990102']);
    await refused([future], future, /is not valid before 2099-01-01/);
    const stranger = await makeKey(dir, 'not-a-host-key');
    const foreign = await certify(stranger, ['-h']);
    await refused([foreign], foreign, new RegExp(`certifies key ${stranger.fingerprint.replace(/[+/]/g, '\\$&')}, which is not one of the host keys`));
  });

  test('refuses tampered, unreadable and non-certificate files, RSA without RSA algorithms, and duplicates', async () => {
    const good = await certify(keys.ed25519, ['-h', '-I', 'gw-AAAA']);
    const [type, b64] = (await readFile(good, 'utf8')).trim().split(' ');
    const blob = Buffer.from(b64 ?? '', 'base64');
    const at = blob.indexOf(Buffer.from('gw-AAAA'));
    assert.ok(at > 0);
    blob[at + 3] = 'B'.charCodeAt(0);
    const tampered = join(dir, 'tampered-cert.pub');
    await writeFile(tampered, `${type} ${blob.toString('base64')}\n`);
    await refused([tampered], tampered, /CA signature does not verify/);
    const missing = join(dir, 'missing-cert.pub');
    await refused([missing], missing, /cannot be read/);
    await refused([`${keys.ed25519.path}.pub`], `${keys.ed25519.path}.pub`, /expected one OpenSSH certificate line/);
    const rsa = await certify(keys.rsa, ['-h']);
    await refused([rsa], rsa, /offers neither rsa-sha2-512 nor rsa-sha2-256/, ['ssh-ed25519']);
    const second = await certify(keys.ed25519, ['-h']);
    await refused([good, second], second, new RegExp(`a second ssh-ed25519-cert-v01@openssh.com certificate \\(the first is ${good.replace(/[.]/g, '\\.')}\\)`));
  });

  test('without the patched ssh2, host certificates stop the start', async () => {
    const file = await certify(keys.ed25519, ['-h']);
    await assert.rejects(loadHostCertificates([file], hostKeys, { now: NOW, hostKeyAlgos: ALL_ALGOS, ssh2Patched: () => false }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'HOSTCERT_INVALID');
      assert.match(err.message, /needs the patched ssh2 .*npm ci/);
      return true;
    });
  });
});

describe('certificateHostKeyEntries', () => {
  test('ssh2 takes each entry as a parsed key: certificate algorithm as type, the certificate as public key, signing by the host key', async () => {
    const certs = await load([await certify(keys.ed25519, ['-h']), await certify(keys.rsa, ['-h'])]);
    const entries = certificateHostKeyEntries(certs);
    assert.deepEqual(
      entries.map((e) => e.key.type),
      ['ssh-ed25519-cert-v01@openssh.com', 'rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com'],
    );
    for (const [i, entry] of entries.entries()) {
      const cert = certs[i === 0 ? 0 : 1];
      assert.ok(cert);
      // ssh2's Server runs parseKey on every entry: a parsed key must come back unchanged.
      assert.equal(ssh2.utils.parseKey(entry.key), entry.key);
      assert.ok(entry.key.getPublicSSH().equals(cert.blob));
      assert.ok(entry.key.getPrivatePEM(), 'private key reachable for signing');
      const data = Buffer.from('exchange hash');
      const hash = i === 0 ? undefined : i === 1 ? 'sha512' : 'sha256';
      const plain = ssh2.utils.parseKey(`${cert.hostKey.type} ${cert.hostKey.publicKey.toString('base64')}`);
      assert.ok(!(plain instanceof Error) && !Array.isArray(plain));
      assert.equal(plain.verify(data, entry.key.sign(data, hash), hash), true);
    }
  });
});
