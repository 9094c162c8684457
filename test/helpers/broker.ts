/**
 * Runs the real `airlock broker` (the provisioning API alone) as a child process with a YAML
 * config written from an object, and resolves once its API listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');

export interface TestBroker {
  /** Base URL of the provisioning API, e.g. http://127.0.0.1:41234 */
  readonly api: string;
  readonly child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function startBroker(dir: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<TestBroker> {
  const configPath = join(dir, 'broker.yaml');
  await writeFile(configPath, stringify(config));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'broker', '--config', configPath], {
    cwd: ROOT,
    env: { ...process.env, AIRLOCK_PROVISION_KEYS: '', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const port = await new Promise<number>((resolvePort, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += line + '\n';
      try {
        const l = JSON.parse(line) as { msg?: string; port?: number };
        if (l.msg === 'broker API listening' && typeof l.port === 'number') resolvePort(l.port);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`airlock broker exited (${code}):\n${output}`)));
  });
  return {
    api: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
