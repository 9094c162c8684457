/**
 * The shared behaviour suite against the Kubernetes backend, in both modes. No real API server
 * can run on this machine, so the gateway talks — through the unchanged @kubernetes/client-node,
 * over HTTPS with a bearer token and a CA — to the protocol-faithful FAKE API server
 * (test/fakes/fake-kube-apiserver.ts), whose pods run as local processes in temp directories.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { startFakeKubeApiServer } from '../fakes/fake-kube-apiserver.js';
import type { Json } from '../fakes/fake-kube-status.js';
import { tempDir } from '../helpers/tmp.js';
import { runBackendConformance } from './backend-suite.js';

const NS = 'airlock-conformance';

for (const mode of ['connection', 'session'] as const) {
  runBackendConformance(`kubernetes via the fake API server (${mode} mode)`, async () => {
    const fake = await startFakeKubeApiServer({ namespaces: [NS] });
    // The fake's "containers" share the host's file system: webhook files go to a scratch dir
    // the pods' user (uid 1000) may write to, removed at the end.
    const scratch = await tempDir('airlock-kube-conformance-');
    await chmod(scratch.path, 0o1777);
    const runLabel = randomBytes(6).toString('hex');
    const ours = (pod: Json) => ((pod['metadata'] as Json)['labels'] as Record<string, string> | undefined)?.['conformance.run'] === runLabel;
    const name = (pod: Json) => String((pod['metadata'] as Json)['name']);
    return {
      gatewayOverrides: {
        backend: 'kubernetes',
        kubernetes: {
          connection: { host: fake.url, bearerToken: fake.token, cacert: fake.pki!.caCert },
          pod: {
            metadata: { namespace: NS, labels: { 'conformance.run': runLabel } },
            spec: { containers: [{ name: 'shell', image: 'busybox:1.36' }] },
            mode,
          },
          timeouts: { podStart: '20s', signal: '5s' },
        },
      },
      listWorkloads: async () => {
        // A deleted pod is Terminating until the kubelet has stopped it (here: milliseconds, the
        // idle PID 1 exits on TERM); give those their grace period, then count what is left.
        const terminating = fake.pods(NS).filter((p) => ours(p) && (p['metadata'] as Json)['deletionTimestamp']);
        await Promise.race([Promise.all(terminating.map((p) => fake.podGone(NS, name(p)))), new Promise((r) => setTimeout(r, 6000).unref())]);
        return fake.pods(NS).filter(ours).map(name);
      },
      unavailable: { overrides: { kubernetes: { connection: { host: 'https://127.0.0.1:1' } } }, code: 'BACKEND_UNAVAILABLE' },
      scratchDir: scratch.path,
      cleanup: async () => {
        try {
          assert.equal(await fake.liveProcesses(), 0, 'no process of any pod may survive it');
          assert.equal(fake.openExecs(), 0, 'no exec stream may stay open');
        } finally {
          await fake.close();
          await scratch.cleanup();
        }
      },
    };
  });
}
