/**
 * The baseline a user would otherwise build: OpenSSH's sshd on a loopback port whose
 * ForceCommand runs `docker run --rm -i [-t] --log-driver none IMAGE` per session.
 *
 * Kept fair on purpose (see bench/README.md): the login user is a plain user whose shell is
 * /bin/sh (root's shell start-up files add ~100 ms per login on these machines), and the client
 * uses the same key exchange the gateway negotiates. Everything it creates — the user, the
 * config directory, the sshd process — is removed by `stop()`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { tempDir } from '../../test/helpers/tmp.js';
import type { TestKey } from '../../test/helpers/keys.js';
import { clientArgs, type SshTarget } from './ssh-target.js';
import { BENCH_LABEL } from './measure.js';

const run = promisify(execFile);

export interface BaselineSshd extends SshTarget {
  readonly port: number;
  readonly user: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
const PRIVSEP_DIR = '/run/sshd';

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exists = (path: string) => access(path).then(() => true, () => false);

export async function startBaselineSshd(image: string, key: TestKey): Promise<BaselineSshd> {
  if (process.getuid?.() !== 0) throw new Error('the baseline needs root (it runs sshd and creates a user)');
  if (!(await exists(SSHD))) throw new Error(`${SSHD} not found: apt-get install -y openssh-server`);
  const tmp = await tempDir('airlock-bench-sshd-');
  // The directory must be traversable by the login user (its home and the wrapper live here).
  await chmod(tmp.path, 0o755);
  const user = `alb${randomBytes(3).toString('hex')}`;
  const home = join(tmp.path, 'home');
  const cleanups: Array<() => Promise<unknown>> = [() => tmp.cleanup()];
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    let createdPrivsep = false;
    if (!(await exists(PRIVSEP_DIR))) {
      await mkdir(PRIVSEP_DIR, { mode: 0o755 });
      createdPrivsep = true;
    }
    if (createdPrivsep) cleanups.push(() => rm(PRIVSEP_DIR, { recursive: true, force: true }));
    // "*" = no password but not locked: with UsePAM no, sshd refuses pubkey logins to "!"-locked accounts.
    await run('useradd', ['-M', '-d', home, '-s', '/bin/sh', '-G', 'docker', '-p', '*', user]);
    cleanups.push(() => run('userdel', ['-f', user]));
    await mkdir(home, { mode: 0o700 });
    const { stdout: ids } = await run('id', ['-u', user]);
    const { stdout: gids } = await run('id', ['-g', user]);
    await chown(home, Number(ids.trim()), Number(gids.trim()));

    const hostKey = join(tmp.path, 'ssh_host_ed25519_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    const authorized = join(tmp.path, 'authorized_keys');
    await writeFile(authorized, `${key.publicLine}\n`, { mode: 0o644 });
    const wrapper = join(tmp.path, 'docker-session.sh');
    await writeFile(
      wrapper,
      [
        '#!/bin/sh',
        '# ForceCommand: one throw-away container per SSH session (the label only lets the bench',
        '# find leftovers of an interrupted run).',
        'tty=',
        '[ -t 0 ] && tty=-t',
        'if [ -n "$SSH_ORIGINAL_COMMAND" ]; then',
        `  exec docker run --rm -i $tty --log-driver none --label ${BENCH_LABEL}=${process.pid} ${image} /bin/sh -c "$SSH_ORIGINAL_COMMAND"`,
        'fi',
        `exec docker run --rm -i $tty --log-driver none --label ${BENCH_LABEL}=${process.pid} ${image} /bin/sh -l`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const port = await freePort();
    const config = join(tmp.path, 'sshd_config');
    await writeFile(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(tmp.path, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        `AllowUsers ${user}`,
        `ForceCommand ${wrapper}`,
        // The concurrency run opens 100 connections at once; the default (10:30:100) drops some.
        'MaxStartups 300',
        'PrintMotd no',
        'PrintLastLog no',
        'UseDNS no',
        'X11Forwarding no',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    let stderr = '';
    child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitForPort(port, child, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${stderr}`);
    });
    const knownHosts = join(tmp.path, 'known_hosts');
    const pub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    await writeFile(knownHosts, `[127.0.0.1]:${port} ${pub}\n`);
    const pid = child.pid!;
    return {
      name: 'baseline',
      port,
      user,
      pid,
      args({ tty = false, command } = {}) {
        return [
          ...clientArgs(port, knownHosts, key.path),
          ...(tty ? ['-tt'] : []),
          `${user}@127.0.0.1`,
          ...(command !== undefined ? ['--', command] : []),
        ];
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
