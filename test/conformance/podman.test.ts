/**
 * The shared behaviour suite against a real Podman API service, through the same Docker backend:
 * first in the form ContainerSSH documents (`backend: docker` + Podman's socket, unchanged), then
 * with the `backend: podman` alias.
 */
import { randomBytes } from 'node:crypto';
import { ensurePodmanService, ensurePodmanTestImage, podmanContainers, PODMAN_HOST } from '../helpers/podman.js';
import { runBackendConformance } from './backend-suite.js';
import type { GatewayConfig } from '../helpers/gateway.js';

const variants: Array<[string, (mode: string, labels: Record<string, string>) => GatewayConfig]> = [
  [
    'backend: docker + Podman socket',
    (mode, labels) => ({ backend: 'docker', docker: { connection: { host: PODMAN_HOST }, execution: { mode, container: { labels } } } }),
  ],
  ['backend: podman', (mode, labels) => ({ backend: 'podman', docker: { execution: { mode, container: { labels } } } })],
];

for (const [variant, overrides] of variants) {
  for (const mode of ['connection', 'session'] as const) {
    runBackendConformance(`podman (${variant}, ${mode} mode)`, async () => {
      await ensurePodmanService();
      await ensurePodmanTestImage();
      const runLabel = randomBytes(6).toString('hex');
      return {
        gatewayOverrides: overrides(mode, { 'conformance.run': runLabel }),
        listWorkloads: () => podmanContainers(`conformance.run=${runLabel}`),
        unavailable: { overrides: { docker: { connection: { host: 'unix:///nonexistent/podman.sock' } } }, code: 'BACKEND_UNAVAILABLE' },
        cleanup: async () => undefined,
      };
    });
  }
}
