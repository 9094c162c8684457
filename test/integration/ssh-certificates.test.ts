/**
 * SSH user certificates end to end: CAs and certificates made by the real `ssh-keygen -s`, logins
 * by the real `ssh` client (it offers `<key>-cert.pub` next to the key), the gateway checking
 * everything itself (src/auth/ssh-ca.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureTestImage } from '../helpers/docker.js';
import { assertNoGatewayLeaks, startGateway, type TestGateway } from '../helpers/gateway.js';
import { makeKey } from '../helpers/keys.js';
import { ssh } from '../helpers/ssh.js';
import { sshInTerminal } from '../helpers/terminal-ssh.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

let dir: string;
let cleanup: () => Promise<void>;
let gw: TestGateway;
let edCa: string;
let rsaCa: string;
let otherCa: string;
let revokedFile: string;
let n = 0;

/** A fresh user key of `type` with a certificate signed by `ca` using `ssh-keygen -s` options. */
async function certifiedKey(ca: string, options: readonly string[], type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519'): Promise<string> {
  const key = await makeKey(dir, `user${++n}`, type);
  await run('ssh-keygen', ['-q', '-s', ca, '-I', `keyid-${n}-AAAA`, ...options, `${key.path}.pub`]);
  return key.path;
}

async function assertRefused(identity: string, code: string, user = 'alice'): Promise<void> {
  const res = await ssh(gw, { user, identity, command: 'echo should-not-run' });
  assert.equal(res.code, 255, res.stderr);
  assert.equal(res.stdout.toString(), '');
  assert.match(res.stderr, new RegExp(`\\[${code}\\]`), res.stderr);
  assert.deepEqual(await gw.containers(), [], 'no container for a refused login');
}

before(async () => {
  await ensureTestImage();
  ({ path: dir, cleanup } = await tempDir('airlock-cert-'));
  edCa = (await makeKey(dir, 'ca-ed25519')).path;
  rsaCa = (await makeKey(dir, 'ca-rsa', 'rsa')).path;
  otherCa = (await makeKey(dir, 'ca-other')).path;
  revokedFile = join(dir, 'revoked.txt');
  await writeFile(revokedFile, '# revoked\nserial: 666\n');
  gw = await startGateway({
    auth: {
      publicKey: {
        // One CA inline, one as a file path.
        trustedUserCAKeys: [(await readFile(`${edCa}.pub`, 'utf8')).trim(), `${rsaCa}.pub`],
        revokedKeys: revokedFile,
      },
    },
  });
});

after(async () => {
  await gw?.stop();
  await cleanup?.();
  await assertNoGatewayLeaks();
});

describe('SSH user certificates', () => {
  test('a valid certificate from the ed25519 CA logs in (ed25519, RSA and ECDSA user keys)', async () => {
    for (const type of ['ed25519', 'rsa', 'ecdsa'] as const) {
      const identity = await certifiedKey(edCa, ['-n', 'alice,bob', '-V', '-5m:+1h', '-O', 'source-address=127.0.0.1/32,::1'], type);
      const res = await ssh(gw, { user: 'alice', identity, command: 'echo cert-ok-$(id -un)' });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout.toString().trim(), 'cert-ok-airlock', type);
    }
    await gw.waitForIdle();
  });

  test('a certificate from the RSA CA logs in', async () => {
    const identity = await certifiedKey(rsaCa, ['-n', 'alice']);
    const res = await ssh(gw, { user: 'alice', identity, command: 'echo rsa-ca-ok' });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.toString().trim(), 'rsa-ca-ok');
    await gw.waitForIdle();
  });

  test('expired and not yet valid certificates are refused', async () => {
    await assertRefused(await certifiedKey(edCa, ['-n', 'alice', '-V', '20200101:20200102']), 'CERT_EXPIRED');
    await assertRefused(await certifiedKey(edCa, ['-n', 'alice', '-V', '20990101:20990102']), 'CERT_NOT_YET_VALID');
  });

  test('a certificate from an untrusted CA is refused', async () => {
    await assertRefused(await certifiedKey(otherCa, ['-n', 'alice']), 'CERT_UNTRUSTED_CA');
  });

  test('a certificate for another principal is refused', async () => {
    await assertRefused(await certifiedKey(edCa, ['-n', 'bob']), 'CERT_PRINCIPAL_MISMATCH');
  });

  test('a revoked serial and a revoked key are refused; the list is re-read without restart', async () => {
    await assertRefused(await certifiedKey(edCa, ['-n', 'alice', '-z', '666']), 'CERT_REVOKED');
    const identity = await certifiedKey(edCa, ['-n', 'alice', '-z', '7']);
    const before = await ssh(gw, { user: 'alice', identity, command: 'true' });
    assert.equal(before.code, 0, before.stderr);
    await gw.waitForIdle();
    const pub = (await readFile(`${identity}.pub`, 'utf8')).trim();
    await writeFile(revokedFile, `serial: 666\nkey: ${pub}\n`);
    await assertRefused(identity, 'CERT_REVOKED');
  });

  test('a binary KRL (ssh-keygen -k) revokes by serial under its CA; ssh-keygen -k -u takes effect without restart', async () => {
    const spec = join(dir, 'krl-spec');
    await writeFile(spec, 'serial: 500\n');
    // Same file as the plain list: the format is told by the content (SSHKRL magic).
    await run('ssh-keygen', ['-q', '-k', '-f', revokedFile, '-s', `${edCa}.pub`, spec]);
    await assertRefused(await certifiedKey(edCa, ['-n', 'alice', '-z', '500']), 'CERT_REVOKED');
    // Serials are scoped to the CA: serial 500 from the RSA CA is someone else.
    const otherCaSameSerial = await ssh(gw, { user: 'alice', identity: await certifiedKey(rsaCa, ['-n', 'alice', '-z', '500']), command: 'echo other-ca-ok' });
    assert.equal(otherCaSameSerial.code, 0, otherCaSameSerial.stderr);
    assert.equal(otherCaSameSerial.stdout.toString().trim(), 'other-ca-ok');
    const identity = await certifiedKey(edCa, ['-n', 'alice', '-z', '501']);
    const before = await ssh(gw, { user: 'alice', identity, command: 'true' });
    assert.equal(before.code, 0, before.stderr);
    await gw.waitForIdle();
    await writeFile(spec, 'serial: 501\n');
    await run('ssh-keygen', ['-q', '-k', '-u', '-f', revokedFile, '-s', `${edCa}.pub`, spec]);
    await assertRefused(identity, 'CERT_REVOKED');
    await gw.waitForLog((l) => l.msg === 'revocation list loaded' && l.format === 'krl');
    // A damaged KRL fails closed (no login at all) until it is fixed.
    const krl = await readFile(revokedFile);
    await writeFile(revokedFile, krl.subarray(0, krl.length - 3));
    const good = await certifiedKey(edCa, ['-n', 'alice', '-z', '502']);
    await assertRefused(good, 'AUTH_BACKEND_ERROR');
    await gw.waitForLog((l) => l.msg === 'revocation list rejected' && String(l.error).includes('truncated'));
    await writeFile(revokedFile, krl);
    const fixed = await ssh(gw, { user: 'alice', identity: good, command: 'true' });
    assert.equal(fixed.code, 0, fixed.stderr);
    await gw.waitForIdle();
    await writeFile(revokedFile, '# revoked\nserial: 666\n');
  });

  test('a tampered certificate is not usable: OpenSSH itself drops it, and the login fails', async () => {
    // OpenSSH verifies the CA signature when it loads a certificate, so the real client never
    // sends a tampered one; the gateway's own refusal of tampered bytes is in test/unit/ssh-ca.test.ts.
    const identity = await certifiedKey(edCa, ['-n', 'alice']);
    const certFile = `${identity}-cert.pub`;
    const [algo, b64, ...rest] = (await readFile(certFile, 'utf8')).trim().split(' ');
    const blob = Buffer.from(b64 ?? '', 'base64');
    const at = blob.indexOf(Buffer.from(`keyid-${n}-AAAA`));
    assert.ok(at > 0);
    blob[at + `keyid-${n}-`.length] = 'B'.charCodeAt(0);
    await writeFile(certFile, `${algo} ${blob.toString('base64')} ${rest.join(' ')}\n`);
    const res = await ssh(gw, { user: 'alice', identity, command: 'echo should-not-run' });
    assert.equal(res.code, 255, res.stderr);
    assert.equal(res.stdout.toString(), '');
    assert.match(res.stderr, /Permission denied/);
    assert.deepEqual(await gw.containers(), []);
  });

  test('a source-address that does not contain the client is refused', async () => {
    await assertRefused(await certifiedKey(edCa, ['-n', 'alice', '-O', 'source-address=10.9.9.0/24']), 'CERT_SOURCE_ADDRESS');
  });

  test('force-command runs instead of the requested command, with SSH_ORIGINAL_COMMAND', async () => {
    const identity = await certifiedKey(edCa, ['-n', 'alice', '-O', 'force-command=echo forced:$SSH_ORIGINAL_COMMAND']);
    const res = await ssh(gw, { user: 'alice', identity, command: 'echo asked' });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.toString().trim(), 'forced:echo asked');
    await gw.waitForIdle();
  });

  test('a no-pty certificate gets no terminal and is told why; -tt is refused outright', async () => {
    const identity = await certifiedKey(edCa, ['-n', 'alice', '-O', 'no-pty']);
    const shell = await sshInTerminal(gw, { user: 'alice', identity }, 'tty; exit\n');
    assert.match(shell.output, /PTY allocation request failed/);
    assert.match(shell.output, /airlock: a terminal \(pty\) for this certificate is not allowed by the gateway policy \[POLICY_DENIED\]/);
    assert.match(shell.output, /not a tty/);
    await gw.waitForIdle();
    // With -tt a refused pty is fatal for OpenSSH: nothing runs.
    const forced = await ssh(gw, { user: 'alice', identity, command: 'echo ran', args: ['-tt'] });
    assert.equal(forced.code, 255);
    assert.match(forced.stderr, /PTY allocation request failed/);
    assert.doesNotMatch(forced.stdout.toString(), /ran/);
    await gw.waitForIdle();
    // Control: a certificate with the default permit-pty gets a terminal.
    const ok = await ssh(gw, { user: 'alice', identity: await certifiedKey(edCa, ['-n', 'alice']), command: 'tty', args: ['-tt'] });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.toString(), /\/dev\/pts\//);
    await gw.waitForIdle();
  });
});

describe('certificate expiry during a session', () => {
  test('by default (as in sshd) a session outlives its certificate: valid before is checked at login only', async () => {
    const identity = await certifiedKey(edCa, ['-n', 'alice', '-V', '-1m:+4s']);
    const expiry = Date.now() + 4_000;
    // Sleeps until well past the certificate's end, then proves it is still connected.
    const res = await ssh(gw, { user: 'alice', identity, command: `sleep 6; echo still-connected` });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(Date.now() > expiry, 'the session ran past valid before');
    assert.equal(res.stdout.toString().trim(), 'still-connected');
    await gw.waitForIdle();
  });

  test('auth.publicKey.closeAtCertificateExpiry: the connection is closed at valid before and its container removed', async () => {
    const closing = await startGateway({
      auth: { publicKey: { trustedUserCAKeys: [`${edCa}.pub`], closeAtCertificateExpiry: true } },
    });
    try {
      const identity = await certifiedKey(edCa, ['-n', 'alice', '-V', '-1m:+6s']);
      // ssh-keygen -L prints local time: ask for UTC.
      const listing = await run('ssh-keygen', ['-L', '-f', `${identity}-cert.pub`], { env: { ...process.env, TZ: 'UTC' } });
      const notAfter = Date.parse(`${/Valid: from \S+ to (\S+)/.exec(listing.stdout)?.[1] ?? 'unparsed'}Z`);
      assert.ok(Number.isFinite(notAfter), listing.stdout);
      const res = await ssh(closing, { user: 'alice', identity, command: 'echo up; sleep 60; echo not-reached' });
      assert.equal(res.code, 255);
      assert.match(res.stdout.toString(), /^up\n$/);
      assert.match(res.stderr, /airlock: access has expired; the session is closed/);
      assert.ok(Date.now() >= notAfter, 'closed at valid before, not earlier');
      await closing.waitForLog((l) => l.msg === 'connection deadline reached' && l.source === 'auth');
      await closing.waitForIdle();
      assert.deepEqual(await closing.containers(), [], 'the container is removed');
    } finally {
      await closing.stop();
    }
  });
});
