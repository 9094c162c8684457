/**
 * Why a workload file operation failed, in the terms SFTP can carry (draft-ietf-secsh-filexfer-02
 * §7: SSH_FX_NO_SUCH_FILE, SSH_FX_PERMISSION_DENIED, SSH_FX_FAILURE, SSH_FX_OP_UNSUPPORTED).
 * `message` is what the workload said (e.g. "Permission denied"); it is shown to the SFTP client,
 * so it never carries engine internals.
 */
export type FileErrorKind = 'no-such-file' | 'permission-denied' | 'failure' | 'unsupported';

export class WorkloadFileError extends Error {
  readonly kind: FileErrorKind;

  constructor(kind: FileErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkloadFileError';
    this.kind = kind;
  }
}

/**
 * Classifies a tool's error text by the strerror(3) words glibc, musl and busybox share (and the
 * shells' abbreviations: dash "No such file", busybox sh "no such file", "nonexistent
 * directory"), the way OpenSSH's sftp-server maps errno: ENOENT/ENOTDIR/ELOOP → no such file,
 * EACCES/EPERM → permission denied, anything else → failure. Only the reason after the last
 * ": " of the last line is looked at, so a path that contains such words does not mislead it.
 */
export function fileErrorFromText(text: string): WorkloadFileError {
  const line = lastLine(text);
  const colon = line.lastIndexOf(': ');
  const reason = colon >= 0 ? line.slice(colon + 2) : line;
  if (/permission denied|operation not permitted/i.test(reason)) return new WorkloadFileError('permission-denied', 'Permission denied');
  if (/no such file|nonexistent|not a directory|too many levels of symbolic links/i.test(reason)) {
    return new WorkloadFileError('no-such-file', 'No such file or directory');
  }
  const known = KNOWN_REASONS.find((r) => reason.toLowerCase().includes(r.toLowerCase()));
  if (known) return new WorkloadFileError('failure', known);
  return new WorkloadFileError('failure', reason === '' ? 'Failure' : reason.slice(0, 200));
}

const KNOWN_REASONS = [
  'Read-only file system',
  'No space left on device',
  'Disk quota exceeded',
  'File exists',
  'Directory not empty',
  'Is a directory',
  'File too large',
  'Invalid argument',
  'Device or resource busy',
];

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.at(-1) ?? '';
}
