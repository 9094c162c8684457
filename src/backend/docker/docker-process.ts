import type { Duplex, Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ExitStatus, Process, PtySpec } from '../backend.js';
import { AirlockError } from '../../core/errors.js';
import { mapEngineError } from './engine-errors.js';
import { isGone } from './engine-ops.js';
import type { DockerTimeouts } from './options.js';
import { PidMarkerFilter, type MarkerResult } from './pid-marker.js';
import { isSignalName, toExitStatus, type SignalName } from './signals.js';
import { createStdinWriter } from './stdin-writer.js';
import { DockerStreamDemuxer } from './stream-demux.js';
import { TIMED_OUT, within } from './timing.js';

/**
 * What differs between a `docker exec` (connection mode) and a container's main process
 * (session mode): how signals, resizes and the final kill are delivered and where the exit code
 * comes from. Everything else — stream plumbing, PID marker, resize ordering, exit mapping,
 * kill semantics — is shared in DockerProcess.
 */
export interface ProcessDriver {
  /** true when signals need the program's PID (exec); false when the Engine can signal it. */
  readonly needsPid: boolean;
  deliver(name: SignalName, pid: number | undefined): Promise<void>;
  resize(cols: number, rows: number, signal: AbortSignal): Promise<void>;
  /** Ends the program for good (SIGKILL); best effort. */
  terminate(pid: number | undefined): Promise<void>;
  /** Called once the output stream has ended. */
  exitCode(): Promise<{ code: number; oomKilled: boolean }>;
}

export interface DockerProcessInit {
  readonly stream: Duplex;
  readonly pty: PtySpec | undefined;
  /** Set when the program was started through the marker wrapper. */
  readonly markerNonce: string | undefined;
  readonly driver: ProcessDriver;
  readonly timeouts: DockerTimeouts;
  readonly logger: Logger;
}

const noop = (): void => undefined;

interface Size {
  readonly cols: number;
  readonly rows: number;
}

export class DockerProcess implements Process {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitStatus>;

  readonly #stream: Duplex;
  readonly #driver: ProcessDriver;
  readonly #timeouts: DockerTimeouts;
  readonly #logger: Logger;
  readonly #pty: PtySpec | undefined;
  readonly #marker: Promise<MarkerResult | undefined>;
  readonly #delivered = new Set<SignalName>();
  #wanted: Size | undefined;
  #applied: Size | undefined;
  #resizeChain: Promise<void> = Promise.resolve();
  #ended = false;
  #killing: Promise<void> | undefined;

  constructor(init: DockerProcessInit) {
    this.#stream = init.stream;
    this.#driver = init.driver;
    this.#timeouts = init.timeouts;
    this.#logger = init.logger;
    this.#pty = init.pty;
    let filter: PidMarkerFilter | undefined;
    if (init.markerNonce !== undefined) {
      const nonce = init.markerNonce;
      this.#marker = new Promise((resolve) => {
        filter = new PidMarkerFilter(nonce, resolve);
      });
    } else {
      this.#marker = Promise.resolve(undefined);
    }
    const demux = new DockerStreamDemuxer(init.stream, { multiplexed: !init.pty, ...(filter ? { stdoutFilter: filter } : {}) });
    this.stdout = demux.stdout;
    this.stderr = demux.stderr;
    this.stdin = createStdinWriter(init.stream, !init.pty);
    if (init.pty) {
      const initial = { cols: init.pty.cols, rows: init.pty.rows };
      this.#wanted = initial;
      // The wrapper sized the terminal itself when `stty` worked; otherwise (or if a resize came
      // in meanwhile) apply the size now that the program is about to run.
      void this.#marker.then((result) => {
        if (result?.sizeSet) this.#applied = initial;
        this.#queueResize().catch((err: unknown) => this.#logger.debug({ err }, 'initial terminal size not applied'));
      });
    }
    this.exited = this.#waitExit(demux);
    this.exited.catch(noop);
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.#pty) return;
    this.#wanted = { cols, rows };
    return this.#queueResize();
  }

  async signal(name: string): Promise<void> {
    if (!isSignalName(name)) {
      throw new AirlockError('SIGNAL_FAILED', `signal "${name}" is not one of the RFC 4254 signal names`, { details: { signal: name } });
    }
    if (this.#ended) throw new AirlockError('SIGNAL_FAILED', 'the program has already ended', { details: { signal: name } });
    const pid = this.#driver.needsPid ? await this.#pid() : undefined;
    // Recorded before delivery: the exit code may be read before the delivery call returns.
    const already = this.#delivered.has(name);
    this.#delivered.add(name);
    try {
      await this.#driver.deliver(name, pid);
      this.#logger.debug({ signal: name, pid }, 'signal delivered');
    } catch (err) {
      if (!already) this.#delivered.delete(name);
      throw mapEngineError(err, 'SIGNAL_FAILED', `delivering SIG${name}`, { signal: name });
    }
  }

  kill(): Promise<void> {
    this.#killing ??= this.#kill();
    return this.#killing;
  }

  /** The connection is being torn down (its containers are about to go): report KILL. */
  markKilled(): void {
    this.#delivered.add('KILL');
  }

  async #kill(): Promise<void> {
    if (this.#ended) return;
    this.#delivered.add('KILL');
    let pid: number | undefined;
    if (this.#driver.needsPid) {
      const marker = await within(this.#marker, this.#timeouts.signal);
      pid = marker === TIMED_OUT ? undefined : marker?.pid;
    }
    try {
      await this.#driver.terminate(pid);
    } catch (err) {
      if (!isGone(err)) this.#logger.debug({ err }, 'terminate failed; closing the stream');
    }
    const settled = this.exited.then(noop, noop);
    if ((await within(settled, this.#timeouts.signal)) === TIMED_OUT) {
      // Something still holds the output open (an orphan in connection mode): stop listening.
      this.#stream.destroy();
      await settled;
    }
  }

  async #pid(): Promise<number> {
    const marker = await within(this.#marker, this.#timeouts.signal);
    if (marker === TIMED_OUT || marker === undefined) {
      throw new AirlockError('SIGNAL_FAILED', "the program's PID is unknown (the image needs /bin/sh for signals in connection mode)");
    }
    return marker.pid;
  }

  #queueResize(): Promise<void> {
    const run = this.#resizeChain.then(() => this.#applySize());
    this.#resizeChain = run.catch(noop);
    return run;
  }

  async #applySize(): Promise<void> {
    // Before the marker the wrapper has not exec'd the program yet; a resize now could be
    // overtaken by the wrapper's own `stty`.
    await within(this.#marker, this.#timeouts.window);
    const want = this.#wanted;
    if (this.#ended || !want) return;
    if (this.#applied && this.#applied.cols === want.cols && this.#applied.rows === want.rows) return;
    try {
      await this.#driver.resize(want.cols, want.rows, AbortSignal.timeout(this.#timeouts.window));
      this.#applied = want;
    } catch (err) {
      if (this.#ended || isGone(err)) return;
      throw mapEngineError(err, 'EXEC_FAILED', 'resizing the terminal', { cols: want.cols, rows: want.rows });
    }
  }

  async #waitExit(demux: DockerStreamDemuxer): Promise<ExitStatus> {
    try {
      await demux.finished;
      try {
        const { code, oomKilled } = await this.#driver.exitCode();
        return toExitStatus(code, this.#delivered, oomKilled);
      } catch (err) {
        if (this.#delivered.has('KILL')) return { kind: 'signal', signal: 'KILL', coreDumped: false };
        throw mapEngineError(err, 'EXEC_FAILED', 'reading the exit status');
      }
    } finally {
      this.#ended = true;
      this.#stream.destroy();
    }
  }
}
