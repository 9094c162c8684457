/**
 * Runs the real `ssh` client inside a pseudo-terminal (util-linux `script`), so it behaves as for
 * a person at a terminal: it asks for a pty on its own (RequestTTY auto) and, when the gateway
 * refuses one, warns and goes on without it (with -t/-tt OpenSSH would quit instead).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestGateway } from './gateway.js';
import { sshArgs, type SshOptions } from './ssh.js';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Everything the terminal showed (the pty merges stdout and stderr) and the exit code. */
export async function sshInTerminal(gw: TestGateway, opts: SshOptions, input: string): Promise<{ code: number | null; output: string }> {
  const command = ['ssh', ...sshArgs(gw, opts)].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.write(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  child.stdin.destroy();
  return { code, output };
}
