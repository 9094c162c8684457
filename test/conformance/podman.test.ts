/**
 * The shared behaviour suite against a real Podman API service (test/helpers/podman.ts starts it),
 * through the same Docker backend: in the form ContainerSSH documents (`backend: docker` + Podman's
 * socket, unchanged) in both modes, and with the `backend: podman` alias, which only changes how
 * the host is resolved (so one mode is enough) — that one with a warm pool, so pool containers
 * and their pre-started launchers are checked on Podman too.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensurePodmanService, ensurePodmanTestImage, PODMAN_HOST } from '../helpers/podman.js';
import type { GatewayConfig } from '../helpers/gateway.js';
import { runBackendConformance } from './backend-suite.js';
import { ID_AND_POOL_FORMAT, workloadsOf } from './pool-workloads.js';

const run = promisify(execFile);

type Variant = readonly [name: string, overrides: (labels: Record<string, string>) => GatewayConfig];

const variants: Variant[] = [
  ...(['connection', 'session'] as const).map(
    (mode): Variant => [
      `backend: docker + Podman socket, ${mode} mode`,
      (labels) => ({ backend: 'docker', docker: { connection: { host: PODMAN_HOST }, execution: { mode, container: { labels } } } }),
    ],
  ),
  ['backend: podman, connection mode, warm pool', (labels) => ({ backend: 'podman', docker: { pool: { size: 2 }, execution: { mode: 'connection', container: { labels } } } })],
];

for (const [name, overrides] of variants) {
  runBackendConformance(`podman (${name})`, async () => {
    await ensurePodmanService();
    await ensurePodmanTestImage();
    // A label of this run only: other suites may share the engine.
    const runLabel = randomBytes(6).toString('hex');
    return {
      gatewayOverrides: overrides({ 'conformance.run': runLabel }),
      listWorkloads: async (gateways) => {
        const { stdout } = await run('podman', ['ps', '-a', '--no-trunc', '--format', ID_AND_POOL_FORMAT.podman, '--filter', `label=conformance.run=${runLabel}`]);
        return workloadsOf(stdout, gateways);
      },
      unavailable: { overrides: { docker: { connection: { host: 'unix:///nonexistent/podman.sock' } } }, code: 'BACKEND_UNAVAILABLE' },
      cleanup: async () => undefined,
    };
  });
}
