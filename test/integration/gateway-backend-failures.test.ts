/**
 * When the container cannot be had — engine unreachable, image missing, start failure — the
 * user gets one clear line with a code, a non-zero exit, and nothing is left behind.
 */
import { afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import { assertNoGatewayLeaks, type GatewayConfig, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';

describe('backend failure paths', () => {
  let fx: KeyFixture;
  let gw: TestGateway | undefined;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await assertNoGatewayLeaks();
  });

  const cases: Array<[string, GatewayConfig, RegExp]> = [
    ['Docker socket unreachable', { docker: { connection: { host: 'unix:///nonexistent/docker.sock' } } }, /container engine is unavailable.*\[BACKEND_UNAVAILABLE\]/],
    ['image missing (pull policy Never)', { docker: { execution: { container: { image: 'airlock-test:does-not-exist' }, imagePullPolicy: 'Never' } } }, /airlock-test:does-not-exist.*\[IMAGE_NOT_FOUND\]/],
    ['image missing (pull policy IfNotPresent, no registry)', { docker: { execution: { container: { image: 'airlock-test:does-not-exist' }, imagePullPolicy: 'IfNotPresent' } } }, /airlock-test:does-not-exist.*\[(IMAGE_NOT_FOUND|IMAGE_PULL_FAILED)\]/],
    // The image is present locally, so only a pull can fail here: the code proves Always pulled
    // (no registry is reachable on the test machine: IMAGE_PULL_FAILED; where Docker Hub is
    // reachable it answers "pull access denied" for this local-only name: IMAGE_NOT_FOUND).
    ['image present, pull policy Always (the pull fails)', { docker: { execution: { imagePullPolicy: 'Always' } } }, /airlock-test:busybox.*\[(IMAGE_PULL_FAILED|IMAGE_NOT_FOUND)\]/],
    ['container start failure (unknown user)', { docker: { execution: { container: { user: 'nosuchuser' } } } }, /\[CONTAINER_START_FAILED\]/],
  ];
  for (const [name, overrides, expected] of cases) {
    for (const mode of ['connection', 'session'] as const) {
      it(`${name} (${mode} mode)`, async () => {
        gw = await keyGateway(fx, { ...overrides, docker: { ...(overrides.docker as object), execution: { ...((overrides.docker as { execution?: object }).execution ?? {}), mode } } });
        const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo should-not-run' });
        assert.equal(r.code, 255, r.stderr);
        assert.equal(r.stdout.length, 0);
        const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('airlock:'));
        assert.equal(lines.length, 1, `exactly one airlock line, got: ${r.stderr}`);
        assert.match(lines[0] ?? '', expected);
        assert.doesNotMatch(r.stderr, /at .*\.ts:\d+|\/var\/run|nonexistent/, 'no stack traces or internal addresses');
        await gw.waitForIdle();
        assert.deepEqual(await gw.containers(), []);
      });
    }
  }
});
