/**
 * SSH server surface seen by the OpenSSH client: persisted ed25519 host key, modern algorithms
 * only, the configured version string and banner.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authorizedKeysConfig, keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import { assertGatewayIdle, assertNoGatewayLeaks, startGateway, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';

const run = promisify(execFile);

describe('ssh server surface', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let hostKeyPath: string;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    hostKeyPath = join(fx.dir, 'state', 'host_ed25519');
    await mkdir(join(fx.dir, 'state'));
    gw = await keyGateway(fx, {
      ssh: { generatedHostKeyPath: hostKeyPath, banner: 'Authorized use only. Sessions are recorded.\n', serverVersion: 'SSH-2.0-AirlockTest_1.0' },
    });
  });
  afterEach(async () => {
    await assertGatewayIdle(gw);
  });
  after(async () => {
    await gw?.stop();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('shows the banner and the version string, negotiates curve25519 and an AEAD cipher with an ed25519 host key', async () => {
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'true', args: ['-v'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Authorized use only\. Sessions are recorded\./);
    assert.match(r.stderr, /remote software version AirlockTest_1\.0/);
    assert.match(r.stderr, /kex: algorithm: curve25519-sha256/);
    assert.match(r.stderr, /kex: server->client cipher: (chacha20-poly1305@openssh\.com|aes\d+-gcm@openssh\.com)/);
    assert.match(r.stderr, /Server host key: ssh-ed25519/);
  });

  for (const [what, option] of [
    ['CBC/CTR ciphers', 'Ciphers=aes128-ctr,aes256-cbc'],
    ['old key exchanges', 'KexAlgorithms=diffie-hellman-group14-sha1,diffie-hellman-group1-sha1'],
    ['SHA-1 MACs with a non-AEAD cipher', 'Ciphers=aes128-ctr'],
  ] as const) {
    it(`refuses ${what}`, async () => {
      const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'true', args: ['-o', option] });
      assert.equal(r.code, 255);
      assert.match(r.stderr, /no matching (cipher|key exchange method|MAC)/);
    });
  }

  it('persists the generated host key: a restarted gateway presents the same key', async () => {
    const first = await readFile(`${hostKeyPath}.pub`, 'utf8');
    const { stdout: fp1 } = await run('ssh-keygen', ['-l', '-f', `${hostKeyPath}.pub`]);
    await gw.stop();
    gw = await keyGateway(fx, { ssh: { generatedHostKeyPath: hostKeyPath } });
    assert.equal(await readFile(`${hostKeyPath}.pub`, 'utf8'), first);
    // known_hosts of the new gateway was written from the same file; a successful strict
    // host-key-checking login proves the server really presents that key.
    const { stdout: scanned } = await run('ssh-keyscan', ['-p', String(gw.port), '-t', 'ed25519', '127.0.0.1']);
    assert.ok(scanned.includes(first.split(' ')[1]!), 'the gateway presents the persisted key');
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo same-key' });
    assert.equal(r.stdout.toString(), 'same-key\n', r.stderr);
    assert.match(fp1, /ED25519/);
  });

  it('reads its config from $AIRLOCK_CONFIG when --config is not given', async () => {
    // Without the file the embedded demo config would run (no banner, port 2222): the banner,
    // the port-0 listener and alice's key prove the file named by the variable was used.
    const viaEnv = await startGateway(
      { ...authorizedKeysConfig(fx), ssh: { generatedHostKeyPath: join(fx.dir, 'env-hostkey'), banner: 'Config from AIRLOCK_CONFIG.\n' } },
      { configFrom: 'env' },
    );
    try {
      assert.notEqual(viaEnv.port, 2222);
      const r = await ssh(viaEnv, { user: 'alice', identity: fx.alice.path, command: 'echo via-env' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'via-env\n');
      assert.match(r.stderr, /Config from AIRLOCK_CONFIG\./);
      await assertGatewayIdle(viaEnv);
    } finally {
      assert.equal(await viaEnv.stop(), 0);
    }
  });
});
