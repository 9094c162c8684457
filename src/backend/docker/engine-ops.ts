import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { Clock } from '../../core/clock.js';
import { retry } from '../../core/retry.js';
import { AirlockError } from '../../core/errors.js';
import { isNotFound, mapEngineError, statusCodeOf } from './engine-errors.js';
import { DockerStreamDemuxer, type StdoutFilter } from './stream-demux.js';
import { timeoutSignal } from '../../core/timeout-signal.js';

/** Small typed wrappers around the Engine calls the backend makes more than once. */

/** One AbortSignal for a single call: its own time limit plus any outer signals (close, caller). */
export function callSignal(timeoutMs: number, ...outer: ReadonlyArray<AbortSignal | undefined>): AbortSignal {
  const signals = [timeoutSignal(timeoutMs), ...outer.filter((s): s is AbortSignal => s !== undefined)];
  return signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
}

function dial<T>(docker: Docker, options: Parameters<Docker['modem']['dial']>[0]): Promise<T> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(options, (err, data) => (err ? reject(err) : resolve(data as T)));
  });
}

/**
 * Creates a container. The body goes in the request body and only the name in the query string
 * (dockerode's createContainer would put the whole body, env included, into the URL too).
 */
export async function createContainer(docker: Docker, name: string, body: Record<string, unknown>, signal: AbortSignal): Promise<Docker.Container> {
  const created = await dial<{ Id?: unknown }>(docker, {
    path: '/containers/create?',
    method: 'POST',
    options: { _query: { name }, _body: body },
    abortSignal: signal,
    statusCodes: { 200: true, 201: true, 400: 'bad parameter', 404: 'no such image', 406: 'impossible to attach', 409: 'conflict', 500: 'server error' },
  });
  if (typeof created.Id !== 'string') throw new Error('the Engine answered container create without an Id');
  return docker.getContainer(created.Id);
}

/**
 * Removes a container with its anonymous volumes, killing it if needed. "Not found" counts as
 * removed; "removal already in progress" and transient failures are retried until the deadline.
 */
export async function removeContainer(container: Docker.Container, timeouts: { containerStop: number; http: number }, clock: Clock): Promise<void> {
  await retry(
    async () => {
      try {
        await container.remove({ force: true, v: true, abortSignal: AbortSignal.timeout(timeouts.http) });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
    },
    { deadline: clock.now() + timeouts.containerStop, initialDelayMs: 100, maxDelayMs: 1000, clock },
  );
}

/** Prepares a hijacked Engine stream for long-lived use. */
export function adoptHijacked(stream: Duplex): Duplex {
  if (stream instanceof Socket) {
    // The keep-alive agent gave this socket an idle timeout and may have unref'd it while pooled;
    // now it carries a program's I/O for as long as the program runs.
    stream.setTimeout(0);
    stream.ref();
    stream.setNoDelay(true);
  }
  // Errors also surface through the demuxer/exit path; never let one crash the process.
  stream.on('error', () => undefined);
  return stream;
}

export interface ExecStartBody {
  hijack: true;
  stdin: boolean;
  Detach: false;
  Tty: boolean;
  ConsoleSize?: [number, number];
  abortSignal?: AbortSignal;
}

export async function startExecHijacked(exec: Docker.Exec, body: ExecStartBody): Promise<Duplex> {
  // dockerode's typings omit ConsoleSize (Engine API 1.42+); the body is sent as JSON unchanged.
  const stream = (await exec.start(body as Docker.ExecStartOptions)) as Duplex;
  return adoptHijacked(stream);
}

export async function attachHijacked(container: Docker.Container, signal: AbortSignal): Promise<Duplex> {
  // Not container.attach(): dockerode sends its query options again as a JSON request body, and
  // Podman passes that body on to the program's stdin (Docker happens to drop it). An empty body
  // (Content-Length: 0) is what the docker CLI sends.
  const stream = await new Promise<Duplex>((resolve, reject) => {
    container.modem.dial(
      {
        path: `/containers/${container.id}/attach?`,
        method: 'POST',
        options: { stream: true, stdin: true, stdout: true, stderr: true },
        file: Buffer.alloc(0),
        hijack: true,
        isStream: true,
        openStdin: false,
        abortSignal: signal,
        statusCodes: { 101: true, 200: true, 400: 'bad parameter', 404: 'no such container', 409: 'container is paused', 500: 'server error' },
      },
      (err: unknown, socket: unknown) => (err ? reject(err) : resolve(socket as Duplex)),
    );
  });
  return adoptHijacked(stream);
}

/**
 * An exec's exit code, read after its stream ended. The Engine may report `Running: true` /
 * `ExitCode: null` for a moment after the stream closes, so poll briefly.
 */
export async function execExitCode(exec: Docker.Exec, deadlineMs: number, timeouts: { http: number }, clock: Clock): Promise<number> {
  return retry(
    async () => {
      const info = await exec.inspect({ abortSignal: AbortSignal.timeout(timeouts.http) } as Docker.ExecInspectOptions);
      if (info.Running || info.ExitCode === null || info.ExitCode === undefined) throw new Error('exec still running');
      return info.ExitCode;
    },
    // The Engine records the exit a moment after the stream's EOF; a short first pause keeps
    // that moment off every command's latency (each inspect costs ~1 ms on a local socket).
    { deadline: deadlineMs, initialDelayMs: 2, maxDelayMs: 200, clock, retryable: (err) => !isNotFound(err) },
  );
}

export interface ShortExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout as bytes (up to `outputLimit`). */
  readonly stdoutBytes: Buffer;
  /** stdout was longer than `outputLimit` (the rest was read and dropped). */
  readonly truncated: boolean;
}

const SHORT_EXEC_OUTPUT_LIMIT = 64 * 1024;

export interface ExecStreamOptions {
  readonly user: string;
  /** Attach stdin (the caller writes it through `stream`). */
  readonly stdin: boolean;
  readonly signal: AbortSignal;
  /** Sees stdout first (e.g. to take a marker line off it). */
  readonly stdoutFilter?: StdoutFilter;
}

export interface ExecStream {
  readonly exec: Docker.Exec;
  /** The hijacked stream: stdin goes in, the framed output comes out (read it through `demux`). */
  readonly stream: Duplex;
  readonly demux: DockerStreamDemuxer;
}

/** Creates and starts a non-TTY `docker exec` with its hijacked stream, demultiplexed. */
export async function startExecStream(container: Docker.Container, cmd: readonly string[], options: ExecStreamOptions): Promise<ExecStream> {
  const exec = await container.exec({
    Cmd: [...cmd],
    AttachStdin: options.stdin,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    ...(options.user ? { User: options.user } : {}),
    abortSignal: options.signal,
  });
  const stream = await startExecHijacked(exec, { hijack: true, stdin: options.stdin, Detach: false, Tty: false, abortSignal: options.signal });
  return { exec, stream, demux: new DockerStreamDemuxer(stream, { multiplexed: true, ...(options.stdoutFilter ? { stdoutFilter: options.stdoutFilter } : {}) }) };
}

/**
 * Runs a short helper command (signal delivery, file writing) to completion and returns its exit
 * code and (capped) output. Optional stdin is written and closed.
 */
export async function runShortExec(
  container: Docker.Container,
  cmd: readonly string[],
  options: {
    user: string;
    stdin?: Buffer;
    timeoutMs: number;
    signal?: AbortSignal;
    timeouts: { http: number };
    clock: Clock;
    /** stdout bytes kept (default 64 KiB); stderr is always capped at 64 KiB. */
    outputLimit?: number;
  },
): Promise<ShortExecResult> {
  const signal = callSignal(options.timeoutMs, options.signal);
  const { exec, stream, demux } = await startExecStream(container, cmd, { user: options.user, stdin: options.stdin !== undefined, signal });
  const out = collect(demux.stdout, options.outputLimit ?? SHORT_EXEC_OUTPUT_LIMIT);
  const err = collect(demux.stderr, SHORT_EXEC_OUTPUT_LIMIT);
  const onAbort = () => stream.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (options.stdin !== undefined) stream.end(options.stdin);
    await demux.finished;
    if (signal.aborted) throw signal.reason;
    const exitCode = await execExitCode(exec, options.clock.now() + options.timeoutMs, options.timeouts, options.clock);
    const stdout = await out;
    return { exitCode, stdout: stdout.bytes.toString('utf8'), stdoutBytes: stdout.bytes, truncated: stdout.truncated, stderr: (await err).bytes.toString('utf8') };
  } finally {
    signal.removeEventListener('abort', onAbort);
    stream.destroy();
  }
}

async function collect(readable: NodeJS.ReadableStream, limit: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of readable) {
    const buf = chunk as Buffer;
    if (size < limit) chunks.push(buf);
    size += buf.length;
  }
  return { bytes: Buffer.concat(chunks).subarray(0, limit), truncated: size > limit };
}

/** Whether the container was OOM-killed (false when it cannot be inspected any more). */
export async function wasOomKilled(container: Docker.Container, timeouts: { http: number }): Promise<boolean> {
  try {
    const info = await container.inspect({ abortSignal: AbortSignal.timeout(timeouts.http) });
    return info.State.OOMKilled === true;
  } catch {
    return false;
  }
}

/** Engine errors that mean "the container/exec is gone", where a best-effort call may give up. */
export function isGone(err: unknown): boolean {
  const status = statusCodeOf(err);
  return status === 404 || status === 409;
}

export function startFailure(err: unknown, what: string, details: Record<string, unknown>): AirlockError {
  return mapEngineError(err, 'CONTAINER_START_FAILED', what, details);
}
