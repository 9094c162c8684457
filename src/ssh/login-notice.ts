/**
 * The message of the day an interactive login sees (issue 6 point 8): the operator's text, which
 * of the session's streams are recorded, and when it will be closed. Shown on `shell` requests
 * only, like sshd's motd, so scripted `ssh host cmd` output stays clean.
 */
import type { CapturedStreams } from '../audit/recorder.js';

export interface LoginNoticeInput {
  /** ssh.motd, verbatim (may be several lines). */
  readonly motd?: string;
  /** The streams the recorder keeps (audit.intercept); nothing captured = no recording line. */
  readonly recorded: CapturedStreams;
  /** Hard end of the connection (ConnectionInfo.deadline). */
  readonly deadline?: Date;
  /** ms since the epoch, for the "in N minutes" part. */
  readonly now: number;
}

/** Lines ending in CRLF (a pty may be in raw mode), or '' when there is nothing to say. */
export function loginNotice(input: LoginNoticeInput): string {
  const lines: string[] = [];
  if (input.motd) lines.push(...input.motd.replace(/\r?\n$/, '').split(/\r?\n/));
  const recorded = describeCapture(input.recorded);
  if (recorded) lines.push(`airlock: this session is recorded (${recorded}).`);
  if (input.deadline) {
    const minutes = Math.max(0, Math.round((input.deadline.getTime() - input.now) / 60_000));
    const at = input.deadline.toISOString().replace(/\.\d{3}Z$/, 'Z');
    lines.push(`airlock: this session ends at ${at} (in ${minutes} minute${minutes === 1 ? '' : 's'}).`);
  }
  return lines.length === 0 ? '' : lines.map((l) => `${l}\r\n`).join('');
}

/**
 * "input and output", "output only", "input and standard output only", ...: exactly what is
 * kept, so a user is never told their typing is recorded when it is not (or the reverse).
 * "only" marks a session whose input or output is not (fully) kept; undefined = nothing is.
 */
function describeCapture(c: CapturedStreams): string | undefined {
  const parts: string[] = [];
  if (c.stdin) parts.push('input');
  if (c.stdout && c.stderr) parts.push('output');
  else if (c.stdout) parts.push('standard output');
  else if (c.stderr) parts.push('error output');
  if (c.forwarding) parts.push('forwarded connections');
  if (parts.length === 0) return undefined;
  const list = parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)!}`;
  return c.stdin && c.stdout && c.stderr ? list : `${list} only`;
}
