/** Runs the real `airlock` CLI (src/cli/main.ts through tsx) as a child process. */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function airlock(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--no-warnings', MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The command line that runs the CLI (for tests that spawn it themselves, e.g. to time its output). */
export function airlockCommand(args: readonly string[]): { readonly file: string; readonly args: string[]; readonly cwd: string } {
  return { file: process.execPath, args: ['--import', 'tsx', '--no-warnings', MAIN, ...args], cwd: ROOT };
}
