/**
 * A real OpenSSH sshd for the SSH proxy backend's tests: its own config, host key, authorized_keys
 * and pid file in a temp dir, listening on a free loopback port. Sessions log in as a dedicated
 * unprivileged user (`airlock-upstream`, created on first use; this needs root, as sshd does),
 * so "what is still running upstream" is simply that user's processes.
 *
 *   const sshd = await startSshd();
 *   ... sshd.port, sshd.clientKey.path, sshd.hostKeyFingerprint, await sshd.userProcesses() ...
 *   await sshd.stop();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeKey, type TestKey } from './keys.js';
import { tempDir } from './tmp.js';

const run = promisify(execFile);

export const UPSTREAM_USER = 'airlock-upstream';
const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export interface TestSshd {
  readonly port: number;
  readonly user: string;
  /** The key the gateway logs in with (listed in authorized_keys). */
  readonly clientKey: TestKey;
  /** The user's password, valid until stop(). */
  readonly password: string;
  /** "SHA256:..." of the server's host key. */
  readonly hostKeyFingerprint: string;
  /** A directory the user owns, removed with the temp dir. */
  readonly scratchDir: string;
  readonly dir: string;
  /** sshd's stderr (LogLevel DEBUG1) so far. */
  log(): string;
  /** Resolves with the log once `pattern` appears in it. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** PIDs of the upstream user's live processes (zombies excluded): per-connection sshd children and their programs. */
  userProcesses(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Lines appended to sshd_config. */
  readonly extraConfig?: string;
}

/** Creates the unprivileged upstream user once (idempotent). */
async function ensureUser(): Promise<{ uid: number; gid: number }> {
  const lookup = () => run('id', ['-u', UPSTREAM_USER]).then(async (r) => ({ uid: Number(r.stdout.trim()), gid: Number((await run('id', ['-g', UPSTREAM_USER])).stdout.trim()) }));
  try {
    return await lookup();
  } catch {
    await run('useradd', ['--create-home', '--shell', '/bin/sh', '--comment', 'Airlock sshproxy tests', UPSTREAM_USER]).catch((err: unknown) => {
      // A parallel test process may have created it in the meantime.
      if (!String((err as { stderr?: string }).stderr).includes('already exists')) throw err;
    });
    return lookup();
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  const { uid, gid } = await ensureUser();
  // sshd's privilege separation directory; normally made by the service unit.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const tmp = await tempDir('airlock-sshd-');
  const dir = tmp.path;
  // The user's half of sshd reads authorized_keys as the user.
  await chmod(dir, 0o755);
  const hostKey = await makeKey(dir, 'ssh_host_ed25519_key');
  const clientKey = await makeKey(dir, 'gateway_key');
  const authorizedKeys = join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, `${clientKey.publicLine}\n`, { mode: 0o644 });
  const scratchDir = join(dir, 'scratch');
  await mkdir(scratchDir);
  await chown(scratchDir, uid, gid);
  const password = randomBytes(12).toString('hex');
  await setPassword(`${UPSTREAM_USER}:${password}`);

  let child: ChildProcess | undefined;
  let output = '';
  let port = 0;
  const waiters = new Set<() => void>();
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const configPath = join(dir, 'sshd_config');
    await writeFile(
      configPath,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey.path}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin no',
        `AllowUsers ${UPSTREAM_USER}`,
        // The gateway forwards env requests; sshd drops what AcceptEnv does not list.
        'AcceptEnv *',
        `Subsystem sftp ${SFTP_SERVER}`,
        'PrintMotd no',
        'PrintLastLog no',
        'LogLevel DEBUG1',
        'MaxStartups 100',
        'MaxSessions 20',
        options.extraConfig ?? '',
        '',
      ].join('\n'),
    );
    output = '';
    child = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => {
      output += d.toString();
      for (const w of waiters) w();
    });
    const listening = await new Promise<boolean>((resolve) => {
      const check = () => {
        if (output.includes(`Server listening on 127.0.0.1 port ${port}`)) done(true);
      };
      const done = (ok: boolean) => {
        waiters.delete(check);
        child!.off('exit', onExit);
        resolve(ok);
      };
      const onExit = () => done(false);
      waiters.add(check);
      child!.once('exit', onExit);
      check();
    });
    if (listening) break;
    // The free port was taken in the meantime: try another one.
    if (attempt >= 5 || !/Address already in use/.test(output)) {
      await tmp.cleanup();
      throw new Error(`sshd did not start:\n${output}`);
    }
  }
  const sshd = child;
  const exited = once(sshd, 'exit');

  return {
    port,
    user: UPSTREAM_USER,
    clientKey,
    password,
    hostKeyFingerprint: hostKey.fingerprint,
    scratchDir,
    dir,
    log: () => output,
    waitForLog(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(output)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(output);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`sshd log did not show ${pattern} within ${timeoutMs} ms:\n${output.slice(-3000)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async userProcesses() {
      const { stdout } = await run('ps', ['-u', UPSTREAM_USER, '-o', 'pid=,stat=']).catch((err: { code?: number }) => {
        if (err.code === 1) return { stdout: '' }; // ps: no such process
        throw err;
      });
      // A zombie has already ended (sshd reaps its session children a moment later).
      return stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter(([pid, stat]) => pid && stat && !stat.startsWith('Z'))
        .map(([pid]) => pid as string);
    },
    async stop() {
      if (sshd.exitCode === null && sshd.signalCode === null) sshd.kill('SIGTERM');
      await exited;
      // The password only lives as long as this server.
      await run('usermod', ['--lock', UPSTREAM_USER]).catch(() => undefined);
      await tmp.cleanup();
    },
  };
}

async function setPassword(line: string): Promise<void> {
  const child = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.end(`${line}\n`);
  const [code] = (await once(child, 'exit')) as [number | null];
  // chpasswd replaces the whole hash, which also undoes an earlier --lock.
  if (code !== 0) throw new Error(`chpasswd failed: ${err}`);
}
