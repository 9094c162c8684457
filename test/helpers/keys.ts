import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const run = promisify(execFile);

export interface TestKey {
  /** Private key file for `ssh -i`. */
  readonly path: string;
  /** "ssh-ed25519 AAAA... comment" */
  readonly publicLine: string;
  /** "SHA256:..." */
  readonly fingerprint: string;
}

/** Generates a key pair with the real ssh-keygen. */
export async function makeKey(dir: string, name: string, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519'): Promise<TestKey> {
  const path = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', path]);
  const publicLine = (await readFile(`${path}.pub`, 'utf8')).trim();
  const { stdout } = await run('ssh-keygen', ['-l', '-f', `${path}.pub`]);
  const fingerprint = stdout.split(' ')[1] ?? '';
  return { path, publicLine, fingerprint };
}
