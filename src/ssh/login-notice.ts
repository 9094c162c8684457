/**
 * The message of the day an interactive login sees (issue 6 point 8): the operator's text, whether
 * the session is recorded, and when it will be closed. Shown on `shell` requests only, like sshd's
 * motd, so scripted `ssh host cmd` output stays clean.
 */
export interface LoginNoticeInput {
  /** ssh.motd, verbatim (may be several lines). */
  readonly motd?: string;
  /** The session's bytes are captured by the recorder. */
  readonly recorded: boolean;
  /** Hard end of the connection (ConnectionInfo.deadline). */
  readonly deadline?: Date;
  /** ms since the epoch, for the "in N minutes" part. */
  readonly now: number;
}

/** Lines ending in CRLF (a pty may be in raw mode), or '' when there is nothing to say. */
export function loginNotice(input: LoginNoticeInput): string {
  const lines: string[] = [];
  if (input.motd) lines.push(...input.motd.replace(/\r?\n$/, '').split(/\r?\n/));
  if (input.recorded) lines.push('airlock: this session is recorded (input and output).');
  if (input.deadline) {
    const minutes = Math.max(0, Math.round((input.deadline.getTime() - input.now) / 60_000));
    const at = input.deadline.toISOString().replace(/\.\d{3}Z$/, 'Z');
    lines.push(`airlock: this session ends at ${at} (in ${minutes} minute${minutes === 1 ? '' : 's'}).`);
  }
  return lines.length === 0 ? '' : lines.map((l) => `${l}\r\n`).join('');
}
