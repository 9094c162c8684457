import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { isNotFound, mapEngineError } from './engine-errors.js';
import { runShortExec } from './engine-ops.js';

/**
 * File access inside containers without any agent: the Engine's archive API (works on created,
 * not yet started containers) and, for paths the archive API cannot reach (tmpfs mounts, which
 * only exist once the container runs, under a read-only root fs), a `docker exec` of `cat`.
 */

export interface ContainerFile {
  /** Absolute, normalised path. */
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
}

/** Validates and normalises ConnectionInfo.files: absolute paths only; 0600 when sensitive, else 0644. */
export function normalizeFiles(files: Readonly<Record<string, { readonly content: Buffer; readonly sensitive: boolean }>>): ContainerFile[] {
  const out: ContainerFile[] = [];
  for (const [path, file] of Object.entries(files)) {
    const normalized = posix.normalize(path);
    if (!posix.isAbsolute(normalized) || normalized === '/' || normalized.endsWith('/') || normalized.includes('\0')) {
      throw new AirlockError('CONTAINER_FILES_FAILED', `file path "${path}" must be an absolute file path`, { details: { path } });
    }
    out.push({ path: normalized, content: file.content, mode: file.sensitive ? 0o600 : 0o644 });
  }
  return out;
}

export function isUnderMount(path: string, mounts: readonly string[]): boolean {
  return mounts.some((m) => {
    const mount = m.length > 1 ? m.replace(/\/+$/, '') : m;
    return path === mount || path.startsWith(mount === '/' ? '/' : `${mount}/`);
  });
}

/** Files under a tmpfs mount must be written after start (before, they would land under the mount and be hidden). */
export function partitionFiles(files: readonly ContainerFile[], tmpfsMounts: readonly string[]): { beforeStart: ContainerFile[]; afterStart: ContainerFile[] } {
  const beforeStart: ContainerFile[] = [];
  const afterStart: ContainerFile[] = [];
  for (const file of files) (isUnderMount(file.path, tmpfsMounts) ? afterStart : beforeStart).push(file);
  return { beforeStart, afterStart };
}

/** Reads one regular file through the archive API; undefined when it does not exist. */
export async function readContainerFile(container: Docker.Container, path: string, signal: AbortSignal, maxBytes = 1024 * 1024): Promise<Buffer | undefined> {
  let archive: Readable;
  try {
    archive = (await container.getArchive({ path, abortSignal: signal })) as unknown as Readable;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const extract = tar.extract();
  archive.on('error', (err) => extract.destroy(err));
  archive.pipe(extract);
  let content: Buffer | undefined;
  for await (const entry of extract) {
    if (content === undefined && entry.header.type === 'file') {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of entry) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) throw new Error(`${path} in the image is larger than ${maxBytes} bytes`);
        chunks.push(chunk as Buffer);
      }
      content = Buffer.concat(chunks);
    } else {
      entry.resume();
    }
  }
  return content;
}

/** Whether a path exists in the container's file system (HEAD on the archive API). */
export async function pathExists(docker: Docker, container: Docker.Container, path: string, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${container.id}/archive?`,
        method: 'HEAD',
        options: { path },
        abortSignal: signal,
        statusCodes: { 200: true, 404: 'no such path', 500: 'server error' },
      },
      (err, res) => {
        if (res && typeof res === 'object' && 'resume' in res && typeof res.resume === 'function') res.resume();
        if (!err) resolve(true);
        else if (isNotFound(err)) resolve(false);
        else reject(err);
      },
    );
  });
}

/**
 * Remembers which directories exist in an image's pristine file system, so the parent-directory
 * probe costs round trips only the first time a path is seen for an image.
 */
export class DirectoryCache {
  readonly #known = new Map<string, boolean>();

  get(imageId: string, dir: string): boolean | undefined {
    return this.#known.get(`${imageId}\0${dir}`);
  }

  set(imageId: string, dir: string, exists: boolean): void {
    if (this.#known.size > 10_000) this.#known.clear();
    this.#known.set(`${imageId}\0${dir}`, exists);
  }
}

export interface ArchiveWriteContext {
  readonly docker: Docker;
  readonly imageId: string;
  readonly owner: { readonly uid: number; readonly gid: number };
  readonly dirs: DirectoryCache;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/**
 * Writes files into a created (not yet started) container with one tar through putArchive.
 * Missing parent directories are added to the tar as the user's (0755) — existing ones are left
 * out, because extracting a directory entry would reset the mode/owner of e.g. /tmp or $HOME.
 */
export async function writeFilesByArchive(container: Docker.Container, files: readonly ContainerFile[], ctx: ArchiveWriteContext): Promise<void> {
  try {
    const missing = await missingParents(container, files, ctx);
    const pack = tar.pack();
    const mtime = new Date();
    for (const dir of missing) {
      pack.entry({ name: `${dir.slice(1)}/`, type: 'directory', mode: 0o755, uid: ctx.owner.uid, gid: ctx.owner.gid, mtime });
    }
    for (const file of files) {
      pack.entry({ name: file.path.slice(1), type: 'file', mode: file.mode, uid: ctx.owner.uid, gid: ctx.owner.gid, mtime, size: file.content.length }, file.content);
    }
    pack.finalize();
    await container.putArchive(pack as unknown as NodeJS.ReadableStream, { path: '/', abortSignal: ctx.signal });
  } catch (err) {
    throw mapEngineError(err, 'CONTAINER_FILES_FAILED', 'writing files into the container', { paths: files.map((f) => f.path) });
  }
}

async function missingParents(container: Docker.Container, files: readonly ContainerFile[], ctx: ArchiveWriteContext): Promise<string[]> {
  const missing = new Set<string>();
  const checked = new Set<string>();
  for (const file of files) {
    // Walk up from the file's directory until a directory is known to exist.
    for (let dir = posix.dirname(file.path); dir !== '/' && !checked.has(dir); dir = posix.dirname(dir)) {
      checked.add(dir);
      let exists = ctx.dirs.get(ctx.imageId, dir);
      if (exists === undefined) {
        exists = await pathExists(ctx.docker, container, dir, ctx.signal);
        ctx.dirs.set(ctx.imageId, dir, exists);
      }
      if (exists) break;
      missing.add(dir);
    }
  }
  return [...missing].sort((a, b) => a.length - b.length);
}

const WRITE_SCRIPT =
  'umask 022; d="${1%/*}"; if [ -n "$d" ]; then mkdir -p "$d" || exit 1; fi; umask 077; cat > "$1" || exit 1; chmod "$2" "$1"';

/**
 * Writes files into a running container as the container's user, one short exec of `/bin/sh`
 * with `cat` each (content on stdin). Used for tmpfs paths, which only exist after start.
 */
export async function writeFilesByExec(
  container: Docker.Container,
  files: readonly ContainerFile[],
  options: { user: string; timeoutMs: number; signal: AbortSignal; timeouts: { http: number }; clock: Clock },
): Promise<void> {
  for (const file of files) {
    let result;
    try {
      result = await runShortExec(container, ['/bin/sh', '-c', WRITE_SCRIPT, 'airlock-files', file.path, file.mode.toString(8)], {
        user: options.user,
        stdin: file.content,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        timeouts: options.timeouts,
        clock: options.clock,
      });
    } catch (err) {
      throw mapEngineError(err, 'CONTAINER_FILES_FAILED', 'writing a file through exec', { path: file.path });
    }
    if (result.exitCode !== 0) {
      throw new AirlockError('CONTAINER_FILES_FAILED', `writing ${file.path} failed with exit code ${result.exitCode}: ${result.stderr.trim()}`, {
        details: { path: file.path, exitCode: result.exitCode },
      });
    }
  }
}
