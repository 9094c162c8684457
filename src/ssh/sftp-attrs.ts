/**
 * Pure translations between SFTP v3 (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks)
 * and the backend's file API: open flags, attributes, status codes, `ls -l` long names.
 */
import { posix } from 'node:path';
import type { AttributeChanges, FileAttributes } from '../backend/backend.js';
import { WorkloadFileError, type FileErrorKind } from '../backend/file-error.js';
import type { OpenFileMode } from './sftp-file.js';

/** SSH_FXF_* (§6.3). */
export const OPEN_FLAG = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

/** SSH_FX_* (§7). */
export const STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  OP_UNSUPPORTED: 8,
} as const;

export function statusOf(kind: FileErrorKind): number {
  switch (kind) {
    case 'no-such-file':
      return STATUS.NO_SUCH_FILE;
    case 'permission-denied':
      return STATUS.PERMISSION_DENIED;
    case 'unsupported':
      return STATUS.OP_UNSUPPORTED;
    case 'failure':
      return STATUS.FAILURE;
  }
}

/** Attributes as ssh2 parses them from a request: only the fields the client sent are set. */
export interface RequestAttributes {
  readonly mode?: number | undefined;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly size?: number | undefined;
  readonly atime?: number | undefined;
  readonly mtime?: number | undefined;
}

export function openModeOf(pflags: number, attrs: RequestAttributes | undefined): OpenFileMode {
  const write = (pflags & (OPEN_FLAG.WRITE | OPEN_FLAG.APPEND)) !== 0;
  const mode = typeof attrs?.mode === 'number' ? attrs.mode & 0o7777 : undefined;
  return {
    // No flags at all is read-only (OpenSSH's sftp-server does the same).
    read: (pflags & OPEN_FLAG.READ) !== 0 || !write,
    write,
    flags: {
      create: (pflags & OPEN_FLAG.CREAT) !== 0,
      truncate: (pflags & OPEN_FLAG.TRUNC) !== 0,
      exclusive: (pflags & OPEN_FLAG.EXCL) !== 0 && (pflags & OPEN_FLAG.CREAT) !== 0,
      append: (pflags & OPEN_FLAG.APPEND) !== 0,
      ...(mode !== undefined ? { mode } : {}),
    },
  };
}

export function changesOf(attrs: RequestAttributes | undefined): AttributeChanges {
  const out: { -readonly [K in keyof AttributeChanges]: AttributeChanges[K] } = {};
  if (!attrs) return out;
  if (typeof attrs.mode === 'number') out.mode = attrs.mode & 0o7777;
  if (typeof attrs.uid === 'number' && typeof attrs.gid === 'number') {
    out.uid = attrs.uid;
    out.gid = attrs.gid;
  }
  if (typeof attrs.size === 'number') out.size = attrs.size;
  if (typeof attrs.atime === 'number' && typeof attrs.mtime === 'number') {
    out.atime = attrs.atime;
    out.mtime = attrs.mtime;
  }
  return out;
}

export interface WireAttributes {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  mtime: number;
}

export function wireAttributes(a: FileAttributes): WireAttributes {
  return { mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, atime: a.atime, mtime: a.mtime };
}

/**
 * SFTP's "." is the program's start directory; paths are resolved lexically (no symlinks).
 * No file name can hold a NUL byte, and none could be passed to a program.
 */
export function resolvePath(home: string, path: string): string {
  if (path.includes('\0')) throw new WorkloadFileError('no-such-file', 'No such file or directory');
  return posix.resolve(home, path === '' ? '.' : path);
}

const S_IFMT = 0o170000;
const TYPE_CHAR: ReadonlyMap<number, string> = new Map([
  [0o140000, 's'],
  [0o120000, 'l'],
  [0o100000, '-'],
  [0o060000, 'b'],
  [0o040000, 'd'],
  [0o020000, 'c'],
  [0o010000, 'p'],
]);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_S = 182 * 24 * 3600;

/** `drwxr-xr-x` from st_mode, with setuid/setgid/sticky as `ls` shows them. */
export function modeString(mode: number): string {
  const type = TYPE_CHAR.get(mode & S_IFMT) ?? '?';
  const bit = (mask: number, c: string) => (mode & mask ? c : '-');
  const special = (exec: boolean, flag: boolean, set: string, unset: string) => (flag ? (exec ? set : unset) : exec ? 'x' : '-');
  return (
    type +
    bit(0o400, 'r') +
    bit(0o200, 'w') +
    special((mode & 0o100) !== 0, (mode & 0o4000) !== 0, 's', 'S') +
    bit(0o040, 'r') +
    bit(0o020, 'w') +
    special((mode & 0o010) !== 0, (mode & 0o2000) !== 0, 's', 'S') +
    bit(0o004, 'r') +
    bit(0o002, 'w') +
    special((mode & 0o001) !== 0, (mode & 0o1000) !== 0, 't', 'T')
  );
}

/**
 * The `longname` of a READDIR entry, laid out like OpenSSH's sftp-server (`ls_file`): mode,
 * links, owner, group, size, date (time of day within six months, else the year; UTC), name.
 */
export function longName(name: string, a: FileAttributes, nowSeconds: number): string {
  const date = new Date(a.mtime * 1000);
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const recent = Math.abs(nowSeconds - a.mtime) < SIX_MONTHS_S;
  const tail = recent
    ? `${String(date.getUTCHours()).padStart(2, '0')}:${String(date.getUTCMinutes()).padStart(2, '0')}`
    : ` ${date.getUTCFullYear()}`;
  const when = `${MONTHS[date.getUTCMonth()]} ${day} ${tail}`;
  const owner = a.owner.slice(0, 8).padEnd(8, ' ');
  const group = a.group.slice(0, 8).padEnd(8, ' ');
  return `${modeString(a.mode)} ${String(a.nlink).padStart(3, ' ')} ${owner} ${group} ${String(a.size).padStart(8, ' ')} ${when} ${name}`;
}
