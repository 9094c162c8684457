import type { ProcessRequest } from '../backend.js';
import { planCommand } from '../docker/command.js';

/**
 * Command lines for execs. The program itself is planned exactly as in the Docker backend
 * (`planCommand`: `/bin/sh -c` for exec, the shell choice, subsystems, and the wrapper that sets
 * the pty size with stty and prints the PID marker before `exec`ing the program).
 *
 * The exec API has no environment parameter, so the request's environment (SSH `env` requests,
 * TERM with a pty) is set by one more `/bin/sh -c` in front that `export`s each NAME=value given
 * as a positional argument and then `exec`s the rest — user data only ever travels as arguments,
 * never inside script text, and the PID stays the program's. Names a shell cannot export are
 * skipped (OpenSSH would hand them over; a POSIX shell cannot).
 */
const ENV_PROLOGUE = 'while [ "$#" -gt 0 ] && [ "$1" != -- ]; do export "$1"; shift; done; shift; exec "$@"';
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface KubeCommandInput {
  readonly request: ProcessRequest;
  readonly shellCommand: readonly string[] | undefined;
  readonly subsystems: Readonly<Record<string, string>>;
  readonly markerNonce: string;
}

export function planKubeCommand(input: KubeCommandInput): string[] {
  const program = planCommand({ ...input, gate: false });
  const env: Record<string, string> = { ...input.request.env };
  if (input.request.pty) env['TERM'] = input.request.pty.term;
  const assignments = Object.entries(env)
    .filter(([name, value]) => SHELL_NAME.test(name) && !value.includes('\0'))
    .map(([name, value]) => `${name}=${value}`);
  if (assignments.length === 0) return program;
  return ['/bin/sh', '-c', ENV_PROLOGUE, 'airlock-env', ...assignments, '--', ...program];
}

/**
 * Writes one file from stdin: exactly `size` bytes are read (`head -c`), so no stdin EOF is
 * needed (v4 exec cannot send one); created with umask 077 and then given its mode, so a
 * sensitive file is never readable by others, not even briefly. Missing parent directories are
 * created (0755). Needs /bin/sh, mkdir, head and chmod in the image.
 */
export function fileWriteCommand(path: string, size: number, mode: number): string[] {
  const script = 'd="${1%/*}"; if [ -n "$d" ]; then mkdir -p -- "$d" || exit 1; fi; (umask 077; head -c "$2" > "$1") && chmod "$3" "$1"';
  return ['/bin/sh', '-c', script, 'airlock-file', path, String(size), mode.toString(8)];
}

/** `kill -s SIG pid`, the shell builtin (the name comes from the RFC 4254 allow list). */
export function signalCommand(name: string, pid: number): string[] {
  return ['/bin/sh', '-c', 'kill -s "$1" "$2"', 'airlock-signal', name, String(pid)];
}

/** SIGKILL to the program's process group when it leads one (a pty exec does), else to its PID. */
export function killCommand(pid: number): string[] {
  return ['/bin/sh', '-c', 'kill -s KILL -- "-$1" 2>/dev/null || kill -s KILL "$1"', 'airlock-kill', String(pid)];
}
