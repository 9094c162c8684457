import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { AttributeChanges, DirectoryEntry, FileAttributes, FileReader, FileWriter, OpenWriteFlags, WorkloadFiles } from '../backend.js';
import { WorkloadFileError, fileErrorFromText } from '../file-error.js';
import type { Clock } from '../../core/clock.js';
import { mapEngineError } from './engine-errors.js';
import { callSignal, execExitCode, runShortExec, startExecStream, type ExecStream, type ShortExecResult } from './engine-ops.js';
import {
  LIST_SCRIPT,
  LSTAT_SCRIPT,
  MKDIR_SCRIPT,
  READ_SCRIPT,
  READLINK_SCRIPT,
  REMOVE_SCRIPT,
  RENAME_SCRIPT,
  RMDIR_SCRIPT,
  SETSTAT_SCRIPT,
  STAT_SCRIPT,
  SYMLINK_SCRIPT,
  WRITE_SCRIPT,
  octalMode,
  parseListing,
  parseOpenLine,
  parseStatFields,
  scriptArgv,
  setstatArgs,
  writeFlagLetters,
} from './file-scripts.js';
import type { DockerTimeouts } from './options.js';
import { createStdinWriter } from './stdin-writer.js';
import type { StdoutFilter } from './stream-demux.js';

export interface DockerFilesDeps {
  /** A running container (the connection's, or one started for this channel in session mode). */
  readonly container: Docker.Container;
  /** Exec `User` — the session's user, so the kernel checks every permission. */
  readonly user: string;
  readonly home: string;
  readonly timeouts: DockerTimeouts;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  /** Runs once at close (session mode: removes the channel's container). */
  readonly release?: () => Promise<void>;
}

/** A directory listing larger than this is refused (the whole listing is read at OPENDIR). */
const LISTING_LIMIT = 32 * 1024 * 1024;
/** stderr kept from a streaming exec, for the error message. */
const STDERR_LIMIT = 4096;

/**
 * The file API of a Docker workload, for the gateway-side SFTP server: every operation is a
 * `docker exec` of a small POSIX script (file-scripts.ts) as the session's user — not the
 * archive API, whose reads and writes run as root in the Engine and would ignore the user's
 * permissions (and which cannot reach tmpfs mounts or write under a read-only root fs).
 *
 * Metadata operations are one short exec each. Reads and writes are one long-lived exec per
 * sequential run: `dd` streams the file out from an offset, or stdin into it at an offset,
 * through the hijacked stream with its backpressure; the caller (the SFTP server) reopens at a
 * new offset only when access is not sequential.
 */
export class DockerWorkloadFiles implements WorkloadFiles {
  readonly home: string;
  readonly #deps: DockerFilesDeps;
  readonly #abort = new AbortController();
  readonly #streams = new Set<ActiveStream>();
  #closing: Promise<void> | undefined;

  constructor(deps: DockerFilesDeps) {
    this.#deps = deps;
    this.home = deps.home;
  }

  async stat(path: string): Promise<FileAttributes> {
    return this.#statWith(STAT_SCRIPT, path);
  }

  async lstat(path: string): Promise<FileAttributes> {
    return this.#statWith(LSTAT_SCRIPT, path);
  }

  async readdir(path: string): Promise<DirectoryEntry[]> {
    const result = await this.#run(LIST_SCRIPT, [path], LISTING_LIMIT);
    if (result.truncated) throw new WorkloadFileError('failure', 'the directory is too large to list');
    return parseListing(result.stdoutBytes);
  }

  async openRead(path: string, offset: number): Promise<FileReader> {
    const active = await this.#openStream(READ_SCRIPT, [path, offset], false);
    const attrs = active.attrs;
    if (!attrs) {
      await active.stop();
      throw new WorkloadFileError('failure', 'the file could not be examined');
    }
    return { stream: active.exec.demux.stdout, attrs, finished: active.finished, close: () => active.stop() };
  }

  async openWrite(path: string, flags: OpenWriteFlags, offset: number): Promise<FileWriter> {
    const active = await this.#openStream(WRITE_SCRIPT, [path, writeFlagLetters(flags), octalMode(flags.mode), offset], true);
    // Nothing comes out on stdout; keep it flowing so the demuxer never pauses for it.
    active.exec.demux.stdout.resume();
    const stdin = createStdinWriter(active.exec.stream, true);
    return {
      stream: stdin,
      finished: active.finished,
      close: async () => {
        if (!stdin.writableEnded) stdin.end();
        await active.finished;
      },
    };
  }

  async setstat(path: string, changes: AttributeChanges): Promise<void> {
    this.#check(await this.#run(SETSTAT_SCRIPT, [path, ...setstatArgs(changes)]));
  }

  async mkdir(path: string, mode?: number): Promise<void> {
    this.#check(await this.#run(MKDIR_SCRIPT, [path, octalMode(mode)]));
  }

  async rmdir(path: string): Promise<void> {
    this.#check(await this.#run(RMDIR_SCRIPT, [path]));
  }

  async remove(path: string): Promise<void> {
    this.#check(await this.#run(REMOVE_SCRIPT, [path]));
  }

  async rename(from: string, to: string): Promise<void> {
    this.#check(await this.#run(RENAME_SCRIPT, [from, to]));
  }

  async readlink(path: string): Promise<string> {
    const result = this.#check(await this.#run(READLINK_SCRIPT, [path]));
    return result.stdout.endsWith('\n') ? result.stdout.slice(0, -1) : result.stdout;
  }

  async symlink(target: string, linkPath: string): Promise<void> {
    this.#check(await this.#run(SYMLINK_SCRIPT, [target, linkPath]));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#abort.abort(new WorkloadFileError('failure', 'the session is closing'));
    await Promise.all([...this.#streams].map((s) => s.stop()));
    await this.#deps.release?.();
  }

  async #statWith(script: string, path: string): Promise<FileAttributes> {
    const result = this.#check(await this.#run(script, [path]));
    const attrs = parseStatFields(result.stdout);
    if (!attrs) throw new WorkloadFileError('failure', 'unexpected stat output');
    return attrs;
  }

  #check(result: ShortExecResult): ShortExecResult {
    if (result.exitCode !== 0) throw fileErrorFromText(result.stderr);
    return result;
  }

  async #run(script: string, args: ReadonlyArray<string | number | undefined>, outputLimit?: number): Promise<ShortExecResult> {
    const { container, user, timeouts, clock } = this.#deps;
    this.#throwIfClosing();
    try {
      return await runShortExec(container, scriptArgv(script, ...args), {
        user,
        timeoutMs: timeouts.commandStart,
        signal: AbortSignal.any([this.#abort.signal, this.#deps.signal]),
        timeouts,
        clock,
        ...(outputLimit !== undefined ? { outputLimit } : {}),
      });
    } catch (err) {
      throw this.#engineFailure(err);
    }
  }

  /** Starts a streaming script and waits for its open line (or its failure). */
  async #openStream(script: string, args: ReadonlyArray<string | number | undefined>, stdin: boolean): Promise<ActiveStream> {
    const { container, user, timeouts } = this.#deps;
    this.#throwIfClosing();
    const openLine = new OpenLineFilter();
    let exec: ExecStream;
    try {
      exec = await startExecStream(container, scriptArgv(script, ...args), {
        user,
        stdin,
        signal: callSignal(timeouts.commandStart, this.#abort.signal, this.#deps.signal),
        stdoutFilter: openLine,
      });
    } catch (err) {
      throw this.#engineFailure(err);
    }
    const active = new ActiveStream(exec, openLine, this.#deps);
    this.#streams.add(active);
    void active.finished.catch(() => undefined).then(() => this.#streams.delete(active));
    try {
      await active.opened;
    } catch (err) {
      await active.stop();
      throw err;
    }
    if (this.#closing) {
      await active.stop();
      this.#throwIfClosing();
    }
    return active;
  }

  #throwIfClosing(): void {
    if (this.#closing || this.#deps.signal.aborted) throw new WorkloadFileError('failure', 'the session is closing');
  }

  #engineFailure(err: unknown): WorkloadFileError {
    if (err instanceof WorkloadFileError) return err;
    const mapped = mapEngineError(err, 'EXEC_FAILED', 'a file operation');
    if (!this.#closing) this.#deps.logger.warn({ code: mapped.code, err: mapped }, 'file operation failed in the engine');
    return new WorkloadFileError('failure', 'the file operation could not run in the container', { cause: mapped });
  }
}

/**
 * Takes the scripts' open line (`airlock-open <pid> [<stat>]`, see file-scripts.ts) off the
 * front of stdout and passes everything after it through untouched.
 */
class OpenLineFilter implements StdoutFilter {
  passthrough = false;
  /** The parsed line, or undefined when stdout ended (or went on) without one. */
  readonly result: Promise<{ pid: number; attrs?: FileAttributes } | undefined>;
  #resolve!: (line: { pid: number; attrs?: FileAttributes } | undefined) => void;
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor() {
    this.result = new Promise((resolve) => (this.#resolve = resolve));
  }

  feed(chunk: Buffer): Buffer | undefined {
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    const all = this.#held.length === 1 ? chunk : Buffer.concat(this.#held, this.#heldBytes);
    this.#held = [all];
    const newline = all.indexOf(0x0a);
    if (newline < 0) {
      if (this.#heldBytes <= OPEN_LINE_LIMIT) return undefined;
      this.#done(undefined);
      return undefined;
    }
    this.#done(parseOpenLine(all.subarray(0, newline).toString('utf8')));
    return all.subarray(newline + 1);
  }

  flush(): Buffer | undefined {
    this.#done(undefined);
    return undefined;
  }

  #done(line: { pid: number; attrs?: FileAttributes } | undefined): void {
    this.passthrough = true;
    this.#held = [];
    this.#heldBytes = 0;
    this.#resolve(line);
  }
}

/** Longer than any open line (a pid and nine stat fields). */
const OPEN_LINE_LIMIT = 4096;

/**
 * One streaming exec (READ_SCRIPT or WRITE_SCRIPT): `opened` resolves on its open line and
 * rejects (with the tool's error) when it ended without one; `finished` resolves when it ended
 * well and rejects with the tool's error otherwise, unless we stopped it.
 */
class ActiveStream {
  readonly exec: ExecStream;
  readonly opened: Promise<void>;
  readonly finished: Promise<void>;
  pid: number | undefined;
  attrs: FileAttributes | undefined;
  readonly #deps: DockerFilesDeps;
  readonly #stderrDone: Promise<void>;
  #stderr = '';
  #stopped = false;
  #ended = false;

  constructor(exec: ExecStream, openLine: OpenLineFilter, deps: DockerFilesDeps) {
    this.exec = exec;
    this.#deps = deps;
    const stderr = exec.demux.stderr;
    stderr.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < STDERR_LIMIT) this.#stderr += chunk.toString('utf8');
    });
    this.#stderrDone = new Promise((resolve) => {
      stderr.once('end', resolve);
      stderr.once('close', resolve);
    });
    this.opened = openLine.result.then(async (line) => {
      if (line) {
        this.pid = line.pid;
        this.attrs = line.attrs;
        return;
      }
      // No open line: the script failed before opening the file; its message says why.
      await this.#stderrDone;
      throw fileErrorFromText(this.#stderr);
    });
    this.finished = this.#finish();
    this.opened.catch(() => undefined);
    this.finished.catch(() => undefined);
  }

  /** Ends the program early (KILL by PID: the Engine cannot signal an exec) and drops the stream. */
  async stop(): Promise<void> {
    if (!this.#ended && !this.#stopped) {
      this.#stopped = true;
      if (this.pid !== undefined) {
        const { container, user, timeouts, clock } = this.#deps;
        await runShortExec(container, ['/bin/sh', '-c', 'kill -s KILL "$1" 2>/dev/null', 'airlock-kill', String(this.pid)], {
          user,
          timeoutMs: timeouts.signal,
          timeouts,
          clock,
        }).catch(() => undefined);
      }
      this.exec.stream.destroy();
    }
    await this.finished.catch(() => undefined);
  }

  async #finish(): Promise<void> {
    const { timeouts, clock } = this.#deps;
    await this.exec.demux.finished;
    this.#ended = true;
    this.exec.stream.destroy();
    if (this.#stopped) return;
    let code: number;
    try {
      code = await execExitCode(this.exec.exec, clock.now() + timeouts.signal, timeouts, clock);
    } catch (err) {
      throw new WorkloadFileError('failure', 'the file transfer ended without a status', { cause: err });
    }
    if (code !== 0) {
      await this.#stderrDone;
      throw fileErrorFromText(this.#stderr);
    }
  }
}
