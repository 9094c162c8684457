/**
 * A real redis-server for tests: free port on 127.0.0.1, temp dir, no persistence. `stop()` kills
 * it and removes the dir; `restart()` brings it back on the same port (outage tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { tempDir } from './tmp.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL: an outage, not a shutdown) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'notice'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onLine = (line: string) => {
      output += line + '\n';
      if (line.includes('Ready to accept connections')) resolve();
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
    child.once('error', reject);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  try {
    await ready;
  } finally {
    clearTimeout(timer);
  }
  return child;
}

async function killChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

export async function startRedis(): Promise<TestRedis> {
  const tmp = await tempDir('airlock-redis-');
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port, tmp.path);
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    async kill() {
      await killChild(child, 'SIGKILL');
      child = undefined;
    },
    async restart() {
      await killChild(child, 'SIGKILL');
      child = await launch(port, tmp.path);
    },
    async stop() {
      await killChild(child, 'SIGTERM');
      child = undefined;
      await tmp.cleanup();
    },
  };
}
