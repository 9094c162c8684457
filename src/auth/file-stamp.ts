import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';

/**
 * Identity of a file version: nanosecond mtime/ctime plus size and inode, so a rewrite, a rename
 * over the file or an edit of a different length all count as a change. (Two same-length edits
 * within one kernel timestamp tick, a few ms, look alike; editors and config management do not
 * write that fast.) Files re-read "when they change" compare these.
 */
function stampText(s: { mtimeNs: bigint; ctimeNs: bigint; size: bigint; ino: bigint }): string {
  return `${s.mtimeNs}:${s.ctimeNs}:${s.size}:${s.ino}`;
}

export async function fileStamp(path: string): Promise<string> {
  return stampText(await stat(path, { bigint: true }));
}

export function fileStampSync(path: string): string {
  return stampText(statSync(path, { bigint: true }));
}
