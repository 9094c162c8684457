/**
 * Runs the real `airlock serve` as a child process (the front door) on 127.0.0.1 port 0 with a
 * YAML config written from an object, and exposes its parsed JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { tempDir } from './tmp.js';
import { assertNoLeakedContainers, managedContainers } from './docker.js';

/** Every gateway this test process started, for the leak check at the end of a file. */
const startedGatewayIds = new Set<string>();

/** Fails when any gateway started by this test process left a container behind. */
export async function assertNoGatewayLeaks(): Promise<void> {
  for (const gatewayId of startedGatewayIds) await assertNoLeakedContainers([], { gatewayId });
}

/**
 * The per-test leak check: waits (on the gateway's own log lines) until every connection it
 * accepted has closed and its workload is removed, then fails when a container of THIS gateway
 * remains (other suites share the Docker engine, so only this gateway's label is counted).
 */
export async function assertGatewayIdle(gw: TestGateway): Promise<void> {
  await gw.waitForIdle();
  assert.deepEqual(await gw.containers(), [], 'no container may outlive its connection');
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface TestGateway {
  readonly port: number;
  /** The gateway's id (label airlock.gateway on every container it starts). */
  readonly gatewayId: string;
  /** Ids of this gateway's containers (other suites may share the Docker engine). */
  containers(): Promise<string[]>;
  readonly dir: string;
  /** known_hosts file pinning this gateway's host keys (generated, or `<file>.pub` of ssh.hostkeys). */
  readonly knownHosts: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** Raw stdout+stderr text of the gateway so far. */
  output(): string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves once every accepted connection has been closed (and its workload removed). */
  waitForIdle(timeoutMs?: number): Promise<void>;
  /** Sends a signal and waits for the process to exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');

export interface GatewayConfig {
  [key: string]: unknown;
}

/** Deep-merges `overrides` over a minimal test config (docker backend, test image, port 0). */
export function testConfig(dir: string, overrides: GatewayConfig = {}): GatewayConfig {
  const base: GatewayConfig = {
    ssh: { listen: '127.0.0.1:0', generatedHostKeyPath: join(dir, 'hostkey') },
    docker: { execution: { container: { image: 'airlock-test:busybox' }, imagePullPolicy: 'Never' } },
    log: { level: 'debug' },
  };
  return deepMerge(base, overrides);
}

export function deepMerge(a: GatewayConfig, b: GatewayConfig): GatewayConfig {
  const out: GatewayConfig = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as GatewayConfig, v as GatewayConfig)
        : v;
  }
  return out;
}

export interface StartGatewayOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** How `airlock serve` finds the config file: `--config <file>` (default) or `$AIRLOCK_CONFIG` alone. */
  readonly configFrom?: 'flag' | 'env';
}

export async function startGateway(overrides: GatewayConfig = {}, options: StartGatewayOptions = {}): Promise<TestGateway> {
  const tmp = await tempDir('airlock-gw-');
  const dir = tmp.path;
  const configPath = join(dir, 'config.yaml');
  const config = testConfig(dir, overrides);
  await writeFile(configPath, stringify(config));
  const sshConfig = config.ssh as { generatedHostKeyPath?: string; hostkeys?: string[] };
  // Configured host key files are pinned through their `.pub` next to them (as ssh-keygen writes).
  const pinnedKeys = sshConfig.hostkeys?.length ? sshConfig.hostkeys.map((k) => `${k}.pub`) : [`${String(sshConfig.generatedHostKeyPath)}.pub`];
  const viaEnv = options.configFrom === 'env';
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...(viaEnv ? [] : ['--config', configPath])], {
    cwd: ROOT,
    env: { ...process.env, ...options.env, ...(viaEnv ? { AIRLOCK_CONFIG: configPath } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let raw = '';
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  const onLine = (line: string) => {
    raw += line + '\n';
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    logs.push(parsed);
    for (const w of waiters) {
      if (w.predicate(parsed)) {
        waiters.delete(w);
        w.resolve(parsed);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', (l) => (raw += l + '\n'));
  const exited = once(child, 'exit').then(([code]) => code as number | null);

  const waitForLog = (predicate: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolvePromise, reject) => {
      const entry = {
        predicate,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolvePromise(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(entry);
        reject(new Error(`gateway log line not seen within ${timeoutMs} ms; output:\n${raw.slice(-4000)}`));
      }, timeoutMs);
      waiters.add(entry);
      void exited.then((code) => {
        if (waiters.has(entry)) {
          waiters.delete(entry);
          clearTimeout(timer);
          reject(new Error(`gateway exited (${code}) before the log line; output:\n${raw.slice(-4000)}`));
        }
      });
    });
  };

  let gatewayId: string;
  let port: number;
  let knownHosts: string;
  try {
    const starting = await waitForLog((l) => l.msg === 'starting airlock');
    gatewayId = String(starting.gatewayId);
    startedGatewayIds.add(gatewayId);
    const listening = await waitForLog((l) => l.msg === 'listening');
    port = Number(listening.port);
    const lines: string[] = [];
    for (const file of pinnedKeys) {
      const pub = (await readFile(file, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
      lines.push(`[127.0.0.1]:${port} ${pub}\n`);
    }
    knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, lines.join(''));
  } catch (err) {
    // A gateway that failed to come up must not outlive the test (it would keep the runner alive).
    child.kill('SIGKILL');
    await exited;
    await tmp.cleanup();
    throw err;
  }

  return {
    port,
    gatewayId,
    containers: () => managedContainers({ gatewayId }),
    dir,
    knownHosts,
    child,
    logs,
    output: () => raw,
    waitForLog,
    async waitForIdle(timeoutMs) {
      const count = (msg: string) => logs.filter((l) => l.msg === msg).length;
      await waitForLog(() => count('connection closed') >= count('connection accepted'), timeoutMs);
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      await tmp.cleanup();
      return code;
    },
  };
}
