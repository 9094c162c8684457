/**
 * Host certificates end to end (ssh.hostcerts): host keys and certificates made by the real
 * `ssh-keygen -h`, the real `ssh` client with a known_hosts that holds only the
 * `@cert-authority` line and StrictHostKeyChecking=yes — no trust on first use.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ensureTestImage } from '../helpers/docker.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { certAuthorityKnownHosts, ssh } from '../helpers/ssh.js';

const run = promisify(execFile);

let fx: KeyFixture;
let gw: TestGateway;
let hostCa: TestKey;
let wrongCa: TestKey;
let hostKeys: Record<'ed25519' | 'rsa' | 'ecdsa', TestKey>;

/** `ssh-keygen -s <ca> -h` on a host key's public half; returns the certificate file. */
async function hostCert(key: TestKey, options: readonly string[]): Promise<string> {
  await run('ssh-keygen', ['-q', '-s', hostCa.path, '-I', 'airlock-gw', '-h', ...options, `${key.path}.pub`]);
  return `${key.path}-cert.pub`;
}

/** A verbose login (ssh -v shows which host key was negotiated and how it was verified). */
function login(knownHosts: string, args: readonly string[] = []) {
  return ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo host-ok', knownHosts, args: ['-v', ...args] });
}

before(async () => {
  await ensureTestImage();
  fx = await keyFixture();
  hostCa = await makeKey(fx.dir, 'host-ca');
  wrongCa = await makeKey(fx.dir, 'wrong-ca');
  hostKeys = { ed25519: await makeKey(fx.dir, 'hk-ed25519'), rsa: await makeKey(fx.dir, 'hk-rsa', 'rsa'), ecdsa: await makeKey(fx.dir, 'hk-ecdsa', 'ecdsa') };
  const principals = ['-n', '127.0.0.1,localhost', '-V', '-5m:+1h'];
  gw = await keyGateway(fx, {
    ssh: {
      hostkeys: Object.values(hostKeys).map((k) => k.path),
      hostcerts: [await hostCert(hostKeys.ed25519, principals), await hostCert(hostKeys.rsa, principals), await hostCert(hostKeys.ecdsa, principals)],
      hostKeyAlgos: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ecdsa-sha2-nistp256'],
    },
  });
});

after(async () => {
  await gw?.stop();
  await fx?.cleanup();
  await assertNoGatewayLeaks();
});

describe('host certificates', () => {
  test('a client trusting only the host CA logs in with StrictHostKeyChecking=yes (ed25519, RSA SHA-512/256, ECDSA certificates)', async () => {
    const knownHosts = await certAuthorityKnownHosts(gw, hostCa.publicLine);
    const before = await readFile(knownHosts, 'utf8');
    const cases = [
      { algo: 'ssh-ed25519-cert-v01@openssh.com', kind: 'ED25519-CERT', args: [] }, // the client's own first choice
      { algo: 'rsa-sha2-512-cert-v01@openssh.com', kind: 'RSA-CERT' },
      { algo: 'rsa-sha2-256-cert-v01@openssh.com', kind: 'RSA-CERT' },
      { algo: 'ecdsa-sha2-nistp256-cert-v01@openssh.com', kind: 'ECDSA-CERT' },
    ];
    for (const c of cases) {
      const res = await login(knownHosts, c.args ?? ['-o', `HostKeyAlgorithms=${c.algo}`]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout.toString().trim(), 'host-ok', c.algo);
      assert.match(res.stderr, new RegExp(`kex: host key algorithm: ${c.algo}`));
      assert.match(res.stderr, /Server host certificate: .* ID "airlock-gw" CA ssh-ed25519 /);
      assert.match(res.stderr, new RegExp(`is known and matches the ${c.kind} host certificate`), c.algo);
    }
    assert.equal(await readFile(knownHosts, 'utf8'), before, 'nothing was learned on first use');
    await gw.waitForIdle();
  });

  test('a known_hosts trusting another CA fails host key verification; no login is attempted', async () => {
    const attemptsBefore = gw.logs.filter((l) => l.msg === 'auth attempt').length;
    const res = await login(await certAuthorityKnownHosts(gw, wrongCa.publicLine, 'known_hosts_wrong_ca'));
    assert.equal(res.code, 255);
    assert.equal(res.stdout.toString(), '');
    assert.match(res.stderr, /Host key verification failed\./);
    assert.equal(gw.logs.filter((l) => l.msg === 'auth attempt').length, attemptsBefore);
    assert.deepEqual(await gw.containers(), []);
  });

  test('the client checks the certificate principals: a name the certificate does not list fails', async () => {
    // HostKeyAlias makes the client verify the certificate for "other.example" (not a principal).
    const knownHosts = await certAuthorityKnownHosts(gw, hostCa.publicLine, 'known_hosts_alias');
    const aliased = (await readFile(knownHosts, 'utf8')).replace(`[127.0.0.1]:${gw.port}`, 'other.example');
    await writeFile(knownHosts, aliased);
    const res = await login(knownHosts, ['-o', 'HostKeyAlias=other.example']);
    assert.equal(res.code, 255);
    assert.match(res.stderr, /name is not a listed principal/);
    assert.match(res.stderr, /Host key verification failed\./);
  });

  test('clients without the CA still get the plain host keys (pinned known_hosts)', async () => {
    for (const [algo, kind] of [
      ['ssh-ed25519', 'ED25519'],
      ['rsa-sha2-512', 'RSA'],
      ['ecdsa-sha2-nistp256', 'ECDSA'],
    ] as const) {
      const res = await login(gw.knownHosts, ['-o', `HostKeyAlgorithms=${algo}`]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, new RegExp(`kex: host key algorithm: ${algo}\\r?\\n`));
      assert.match(res.stderr, new RegExp(`matches the ${kind} host key`));
    }
    await gw.waitForIdle();
  });

  test('an expired host certificate stops the start with an error naming the file', async () => {
    const expiredKey = await makeKey(fx.dir, 'hk-expired');
    const expired = await hostCert(expiredKey, ['-V', '20200101:20200102']);
    await assert.rejects(keyGateway(fx, { ssh: { hostkeys: [expiredKey.path], hostcerts: [expired] } }), (err: Error) => {
      assert.match(err.message, /gateway exited \(1\)/);
      assert.ok(err.message.includes(`airlock: ssh.hostcerts: ${expired}: expired at 2020-01-02T00:00:00.000Z [HOSTCERT_INVALID]`), err.message);
      return true;
    });
  });
});
