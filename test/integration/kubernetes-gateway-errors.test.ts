/**
 * Kubernetes-specific failures through the front door (real `airlock serve`, real OpenSSH client,
 * the FAKE API server): the user sees one line with the code, the operator log has the detail,
 * and no pod is left. BACKEND_UNAVAILABLE is covered by the conformance suite.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import type { GatewayConfig } from '../helpers/gateway.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/fake-kube-apiserver.js';

const NS = 'airlock-errors';

function kubeConfig(fake: FakeKubeApiServer, extra: Record<string, unknown> = {}): GatewayConfig {
  return {
    backend: 'kubernetes',
    kubernetes: {
      connection: { host: fake.url, bearerToken: fake.token, cacert: fake.pki!.caCert },
      pod: { metadata: { namespace: NS }, spec: { containers: [{ name: 'shell', image: 'busybox:1.36' }] } },
      ...extra,
    },
  };
}

describe('Kubernetes failures as the SSH user sees them', () => {
  let fx: KeyFixture;
  let fake: FakeKubeApiServer;

  before(async () => {
    fx = await keyFixture();
    fake = await startFakeKubeApiServer({
      namespaces: [NS],
      images: { 'ghcr.io/acme/missing:1': { pull: 'not-found' } },
      authorize: (a) => !(a.verb === 'create' && a.resource === 'pods' && a.namespace === NS && forbidCreate),
    });
  });
  let forbidCreate = false;

  after(async () => {
    assert.deepEqual(fake.pods(NS), [], 'no pod left behind');
    await fake.close();
    await fx.cleanup();
  });

  const cases: Array<{ name: string; config: () => GatewayConfig; setup?: () => void; code: string; line: RegExp; log: RegExp }> = [
    {
      name: 'a missing image',
      config: () => kubeConfig(fake, { pod: { metadata: { namespace: NS }, spec: { containers: [{ name: 'shell', image: 'ghcr.io/acme/missing:1' }] } } }),
      code: 'IMAGE_NOT_FOUND',
      line: /^airlock: the container image "ghcr\.io\/acme\/missing:1" does not exist \[IMAGE_NOT_FOUND\]$/,
      log: /ErrImagePull/,
    },
    {
      name: 'no node fits the pod',
      config: () => kubeConfig(fake, { timeouts: { podStart: '2s' } }),
      setup: () => fake.setUnschedulable('0/3 nodes are available: 3 Insufficient memory.'),
      code: 'POD_UNSCHEDULABLE',
      line: /^airlock: no cluster node can run the container right now; try again later \[POD_UNSCHEDULABLE\]$/,
      log: /Insufficient memory/,
    },
    {
      name: 'the Role lacks pods/create',
      config: () => kubeConfig(fake),
      setup: () => {
        forbidCreate = true;
      },
      code: 'BACKEND_FORBIDDEN',
      line: /^airlock: the gateway is not allowed to start containers; tell the operator \[BACKEND_FORBIDDEN\]$/,
      log: /cannot create resource "pods"/,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: one line with ${c.code}, exit 255, detail in the log`, async () => {
      fake.setUnschedulable(undefined);
      forbidCreate = false;
      c.setup?.();
      const gw = await keyGateway(fx, c.config());
      try {
        const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo should-not-run' });
        assert.equal(r.code, 255, r.stderr);
        assert.equal(r.stdout.length, 0);
        const lines = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('airlock:'));
        assert.equal(lines.length, 1, r.stderr);
          assert.match(lines[0]!, c.line);
        const logged = await gw.waitForLog((l) => l['code'] === c.code);
        assert.match(String((logged['err'] as { message?: unknown } | undefined)?.message), c.log);
        await gw.waitForIdle();
        await Promise.all(fake.pods(NS).map((p) => fake.podGone(NS, String((p['metadata'] as Record<string, unknown>)['name']))));
        assert.deepEqual(fake.pods(NS), []);
      } finally {
        await gw.stop();
      }
    });
  }
});
