/** Drives the real OpenSSH client against a test gateway. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
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

/**
 * sftp's and scp's options for the gateway: the same list as ssh's, with `-P` for the port and
 * no destination (sftp takes it last, scp inside its `user@host:path` arguments).
 */
export function fileClientArgs(gw: TestGateway, opts: Omit<SshOptions, 'command' | 'input'>): string[] {
  const args = sshArgs(gw, opts);
  args.pop(); // the destination
  args[0] = '-P';
  return args;
}

/** `user@127.0.0.1:path` for scp. */
export function remotePath(user: string, path: string): string {
  return `${user}@127.0.0.1:${path}`;
}

async function runClient(program: string, args: readonly string[], timeoutMs = 120_000): Promise<SshResult> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout: Buffer.concat(out), stderr: err };
}

/**
 * Runs the real `sftp -b` with these batch lines (a failing line ends the batch with exit
 * status 1, unless it starts with "-"). The batch file goes into the gateway's temp dir.
 */
export async function sftpBatch(gw: TestGateway, opts: Omit<SshOptions, 'command' | 'input'>, lines: readonly string[]): Promise<SshResult> {
  const batch = join(gw.dir, `sftp-batch-${Math.random().toString(16).slice(2)}`);
  await writeFile(batch, lines.join('\n') + '\n');
  return runClient('sftp', [...fileClientArgs(gw, opts), '-b', batch, `${opts.user}@127.0.0.1`], opts.timeoutMs);
}

/** Runs the real `scp` (SFTP protocol, OpenSSH ≥ 9) with `args` after the gateway options. */
export function scp(gw: TestGateway, opts: Omit<SshOptions, 'command' | 'input'>, args: readonly string[]): Promise<SshResult> {
  return runClient('scp', [...fileClientArgs(gw, opts), ...args], opts.timeoutMs);
}

export interface SshMaster {
  /** Add to ssh/sftp/scp `args` to go through the master's connection (hence its container). */
  readonly args: readonly string[];
  close(): Promise<void>;
}

/**
 * One SSH connection shared by later ssh/sftp/scp runs (OpenSSH ControlMaster): in connection
 * mode they all reach the same container. `-f` returns once the master is authenticated and
 * its control socket listens.
 */
export async function sshMaster(gw: TestGateway, opts: Omit<SshOptions, 'command' | 'input' | 'args'>): Promise<SshMaster> {
  const socket = join(gw.dir, `ctl-${Math.random().toString(16).slice(2)}`);
  const started = await ssh(gw, { ...opts, args: ['-M', '-S', socket, '-o', 'ControlPersist=no', '-f', '-N'] });
  if (started.code !== 0) throw new Error(`ssh master did not start (${started.code}): ${started.stderr}`);
  return {
    args: ['-o', `ControlPath=${socket}`],
    async close() {
      await runClient('ssh', ['-S', socket, '-O', 'exit', 'master'], 20_000);
    },
  };
}
