import type { FileEntry, SFTPWrapper } from 'ssh2';
import type { Logger } from 'pino';
import type { DirectoryEntry, WorkloadFiles } from '../backend/backend.js';
import { WorkloadFileError } from '../backend/file-error.js';
import type { ConnectionRecording } from '../audit/recorder.js';
import { AuditType } from '../audit/events.js';
import { toAirlockError } from '../core/errors.js';
import { sftpExit } from './sftp-channel.js';
import { OpenFile } from './sftp-file.js';
import { STATUS, changesOf, longName, openModeOf, resolvePath, statusOf, wireAttributes, type RequestAttributes } from './sftp-attrs.js';

/**
 * The gateway's own SFTP server (ssh2's server-side SFTPWrapper, SFTP v3 as in
 * draft-ietf-secsh-filexfer-02) for workloads without an sftp-server binary: every request
 * becomes a call on the backend's WorkloadFiles, which runs as the session's user.
 *
 * Paths are resolved lexically against `files.home` (SFTP's "."); REALPATH does not follow
 * symbolic links. No extensions are announced (ssh2 sends a bare VERSION 3), so OpenSSH clients
 * use plain RENAME and no statvfs/limits; EXTENDED requests get OP_UNSUPPORTED from ssh2.
 *
 * Audit: one FileOperation event per open, close (with byte counts), directory listing and
 * change (mkdir, rmdir, remove, rename, setstat, symlink) — not per READ/WRITE, and no file
 * contents (the recording stays small; a passthrough sftp-server's bytes are recorded as I/O).
 */
export interface SftpServeDeps {
  readonly sftp: SFTPWrapper;
  /**
   * The workload's files, possibly still being prepared (a container in session mode). The SFTP
   * request must be accepted at once — ssh2 drops channel data that arrives before, and OpenSSH
   * sends its INIT right behind the request — so requests wait for this instead.
   */
  readonly files: Promise<WorkloadFiles>;
  readonly channelId: number;
  readonly logger: Logger;
  readonly recording: ConnectionRecording;
  /** Called on every request (idle timer). */
  readonly onActivity: () => void;
  /** Milliseconds since the epoch (for `ls -l` dates). */
  readonly now: () => number;
}

export interface SftpSession {
  /** Resolves once the channel has closed and every open handle was stopped. */
  readonly done: Promise<void>;
  /** Stops every open handle and closes the channel with this exit status (the gateway ends it). */
  abort(exitStatus: number): Promise<void>;
}

interface OpenDir {
  readonly kind: 'dir';
  readonly path: string;
  readonly entries: readonly DirectoryEntry[];
  next: number;
}

type Handle = { readonly kind: 'file'; readonly file: OpenFile } | OpenDir;

/** OpenSSH's sftp-server allows 512; a client needs a handful. */
const MAX_HANDLES = 256;
/** Bytes of names per READDIR answer (OpenSSH's client takes packets up to 256 KiB). */
const READDIR_BYTES = 32 * 1024;

export function serveSftp(deps: SftpServeDeps): SftpSession {
  const { sftp, logger, recording, channelId } = deps;
  // Rejections are reported by the caller (who closes the channel); requests just fail.
  const ready = deps.files;
  ready.catch(() => undefined);
  let files!: WorkloadFiles;
  const handles = new Map<string, Handle>();
  let nextHandle = 0;
  let closed = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const audit = (op: string, payload: Record<string, unknown>) => recording.event(AuditType.FileOperation, channelId, { op, ...payload });
  const path = (p: string) => resolvePath(files.home, p);

  const addHandle = (h: Handle): Buffer | undefined => {
    if (handles.size >= MAX_HANDLES) return undefined;
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(nextHandle++ >>> 0);
    handles.set(buf.toString('hex'), h);
    return buf;
  };
  const handleOf = (buf: Buffer): Handle | undefined => handles.get(buf.toString('hex'));

  const fail = (reqid: number, err: unknown) => {
    if (err instanceof WorkloadFileError) {
      sftp.status(reqid, statusOf(err.kind), err.message);
      return;
    }
    const e = toAirlockError(err);
    logger.warn({ channelId, code: e.code, err: e }, 'sftp request failed');
    sftp.status(reqid, STATUS.FAILURE, 'Failure');
  };

  /** Runs one request once the files are ready; any rejection becomes its status reply. */
  const serve = (reqid: number, op: () => Promise<void>) => {
    deps.onActivity();
    if (closed) return;
    ready
      .then((f) => {
        files = f;
        if (closed) return;
        return op();
      })
      .catch((err: unknown) => {
        if (!closed) fail(reqid, err);
      });
  };
  const ok = (reqid: number) => sftp.status(reqid, STATUS.OK);
  const badHandle = (reqid: number) => sftp.status(reqid, STATUS.FAILURE, 'invalid handle');

  sftp.on('REALPATH', (reqid, p) =>
    serve(reqid, async () => {
      const resolved = path(p);
      sftp.name(reqid, [{ filename: resolved, longname: resolved, attrs: {} } as FileEntry]);
    }),
  );
  sftp.on('STAT', (reqid, p) => serve(reqid, async () => sftp.attrs(reqid, wireAttributes(await files.stat(path(p))))));
  sftp.on('LSTAT', (reqid, p) => serve(reqid, async () => sftp.attrs(reqid, wireAttributes(await files.lstat(path(p))))));

  sftp.on('OPEN', (reqid, filename, pflags, attrs) =>
    serve(reqid, async () => {
      const p = path(filename);
      const mode = openModeOf(pflags, attrs as RequestAttributes);
      audit('open', { path: p, read: mode.read, write: mode.write, ...(mode.flags.truncate ? { truncate: true } : {}) });
      const file = await OpenFile.open(files, p, mode);
      const handle = addHandle({ kind: 'file', file });
      if (!handle || closed) {
        await file.abort();
        if (!closed) sftp.status(reqid, STATUS.FAILURE, 'too many open files');
        return;
      }
      sftp.handle(reqid, handle);
    }),
  );
  sftp.on('READ', (reqid, handle, offset, length) =>
    serve(reqid, async () => {
      const h = handleOf(handle);
      if (h?.kind !== 'file') return badHandle(reqid);
      const data = await h.file.read(offset, length);
      if (data === null || data.length === 0) sftp.status(reqid, STATUS.EOF);
      else sftp.data(reqid, data);
    }),
  );
  sftp.on('WRITE', (reqid, handle, offset, data) =>
    serve(reqid, async () => {
      const h = handleOf(handle);
      if (h?.kind !== 'file') return badHandle(reqid);
      await h.file.write(offset, data);
      ok(reqid);
    }),
  );
  sftp.on('FSTAT', (reqid, handle) =>
    serve(reqid, async () => {
      const h = handleOf(handle);
      if (!h) return badHandle(reqid);
      sftp.attrs(reqid, wireAttributes(h.kind === 'file' ? await h.file.fstat() : await files.stat(h.path)));
    }),
  );
  sftp.on('FSETSTAT', (reqid, handle, attrs) =>
    serve(reqid, async () => {
      const h = handleOf(handle);
      if (!h) return badHandle(reqid);
      const changes = changesOf(attrs as RequestAttributes);
      const target = h.kind === 'file' ? h.file.path : h.path;
      audit('setstat', { path: target, ...changes });
      // Written data first, so e.g. `put -p` times are not overwritten by a late write.
      if (h.kind === 'file') await h.file.flush();
      await files.setstat(target, changes);
      ok(reqid);
    }),
  );
  sftp.on('CLOSE', (reqid, handle) =>
    serve(reqid, async () => {
      const key = handle.toString('hex');
      const h = handles.get(key);
      if (!h) return badHandle(reqid);
      handles.delete(key);
      if (h.kind === 'dir') return ok(reqid);
      try {
        await h.file.close();
      } finally {
        audit('close', { path: h.file.path, bytesRead: h.file.bytesRead, bytesWritten: h.file.bytesWritten });
      }
      ok(reqid);
    }),
  );

  sftp.on('OPENDIR', (reqid, p) =>
    serve(reqid, async () => {
      const dir = path(p);
      audit('opendir', { path: dir });
      const entries = await files.readdir(dir);
      const handle = addHandle({ kind: 'dir', path: dir, entries, next: 0 });
      if (!handle) return sftp.status(reqid, STATUS.FAILURE, 'too many open files');
      sftp.handle(reqid, handle);
    }),
  );
  sftp.on('READDIR', (reqid, handle) =>
    serve(reqid, async () => {
      const h = handleOf(handle);
      if (h?.kind !== 'dir') return badHandle(reqid);
      if (h.next >= h.entries.length) return sftp.status(reqid, STATUS.EOF);
      const now = Math.floor(deps.now() / 1000);
      const batch: FileEntry[] = [];
      let bytes = 0;
      while (h.next < h.entries.length && (batch.length === 0 || bytes < READDIR_BYTES)) {
        const entry = h.entries[h.next++]!;
        const longname = longName(entry.name, entry.attrs, now);
        bytes += entry.name.length + longname.length + 40;
        batch.push({ filename: entry.name, longname, attrs: wireAttributes(entry.attrs) });
      }
      sftp.name(reqid, batch);
    }),
  );

  sftp.on('SETSTAT', (reqid, p, attrs) =>
    serve(reqid, async () => {
      const target = path(p);
      const changes = changesOf(attrs as RequestAttributes);
      audit('setstat', { path: target, ...changes });
      await files.setstat(target, changes);
      ok(reqid);
    }),
  );
  sftp.on('MKDIR', (reqid, p, attrs) =>
    serve(reqid, async () => {
      const dir = path(p);
      audit('mkdir', { path: dir });
      const mode = (attrs as RequestAttributes | undefined)?.mode;
      await files.mkdir(dir, typeof mode === 'number' ? mode & 0o7777 : undefined);
      ok(reqid);
    }),
  );
  sftp.on('RMDIR', (reqid, p) =>
    serve(reqid, async () => {
      const dir = path(p);
      audit('rmdir', { path: dir });
      await files.rmdir(dir);
      ok(reqid);
    }),
  );
  sftp.on('REMOVE', (reqid, p) =>
    serve(reqid, async () => {
      const target = path(p);
      audit('remove', { path: target });
      await files.remove(target);
      ok(reqid);
    }),
  );
  sftp.on('RENAME', (reqid, from, to) =>
    serve(reqid, async () => {
      const [a, b] = [path(from), path(to)];
      audit('rename', { path: a, to: b });
      await files.rename(a, b);
      ok(reqid);
    }),
  );
  sftp.on('READLINK', (reqid, p) =>
    serve(reqid, async () => {
      const target = await files.readlink(path(p));
      sftp.name(reqid, [{ filename: target, longname: target, attrs: {} } as FileEntry]);
    }),
  );
  // ssh2 already swaps OpenSSH's reversed SYMLINK arguments (a known OpenSSH deviation).
  sftp.on('SYMLINK', (reqid, linkPath, targetPath) =>
    serve(reqid, async () => {
      const link = path(linkPath);
      audit('symlink', { path: link, target: targetPath });
      // The target is stored as given (relative targets stay relative).
      await files.symlink(targetPath, link);
      ok(reqid);
    }),
  );

  const finish = async () => {
    if (closed) return;
    closed = true;
    const open = [...handles.values()];
    handles.clear();
    await Promise.all(open.map((h) => (h.kind === 'file' ? h.file.abort() : undefined)));
    resolveDone();
  };
  // A malformed packet: ssh2 emits 'error' and closes the channel; unheard, it would crash us.
  sftp.on('error', (err: Error) => {
    logger.info({ channelId, err: err.message }, 'sftp protocol error; channel closed');
    void finish();
  });
  // The client sent EOF (sftp exits): the "program" ended well; close our side too.
  sftp.on('end', () => {
    sftpExit(sftp, 0);
    sftp.end();
    void finish();
  });
  sftp.on('close', () => void finish());

  return {
    done,
    async abort(exitStatus) {
      sftpExit(sftp, exitStatus);
      sftp.end();
      await finish();
    },
  };
}
