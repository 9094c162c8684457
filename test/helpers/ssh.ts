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
  /** known_hosts file instead of the gateway's pinned one (still StrictHostKeyChecking=yes). */
  readonly knownHosts?: string;
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
    '-o', `UserKnownHostsFile=${opts.knownHosts ?? gw.knownHosts}`,
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
