/** Drives the real OpenSSH client against a test gateway. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { tempDir } from './tmp.js';
import { join } from 'node:path';
import type { TestGateway } from './gateway.js';

export interface SshOptions {
  readonly user: string;
  /** Private key file; absent = no public-key auth. */
  readonly identity?: string;
  /** Password given through SSH_ASKPASS (OpenSSH ≥ 8.4 SSH_ASKPASS_REQUIRE=force). */
  readonly password?: string;
  /**
   * Keyboard-interactive (and password) prompts answered through SSH_ASKPASS: the first entry
   * whose key occurs in the prompt gives the answer; an unmatched prompt gets an empty answer.
   * Every prompt shown is collected in `SshResult.prompts`.
   */
  readonly answers?: Readonly<Record<string, string>>;
  /** PreferredAuthentications; default publickey with `identity`, else password,keyboard-interactive. */
  readonly preferredAuthentications?: string;
  /** NumberOfPasswordPrompts: password / keyboard-interactive attempts per connection. Default 1. */
  readonly passwordPrompts?: number;
  /** Remote command; absent = shell. */
  readonly command?: string;
  readonly input?: string | Buffer;
  /** Extra ssh arguments (before the destination). */
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
  /** known_hosts file instead of the gateway's pinned one (still StrictHostKeyChecking=yes). */
  readonly knownHosts?: string;
}

export interface SshResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** The prompts ssh passed to SSH_ASKPASS, in order (with `answers` or `password`). */
  readonly prompts: readonly string[];
}

export function sshArgs(gw: TestGateway, opts: SshOptions): string[] {
  const args = [
    '-p', String(gw.port),
    '-o', `UserKnownHostsFile=${opts.knownHosts ?? gw.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'ConnectTimeout=20',
    '-o', `NumberOfPasswordPrompts=${opts.passwordPrompts ?? 1}`,
    '-F', '/dev/null',
  ];
  if (opts.identity) {
    args.push('-o', 'IdentitiesOnly=yes', '-i', opts.identity, '-o', `PreferredAuthentications=${opts.preferredAuthentications ?? 'publickey'}`);
  } else {
    args.push('-o', 'PubkeyAuthentication=no', '-o', `PreferredAuthentications=${opts.preferredAuthentications ?? 'password,keyboard-interactive'}`);
  }
  if (!opts.password && !opts.answers) args.push('-o', 'BatchMode=yes');
  args.push(...(opts.args ?? []));
  args.push(`${opts.user}@127.0.0.1`);
  if (opts.command !== undefined) args.push('--', opts.command);
  return args;
}

/**
 * Writes a known_hosts file that trusts only host certificates signed by `caPublicLine` for the
 * gateway's address (`@cert-authority [127.0.0.1]:PORT <ca key>`), no plain key: no TOFU.
 */
export async function certAuthorityKnownHosts(gw: TestGateway, caPublicLine: string, name = 'known_hosts_ca'): Promise<string> {
  const file = join(gw.dir, name);
  const key = caPublicLine.trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(file, `@cert-authority [127.0.0.1]:${gw.port} ${key}\n`);
  return file;
}

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** An SSH_ASKPASS script answering `opts.password` / `opts.answers`, logging each prompt to `log`. */
async function askpassEnv(gw: TestGateway, opts: SshOptions, log: string): Promise<NodeJS.ProcessEnv> {
  if (!opts.password && !opts.answers) return { ...process.env };
  const script = join(gw.dir, `askpass-${Math.random().toString(16).slice(2)}.sh`);
  // NUL-free record separator: prompts may contain newlines.
  const lines = ['#!/bin/sh', `printf '%s\\036' "$1" >> ${shellQuote(log)}`];
  if (opts.answers) {
    lines.push('case "$1" in');
    for (const [match, answer] of Object.entries(opts.answers)) lines.push(`  *${shellQuote(match)}*) printf '%s\\n' ${shellQuote(answer)} ;;`);
    lines.push(`  *) printf '\\n' ;;`, 'esac');
  } else {
    lines.push(`printf '%s\\n' ${shellQuote(opts.password ?? '')}`);
  }
  await writeFile(script, lines.join('\n') + '\n');
  await chmod(script, 0o700);
  return { ...process.env, SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: process.env.DISPLAY ?? ':0' };
}

async function spawnWithLog(gw: TestGateway, opts: SshOptions): Promise<{ child: ChildProcess; log: string }> {
  const log = join(gw.dir, `prompts-${Math.random().toString(16).slice(2)}.log`);
  const env = await askpassEnv(gw, opts, log);
  return { child: spawn('ssh', sshArgs(gw, opts), { env, stdio: ['pipe', 'pipe', 'pipe'] }), log };
}

/** Starts ssh and returns the child (for tests that kill it or talk to it). */
export async function spawnSsh(gw: TestGateway, opts: SshOptions): Promise<ChildProcess> {
  return (await spawnWithLog(gw, opts)).child;
}

/** Runs ssh to completion and collects its output. */
export async function ssh(gw: TestGateway, opts: SshOptions): Promise<SshResult> {
  const { child, log } = await spawnWithLog(gw, opts);
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
  const prompts = (await readFile(log, 'utf8').catch(() => '')).split('\x1e').filter((p) => p !== '');
  await rm(log, { force: true });
  return { code, signal, stdout: Buffer.concat(out), stderr: err, prompts };
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
  return { code, signal, stdout: Buffer.concat(out), stderr: err, prompts: [] };
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
