/**
 * Podman for tests: its Docker-compatible API service on the socket ContainerSSH users point
 * `docker.connection.host` at, the busybox test image in Podman's own store, and container
 * listings. Idempotent: a service that already answers on the socket is reused, like dockerd.
 *
 * In this VM the container runtime cannot raise rlimits above the gateway's own (hard nofile is
 * 20000, Podman asks for 1048576), so every container fails with "error setting rlimits". The
 * service therefore runs with its own containers.conf (CONTAINERS_CONF) that sets explicit
 * nofile/nproc limits of 1024:1024 — no per-container setting in the gateway config is needed.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { retry } from '../../src/core/retry.js';

const run = promisify(execFile);
const buildScript = resolve(import.meta.dirname, '../../scripts/build-test-image.sh');

export const PODMAN_SOCKET = '/run/podman/podman.sock';
/** The exact form ContainerSSH documents for Podman. */
export const PODMAN_HOST = `unix://${PODMAN_SOCKET}`;
/** Where the service's containers.conf and log live (tmpfs: gone on reboot, like the socket). */
export const PODMAN_STATE_DIR = '/run/airlock-test-podman';

const CONTAINERS_CONF = `# Written by test/helpers/podman.ts for the Podman API service used by the tests.
[containers]
# The runtime cannot raise rlimits above the service's own hard limits in this VM.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
`;

let service: Promise<string> | undefined;
let image: Promise<string> | undefined;

/** Resolves with the socket path once `GET /_ping` answers OK on it. */
function ping(socketPath: string): Promise<void> {
  return new Promise((resolvePing, reject) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      if (res.statusCode === 200) resolvePing();
      else reject(new Error(`podman /_ping answered ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('podman /_ping timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts `podman system service --time=0` on PODMAN_SOCKET unless something already answers
 * there; resolves with the Docker host string (`unix:///run/podman/podman.sock`). The service is
 * detached and outlives the test process (other test files reuse it).
 */
export function ensurePodmanService(): Promise<string> {
  service ??= (async () => {
    const up = await ping(PODMAN_SOCKET).then(
      () => true,
      () => false,
    );
    if (!up) {
      await mkdir(PODMAN_STATE_DIR, { recursive: true });
      await mkdir(dirname(PODMAN_SOCKET), { recursive: true });
      const conf = resolve(PODMAN_STATE_DIR, 'containers.conf');
      await writeFile(conf, CONTAINERS_CONF);
      const logPath = resolve(PODMAN_STATE_DIR, 'service.log');
      const log = await open(logPath, 'w');
      let exited: string | undefined;
      try {
        const child = spawn('podman', ['system', 'service', '--time=0', PODMAN_HOST], {
          detached: true,
          stdio: ['ignore', log.fd, log.fd],
          env: { ...process.env, CONTAINERS_CONF: conf },
        });
        child.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
        child.once('error', (err) => (exited = err.message));
        child.unref();
      } finally {
        await log.close();
      }
      // The service creates the socket a moment after start; there is nothing to await but it.
      const ready = new AbortController();
      try {
        await retry(
          async () => {
            if (exited) ready.abort();
            await ping(PODMAN_SOCKET);
          },
          { deadline: Date.now() + 30_000, initialDelayMs: 50, maxDelayMs: 500, signal: ready.signal },
        );
      } catch (err) {
        const output = await readFile(logPath, 'utf8').catch(() => '');
        throw new Error(`podman system service ${exited ?? 'did not answer on ' + PODMAN_SOCKET}: ${output.trim()}`, { cause: err });
      }
    }
    return PODMAN_HOST;
  })();
  service.catch(() => (service = undefined));
  return service;
}

/** Builds `airlock-test:busybox` into Podman's store (once per process); resolves with its tag. */
export function ensurePodmanTestImage(): Promise<string> {
  image ??= run('bash', [buildScript], { env: { ...process.env, ENGINE: 'podman' } }).then(() => 'airlock-test:busybox');
  image.catch(() => (image = undefined));
  return image;
}

/** Ids of Podman containers (running or not) carrying `label` ("name=value"). */
export async function podmanContainers(label: string): Promise<string[]> {
  const { stdout } = await run('podman', ['ps', '-a', '--no-trunc', '--format', '{{.ID}}', '--filter', `label=${label}`]);
  return stdout.split('\n').filter((line) => line !== '').sort();
}
