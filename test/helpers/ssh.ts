/** Drives the real OpenSSH client against a test gateway. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
import { tempDir } from './tmp.js';
import { join } from 'node:path';
import type { TestGateway } from './gateway.js';

export interface SshOptions {
  readonly user: string;
  /** Private key file; absent = no public-key auth. */
  readonly identity?: string;
  /** Password given through SSH_ASKPASS (OpenSSH ≥ 8.4 SSH_ASKPASS_REQUIRE=force). */
  readonly password?: string;
  /** Remote command; absent = shell. */
  readonly command?: string;
  readonly input?: string | Buffer;
  /** Extra ssh arguments (before the destination). */
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
}

export interface SshResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export function sshArgs(gw: TestGateway, opts: SshOptions): string[] {
  const args = [
    '-p', String(gw.port),
    '-o', `UserKnownHostsFile=${gw.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'ConnectTimeout=20',
    '-o', 'NumberOfPasswordPrompts=1',
    '-F', '/dev/null',
  ];
  if (opts.identity) {
    args.push('-o', 'IdentitiesOnly=yes', '-i', opts.identity, '-o', 'PreferredAuthentications=publickey');
  } else {
    args.push('-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive');
  }
  if (!opts.password) args.push('-o', 'BatchMode=yes');
  args.push(...(opts.args ?? []));
  args.push(`${opts.user}@127.0.0.1`);
  if (opts.command !== undefined) args.push('--', opts.command);
  return args;
}

async function askpassEnv(gw: TestGateway, password: string | undefined): Promise<NodeJS.ProcessEnv> {
  if (!password) return { ...process.env };
  const script = join(gw.dir, `askpass-${Math.random().toString(16).slice(2)}.sh`);
  await writeFile(script, `#!/bin/sh\nprintf '%s\\n' '${password.replace(/'/g, `'\\''`)}'\n`);
  await chmod(script, 0o700);
  return { ...process.env, SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: process.env.DISPLAY ?? ':0' };
}

/** Starts ssh and returns the child (for tests that kill it or talk to it). */
export async function spawnSsh(gw: TestGateway, opts: SshOptions): Promise<ChildProcess> {
  const env = await askpassEnv(gw, opts.password);
  return spawn('ssh', sshArgs(gw, opts), { env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs ssh to completion and collects its output. */
export async function ssh(gw: TestGateway, opts: SshOptions): Promise<SshResult> {
  const child = await spawnSsh(gw, opts);
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.on('error', () => undefined);
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  else child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout: Buffer.concat(out), stderr: err };
}

export interface SshMaster {
  readonly child: ChildProcess;
  /** ssh arguments that put a client on this master's connection. */
  readonly muxArgs: readonly string[];
  /** The master's stderr so far (it runs with -v). */
  stderr(): string;
  /** Resolves with the first match of `pattern` in the master's stderr. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Runs a command in a new session channel on the master's connection. */
  run(command: string, input?: string | Buffer): Promise<SshResult>;
  /** `ssh -O <op>` (forward, cancel, exit) with extra arguments such as `-R spec`. */
  control(op: string, args?: readonly string[]): Promise<SshResult>;
  /** Ends the master politely (`-O exit`) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * An OpenSSH ControlMaster connection (`-M -N -v`) with `opts.args` (forwards such as `-L`/`-R`):
 * one SSH connection, so one workload, that later session channels (`run`) and `-O` requests
 * share. Resolves once the client entered its main loop (authenticated, forwards requested).
 */
export async function startSshMaster(gw: TestGateway, opts: Omit<SshOptions, 'command' | 'input'>): Promise<SshMaster> {
  // A short directory: unix socket paths are limited to ~100 bytes.
  const tmp = await tempDir('al-mux-');
  const control = join(tmp.path, 'c');
  const muxArgs = ['-o', 'ControlMaster=no', '-o', `ControlPath=${control}`];
  const child = await spawnSsh(gw, { ...opts, args: ['-M', '-N', '-v', '-o', `ControlPath=${control}`, ...(opts.args ?? [])] });
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters) w();
  });
  const closed = once(child, 'close');
  const waitForStderr = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = err.match(pattern);
        if (m) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`ssh master stderr did not match ${pattern} within ${timeoutMs} ms:\n${err.slice(-3000)}`));
      }, timeoutMs);
      waiters.add(check);
      void closed.then(() => {
        if (!waiters.has(check)) return;
        waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`ssh master exited before its stderr matched ${pattern}:\n${err.slice(-3000)}`));
      });
      check();
    });
  const base = { user: opts.user, ...(opts.identity ? { identity: opts.identity } : {}) };
  const master: SshMaster = {
    child,
    muxArgs,
    stderr: () => err,
    waitForStderr,
    run: (command, input) => ssh(gw, { ...base, args: muxArgs, command, ...(input !== undefined ? { input } : {}) }),
    control: (op, args = []) => ssh(gw, { ...base, args: [...muxArgs, '-O', op, ...args] }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await master.control('exit');
        await closed;
      }
      await tmp.cleanup();
    },
  };
  try {
    await waitForStderr(/Entering interactive session/);
  } catch (e) {
    child.kill('SIGKILL');
    await closed;
    await tmp.cleanup();
    throw e;
  }
  return master;
}
