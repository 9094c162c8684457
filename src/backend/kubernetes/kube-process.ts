import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ExitStatus, Process, PtySpec } from '../backend.js';
import { AirlockError } from '../../core/errors.js';
import { PidMarkerFilter, type MarkerResult } from '../docker/pid-marker.js';
import { isSignalName, toExitStatus, type SignalName } from '../docker/signals.js';
import { TIMED_OUT, within } from '../docker/timing.js';
import { killCommand, signalCommand } from './command.js';
import { ExecStream, type ExecOpenOptions } from './exec-stream.js';
import type { KubeWebSocketConnector } from './kube-client.js';
import { mapKubeError } from './kube-errors.js';
import type { KubernetesTimeouts } from './options.js';
import { runShortExec } from './short-exec.js';

/**
 * A program running as an exec in a pod. Like a `docker exec`, the API has no way to signal it:
 * the wrapper prints `airlock-pid <nonce> <pid>` before it `exec`s the program (shared with the
 * Docker backend, see ../docker/pid-marker.ts), the line is stripped from stdout, and a signal is
 * a second short exec of the shell's `kill -s SIG <pid>` in the same container.
 *
 * Exit status: the status channel carries the exit code; runc reports a signal death as 128+n,
 * so it is reported as signal n only when the gateway delivered n (the Docker heuristic). A stream
 * that ends without a status is a KILL when the gateway killed the program or deleted its pod,
 * else EXEC_FAILED.
 *
 * Terminal size: the wrapper runs `stty` with the initial size before the marker; resizes are
 * sent on channel 4 only after the marker, so the wrapper never overwrites a newer size.
 */
export interface KubeProcessInit extends Omit<ExecOpenOptions, 'stdoutFilter' | 'tty' | 'stdin'> {
  readonly connector: KubeWebSocketConnector;
  readonly pty: PtySpec | undefined;
  readonly markerNonce: string;
  readonly timeouts: KubernetesTimeouts;
  readonly logger: Logger;
}

const noop = (): void => undefined;

interface Size {
  readonly cols: number;
  readonly rows: number;
}

export class KubeProcess implements Process {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitStatus>;

  readonly #init: KubeProcessInit;
  readonly #stream: ExecStream;
  readonly #marker: Promise<MarkerResult | undefined>;
  readonly #delivered = new Set<SignalName>();
  #wanted: Size | undefined;
  #applied: Size | undefined;
  #ended = false;
  #killing: Promise<void> | undefined;

  /** Opens the exec; the returned process is running (or has already failed to start). */
  static async start(init: KubeProcessInit): Promise<KubeProcess> {
    let resolveMarker!: (result: MarkerResult | undefined) => void;
    const marker = new Promise<MarkerResult | undefined>((resolve) => {
      resolveMarker = resolve;
    });
    const filter = new PidMarkerFilter(init.markerNonce, resolveMarker);
    let stream: ExecStream;
    try {
      stream = await ExecStream.open(init.connector, { ...init, tty: init.pty !== undefined, stdin: true, stdoutFilter: filter });
    } catch (err) {
      throw mapKubeError(err, 'EXEC_FAILED', 'starting the program', { pod: init.pod });
    }
    return new KubeProcess(init, stream, marker);
  }

  private constructor(init: KubeProcessInit, stream: ExecStream, marker: Promise<MarkerResult | undefined>) {
    this.#init = init;
    this.#stream = stream;
    this.#marker = marker;
    this.stdin = stream.stdin;
    this.stdout = stream.stdout;
    this.stderr = stream.stderr;
    if (init.pty) {
      const initial = { cols: init.pty.cols, rows: init.pty.rows };
      this.#wanted = initial;
      void marker.then((result) => {
        if (result?.sizeSet) this.#applied = initial;
        this.#applySize();
      });
    }
    this.exited = this.#waitExit();
    this.exited.catch(noop);
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.#init.pty) return;
    this.#wanted = { cols, rows };
    // Before the marker the wrapper has not exec'd the program yet; its own stty comes first.
    if ((await within(this.#marker, this.#init.timeouts.window)) === TIMED_OUT) return;
    this.#applySize();
  }

  async signal(name: string): Promise<void> {
    if (!isSignalName(name)) {
      throw new AirlockError('SIGNAL_FAILED', `signal "${name}" is not one of the RFC 4254 signal names`, { details: { signal: name } });
    }
    if (this.#ended) throw new AirlockError('SIGNAL_FAILED', 'the program has already ended', { details: { signal: name } });
    const pid = await this.#pid();
    // Recorded before delivery: the exit status may arrive before the kill exec returns.
    const already = this.#delivered.has(name);
    this.#delivered.add(name);
    try {
      const result = await runShortExec(this.#init.connector, this.#init, signalCommand(name, pid), { timeoutMs: this.#init.timeouts.signal });
      if (result.status.kind !== 'exit' || result.status.code !== 0) {
        throw new AirlockError('SIGNAL_FAILED', `kill -s ${name} ${pid} failed: ${result.stderr.trim() || JSON.stringify(result.status)}`, { details: { signal: name, pid } });
      }
      this.#init.logger.debug({ signal: name, pid }, 'signal delivered');
    } catch (err) {
      if (!already) this.#delivered.delete(name);
      throw mapKubeError(err, 'SIGNAL_FAILED', `delivering SIG${name}`, { signal: name });
    }
  }

  kill(): Promise<void> {
    this.#killing ??= this.#kill();
    return this.#killing;
  }

  /** The pod is being deleted: report KILL for a stream that ends without a status. */
  markKilled(): void {
    this.#delivered.add('KILL');
  }

  /**
   * The program's pod is being deleted, which ends it: wait for the stream to end (at most
   * `timeouts.signal`), then stop listening.
   */
  async release(): Promise<void> {
    this.markKilled();
    const settled = this.exited.then(noop, noop);
    if ((await within(settled, this.#init.timeouts.signal)) === TIMED_OUT) {
      this.#stream.destroy();
      await settled;
    }
  }

  async #kill(): Promise<void> {
    if (this.#ended) return;
    this.#delivered.add('KILL');
    const marker = await within(this.#marker, this.#init.timeouts.signal);
    const pid = marker === TIMED_OUT ? undefined : marker?.pid;
    if (pid !== undefined) {
      await runShortExec(this.#init.connector, this.#init, killCommand(pid), { timeoutMs: this.#init.timeouts.signal }).catch((err: unknown) =>
        this.#init.logger.debug({ err }, 'kill exec failed; closing the stream'),
      );
    }
    const settled = this.exited.then(noop, noop);
    if ((await within(settled, this.#init.timeouts.signal)) === TIMED_OUT) {
      // An orphan still holds the output open: stop listening.
      this.#stream.destroy();
      await settled;
    }
  }

  async #pid(): Promise<number> {
    const marker = await within(this.#marker, this.#init.timeouts.signal);
    if (marker === TIMED_OUT || marker === undefined) {
      throw new AirlockError('SIGNAL_FAILED', "the program's PID is unknown (the image needs /bin/sh for signals)");
    }
    return marker.pid;
  }

  #applySize(): void {
    const want = this.#wanted;
    if (this.#ended || !want) return;
    if (this.#applied && this.#applied.cols === want.cols && this.#applied.rows === want.rows) return;
    this.#stream.resize(want.cols, want.rows);
    this.#applied = want;
  }

  async #waitExit(): Promise<ExitStatus> {
    try {
      const status = await this.#stream.finished;
      if (status.kind === 'exit') return toExitStatus(status.code, this.#delivered, false);
      if (this.#delivered.has('KILL')) return { kind: 'signal', signal: 'KILL', coreDumped: false };
      throw new AirlockError('EXEC_FAILED', status.kind === 'error' ? `the program could not run: ${status.message}` : status.message, {
        details: { pod: this.#init.pod },
      });
    } finally {
      this.#ended = true;
    }
  }
}
