import { existsSync, readFileSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AirlockError } from '../core/errors.js';

/**
 * The spool: one directory per recording (`<spool>/<connectionId>/`), sealed when it holds
 * manifest.json. It is the durable upload queue. One gateway per spool: a lock file holds the
 * owner's PID, and a stale lock (its process is gone, e.g. after kill -9) is taken over.
 */
const LOCK_FILE = '.lock';

/** Below this much free space a new recording is refused (or allowed unrecorded). */
export const MIN_SPOOL_FREE_BYTES = 256 * 1024;

export async function openSpool(dir: string): Promise<{ release(): void }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, LOCK_FILE);
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new AirlockError('AUDIT_SPOOL_IN_USE', `the audit spool ${dir} is in use by process ${pid}; give each gateway its own spool directory`, {
        details: { spool: dir, pid },
      });
    }
  }
  writeFileSync(lock, `${process.pid}\n`);
  return {
    release() {
      try {
        if (readFileSync(lock, 'utf8').trim() === String(process.pid)) unlinkSync(lock);
      } catch {
        // Already gone.
      }
    },
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Free bytes for unprivileged writers on the spool's file system. */
export function spoolFreeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Recording directories in the spool (dot entries are the lock and temp files). */
export async function listSpool(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}
