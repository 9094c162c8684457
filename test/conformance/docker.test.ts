/** The shared behaviour suite against the Docker backend, in both modes, on the real dockerd. */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureTestImage } from '../helpers/docker.js';
import { runBackendConformance } from './backend-suite.js';

const run = promisify(execFile);

for (const mode of ['connection', 'session'] as const) {
  runBackendConformance(`docker (${mode} mode)`, async () => {
    await ensureTestImage();
    // A label of this run only: other suites may share the engine.
    const runLabel = randomBytes(6).toString('hex');
    return {
      gatewayOverrides: {
        backend: 'docker',
        docker: { execution: { mode, container: { labels: { 'conformance.run': runLabel } } } },
      },
      listWorkloads: async () => {
        const { stdout } = await run('docker', ['ps', '-a', '--no-trunc', '--format', '{{.ID}}', '--filter', `label=conformance.run=${runLabel}`]);
        return stdout.split('\n').filter((line) => line !== '');
      },
      unavailable: { overrides: { docker: { connection: { host: 'unix:///nonexistent/docker.sock' } } }, code: 'BACKEND_UNAVAILABLE' },
      cleanup: async () => undefined,
    };
  });
}
