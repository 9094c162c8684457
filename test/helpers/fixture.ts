/**
 * The common fixture of SSH-level tests: a key pair, an authorized_keys file listing it for
 * user "alice", and a gateway using it. Tests add config overrides.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeKey, type TestKey } from './keys.js';
import { after, afterEach, before } from 'node:test';
import { assertGatewayIdle, assertNoGatewayLeaks, deepMerge, startGateway, type GatewayConfig, type TestGateway } from './gateway.js';
import { ensureTestImage } from './docker.js';
import { tempDir } from './tmp.js';

export interface KeyFixture {
  readonly dir: string;
  readonly alice: TestKey;
  readonly stranger: TestKey;
  readonly authorizedKeys: string;
  cleanup(): Promise<void>;
}

export async function keyFixture(): Promise<KeyFixture> {
  const tmp = await tempDir('airlock-keys-');
  const alice = await makeKey(tmp.path, 'alice');
  const stranger = await makeKey(tmp.path, 'stranger');
  const authorizedKeys = join(tmp.path, 'authorized_keys');
  await writeFile(authorizedKeys, `# test users\nalice ${alice.publicLine}\n`);
  return { dir: tmp.path, alice, stranger, authorizedKeys, cleanup: tmp.cleanup };
}

export function authorizedKeysConfig(fx: KeyFixture): GatewayConfig {
  return { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: fx.authorizedKeys } } };
}

export async function keyGateway(fx: KeyFixture, overrides: GatewayConfig = {}): Promise<TestGateway> {
  const base = authorizedKeysConfig(fx);
  return startGateway(deepMerge(base, overrides));
}

export interface KeyGatewaySuite {
  fx: KeyFixture;
  gw: TestGateway;
}

/**
 * Registers before/after hooks in the calling describe(): the test image, a key fixture and a
 * gateway with `overrides`; after every test all its connections must have closed and none of
 * the gateway's containers may remain; afterwards the gateway is stopped and no container may be left.
 * Tests read `suite.fx` / `suite.gw` (and may replace `suite.gw`, e.g. to restart it).
 */
export function keyGatewaySuite(overrides: GatewayConfig = {}): KeyGatewaySuite {
  const suite = {} as KeyGatewaySuite;
  before(async () => {
    await ensureTestImage();
    suite.fx = await keyFixture();
    suite.gw = await keyGateway(suite.fx, overrides);
  });
  afterEach(async () => {
    if (suite.gw) await assertGatewayIdle(suite.gw);
  });
  after(async () => {
    await suite.gw?.stop();
    await suite.fx?.cleanup();
    await assertNoGatewayLeaks();
  });
  return suite;
}
