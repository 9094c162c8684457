import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { PtySpec } from '../backend.js';
import { dimension } from './command.js';
import { startExecHijacked } from './engine-ops.js';
import { markerEcho } from './pid-marker.js';

/**
 * Pre-started execs for warm-pool containers. A `docker exec` costs a create, a start (runc
 * joining the container's namespaces) and a hijack — most of a pooled login's time. So each
 * idle pool container already runs one launcher per terminal kind (with and without a TTY, the
 * one property an exec cannot change later): a `/bin/sh` as the pool's user, started before
 * anyone logged in, waiting on its stdin. The first program of a claiming connection is then
 * started by writing one request to the right launcher; the launcher sets everything up and
 * `exec`s the program, so from there on it is an ordinary exec: same PID marker, same signals
 * (`kill` of the marker's PID), same resize, same exit code from the exec's inspect.
 *
 * The request is a script the gateway writes, framed by a line with a fresh random terminator:
 * `<terminator>\n<script>\n<terminator>\n`. The launcher collects the lines up to the second
 * terminator and `eval`s them. Every user-controlled string in the script (argv, environment)
 * is a single-quoted word, where nothing but the quote itself is special; a user cannot end the
 * script early, as they never see the terminator. The launcher reads with `read -r`, one byte at
 * a time, so the program's stdin starts exactly after the request.
 *
 * With a TTY the launcher first saves the terminal's settings and switches it to raw mode
 * without echo, so the request crosses the pty unchanged (no line-length limit, no control
 * characters interpreted, nothing echoed); the script restores the settings — together with the
 * requested size — before the program starts. That needs `stty` in the image; without it the
 * TTY launcher reports failure at pool time and logins use a normal exec.
 */
export interface Launcher {
  readonly exec: Docker.Exec;
  readonly stream: Duplex;
  readonly tty: boolean;
  /** The user it runs as (exec `User`), '' for the image's default. */
  readonly user: string;
}

/** Printed by a launcher once it waits for its request (and, with a TTY, the terminal is raw). */
const READY = 'airlock-launcher-ready\n';

/** Multiplexed stdout frame header for `READY` (stream 1, big-endian length). */
const READY_FRAME = (() => {
  const header = Buffer.alloc(8);
  header[0] = 1;
  header.writeUInt32BE(Buffer.byteLength(READY), 4);
  return Buffer.concat([header, Buffer.from(READY)]);
})();

/** Reads the request up to its terminator, then runs it; stdin EOF first means "not needed". */
const READ_AND_RUN =
  'IFS= read -r airlock_end || exit 125; airlock_req=; ' +
  'while :; do IFS= read -r airlock_line || exit 125; [ "$airlock_line" = "$airlock_end" ] && break; ' +
  'airlock_req="$airlock_req$airlock_line\n"; done; eval "$airlock_req"';

export const LAUNCHER_SCRIPT = `echo airlock-launcher-ready; ${READ_AND_RUN}`;
export const TTY_LAUNCHER_SCRIPT = `airlock_tty=$(stty -g) && stty raw -echo && echo airlock-launcher-ready || exit 126; ${READ_AND_RUN}`;

/** Starts a launcher and waits until it reports ready; rejects (stream destroyed) otherwise. */
export async function startLauncher(container: Docker.Container, options: { tty: boolean; user: string; signal: AbortSignal }): Promise<Launcher> {
  const { tty, user, signal } = options;
  const exec = await container.exec({
    Cmd: ['/bin/sh', '-c', tty ? TTY_LAUNCHER_SCRIPT : LAUNCHER_SCRIPT],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: tty,
    ...(user ? { User: user } : {}),
    abortSignal: signal,
  });
  const stream = await startExecHijacked(exec, { hijack: true, stdin: true, Detach: false, Tty: tty, abortSignal: signal });
  try {
    await readExactly(stream, tty ? Buffer.from(READY) : READY_FRAME, signal);
  } catch (err) {
    stream.destroy();
    throw err;
  }
  return { exec, stream, tty, user };
}

/**
 * Consumes exactly `expected` from the stream's start; anything else (an error text, a missing
 * `stty`, the stream ending) is a failure. Leaves the stream as it found it for the next reader.
 */
function readExactly(stream: Duplex, expected: Buffer, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const done = (err?: Error) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (got.length < expected.length && (chunk = stream.read() as Buffer | null) !== null) {
        const need = expected.length - got.length;
        if (chunk.length > need) stream.unshift(chunk.subarray(need));
        got = Buffer.concat([got, chunk.subarray(0, need)]);
      }
      if (!expected.subarray(0, got.length).equals(got)) {
        done(new Error(`the launcher did not start: ${JSON.stringify(got.toString('utf8').slice(0, 200))}`));
      } else if (got.length === expected.length) {
        done();
      }
    };
    const onEnd = () => done(new Error('the launcher ended before it was ready'));
    const onAbort = () => done(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface LaunchRequest {
  /** The program's argv (as planCommand builds it without a wrapper). */
  readonly argv: readonly string[];
  /** "NAME=value" entries (envList), exported over the container's environment. */
  readonly env: readonly string[];
  readonly markerNonce: string;
  readonly pty: PtySpec | undefined;
  /** Random, per request: frames the script (see above). */
  readonly terminator: string;
}

/** A shell identifier: what `export` can set. Other names only an exec's `Env` can carry. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The bytes to write to a launcher, or undefined when the request cannot be expressed through
 * one (a NUL byte, an environment name that is no shell identifier): the caller then starts a
 * normal exec.
 */
export function launchRequest(request: LaunchRequest): Buffer | undefined {
  const { argv, env, markerNonce, pty, terminator } = request;
  if (argv.length === 0 || argv.some((a) => a.includes('\0'))) return undefined;
  const exports: string[] = [];
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq <= 0 || !SHELL_NAME.test(entry.slice(0, eq)) || entry.includes('\0')) return undefined;
    // `command` keeps a refused assignment (a read-only name of bash-as-sh) from ending the shell.
    exports.push(`command export ${quote(entry)} 2>/dev/null`);
  }
  const lines: string[] = [];
  if (pty) {
    // Settings and size in one `stty`; if the size is refused, the settings still come back.
    const size = dimension(pty.rows) > 0 && dimension(pty.cols) > 0 ? ` rows ${dimension(pty.rows)} cols ${dimension(pty.cols)}` : '';
    lines.push(`if stty "$airlock_tty"${size} 2>/dev/null; then airlock_sz=${size ? 1 : 0}; else stty "$airlock_tty" 2>/dev/null; fi`);
  }
  lines.push(`set -- ${argv.map(quote).join(' ')}`);
  lines.push(...exports);
  lines.push(markerEcho(markerNonce, 'airlock_sz'));
  lines.push('exec "$@"');
  const script = lines.join('\n');
  // The terminator is random and never shown to anyone; still, never let a line equal it.
  if (script.split('\n').includes(terminator)) return undefined;
  return Buffer.from(`${terminator}\n${script}\n${terminator}\n`, 'utf8');
}

/** A single-quoted shell word: only the quote itself needs care. */
function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
