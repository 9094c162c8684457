/** The shared behaviour suite against the SSH proxy backend, forwarding to a real OpenSSH sshd. */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { startSshd } from '../helpers/sshd.js';
import { runBackendConformance } from './backend-suite.js';

/** A loopback port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

runBackendConformance('sshproxy (OpenSSH sshd upstream)', async () => {
  const sshd = await startSshd();
  return {
    gatewayOverrides: {
      backend: 'sshproxy',
      sshproxy: {
        server: '127.0.0.1',
        port: sshd.port,
        username: sshd.user,
        privateKey: sshd.clientKey.path,
        allowedHostKeyFingerprints: [sshd.hostKeyFingerprint],
      },
    },
    // Every upstream connection runs as this dedicated user: its processes are the workloads.
    listWorkloads: () => sshd.userProcesses(),
    unavailable: { overrides: { sshproxy: { port: await closedPort() } }, code: 'BACKEND_UNAVAILABLE' },
    scratchDir: sshd.scratchDir,
    cleanup: () => sshd.stop(),
  };
});
