import { posix } from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import type { ConnectionInfo } from '../backend.js';
import { AirlockError } from '../../core/errors.js';

const FILES_LINE = 'files could not be written on the upstream SSH server';

/**
 * Writes the connection's `files` on the upstream server over SFTP, before any program starts
 * (there is no agent upstream, and SFTP is the one file API every OpenSSH server has). Sensitive
 * files get 0600, others 0644 — set explicitly, so an existing file's mode is corrected too.
 * Missing parent directories are created (0755). Paths are taken as given: absolute paths are
 * absolute, relative ones are relative to the upstream user's home directory.
 */
export async function writeUpstreamFiles(client: Client, files: ConnectionInfo['files'], timeoutMs: number): Promise<void> {
  const entries = Object.entries(files);
  if (entries.length === 0) return;
  let sftp: SFTPWrapper | undefined;
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    sftp = await withDeadline(
      new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s)))),
      deadline,
    );
    const made = new Set<string>();
    for (const [path, file] of entries) {
      await withDeadline(mkdirs(sftp, posix.dirname(path), made), deadline);
      await withDeadline(writeOne(sftp, path, file.content, file.sensitive ? 0o600 : 0o644), deadline);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // The path list is operator-facing (no contents); sensitive values never reach the log.
    throw new AirlockError('CONTAINER_FILES_FAILED', `writing files over SFTP failed: ${message}`, {
      cause: err,
      details: { paths: entries.map(([p]) => p) },
      userMessage: FILES_LINE,
    });
  } finally {
    sftp?.end();
  }
}

async function mkdirs(sftp: SFTPWrapper, dir: string, made: Set<string>): Promise<void> {
  if (dir === '/' || dir === '.' || made.has(dir)) return;
  const exists = await new Promise<boolean>((resolve) => sftp.stat(dir, (err) => resolve(!err)));
  if (!exists) {
    await mkdirs(sftp, posix.dirname(dir), made);
    await new Promise<void>((resolve, reject) =>
      sftp.mkdir(dir, { mode: 0o755 }, (err) => {
        // A concurrent creator (another connection writing the same tree) is fine.
        if (!err) return resolve();
        sftp.stat(dir, (statErr) => (statErr ? reject(err) : resolve()));
      }),
    );
  }
  made.add(dir);
}

function writeOne(sftp: SFTPWrapper, path: string, content: Buffer, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    sftp.writeFile(path, content, { mode }, (err) => {
      if (err) return reject(err);
      // The open mode only applies when the file is created.
      sftp.chmod(path, mode, (chmodErr) => (chmodErr ? reject(chmodErr) : resolve()));
    });
  });
}

function withDeadline<T>(work: Promise<T>, deadline: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('timed out'));
    if (deadline.aborted) return onAbort();
    deadline.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        deadline.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        deadline.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
