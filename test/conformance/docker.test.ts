/**
 * The shared behaviour suite against the Docker backend on the real dockerd: both modes, and
 * connection mode with a warm pool (every login claims a pre-started container and its first
 * program starts through the pool's launcher).
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureTestImage } from '../helpers/docker.js';
import { runBackendConformance } from './backend-suite.js';
import { ID_AND_POOL_FORMAT, workloadsOf } from './pool-workloads.js';

const run = promisify(execFile);

const variants = [
  { name: 'connection mode', mode: 'connection', pool: 0 },
  { name: 'session mode', mode: 'session', pool: 0 },
  { name: 'connection mode, warm pool', mode: 'connection', pool: 2 },
] as const;

for (const { name, mode, pool } of variants) {
  runBackendConformance(`docker (${name})`, async () => {
    await ensureTestImage();
    // A label of this run only: other suites may share the engine.
    const runLabel = randomBytes(6).toString('hex');
    return {
      gatewayOverrides: {
        backend: 'docker',
        docker: { execution: { mode, container: { labels: { 'conformance.run': runLabel } } }, ...(pool > 0 ? { pool: { size: pool } } : {}) },
      },
      listWorkloads: async (gateways) => {
        const { stdout } = await run('docker', ['ps', '-a', '--no-trunc', '--format', ID_AND_POOL_FORMAT.docker, '--filter', `label=conformance.run=${runLabel}`]);
        return workloadsOf(stdout, gateways);
      },
      unavailable: { overrides: { docker: { connection: { host: 'unix:///nonexistent/docker.sock' } } }, code: 'BACKEND_UNAVAILABLE' },
      cleanup: async () => undefined,
    };
  });
}
