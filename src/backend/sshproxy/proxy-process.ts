import { PassThrough, Writable, type Readable } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import type { ExitStatus, Process } from '../backend.js';
import { AirlockError } from '../../core/errors.js';

/** RFC 4254 §6.10's signal names (what OpenSSH's sshd accepts in a "signal" request). */
const SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/**
 * ssh2's ClientChannel.signal() and setWindow() silently do nothing once our side has sent EOF
 * (they check `writable`), but RFC 4254 allows channel requests until the channel is closed — a
 * user who closed stdin (`ssh host cmd < file`) must still be able to interrupt the program, and
 * kill() must reach it. So the requests go through the channel's protocol object while the
 * channel is open or half-closed by us.
 */
interface ChannelInternals {
  readonly outgoing?: { readonly id: number; readonly state: string };
  readonly _client?: {
    readonly _protocol?: {
      signal(id: number, name: string): void;
      windowChange(id: number, rows: number, cols: number, height: number, width: number): void;
    };
  };
}

function channelRequests(channel: ClientChannel) {
  const internals = channel as unknown as ChannelInternals;
  const usable = () => {
    const state = internals.outgoing?.state;
    return state === 'open' || state === 'eof';
  };
  const protocol = internals._client?._protocol;
  const id = internals.outgoing?.id;
  return {
    signal(name: string): boolean {
      if (!usable()) return false;
      if (protocol && id !== undefined) protocol.signal(id, name);
      else channel.signal(name);
      return true;
    },
    windowChange(cols: number, rows: number): boolean {
      if (!usable()) return false;
      if (protocol && id !== undefined) protocol.windowChange(id, rows, cols, 0, 0);
      else channel.setWindow(rows, cols, 0, 0);
      return true;
    },
  };
}

/**
 * A program on the upstream server: one session channel of the upstream connection. Bytes pass
 * through with backpressure (stdout/stderr are piped into bounded PassThroughs; stdin waits for
 * the channel's 'drain'); `stdin.end()` sends EOF, also with a pty (as `ssh -J` would). The exit
 * status and signal come from the upstream's exit-status / exit-signal requests.
 */
export class ProxyProcess implements Process {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitStatus>;

  readonly #channel: ClientChannel;
  readonly #requests: ReturnType<typeof channelRequests>;
  readonly #pty: boolean;
  readonly #killTimeoutMs: number;
  readonly #outputs: readonly [PassThrough, PassThrough];
  #exit: ExitStatus | undefined;
  #killed = false;
  #killing: Promise<void> | undefined;
  #ended = false;

  constructor(channel: ClientChannel, options: { pty: boolean; killTimeoutMs: number }) {
    this.#channel = channel;
    this.#requests = channelRequests(channel);
    this.#pty = options.pty;
    this.#killTimeoutMs = options.killTimeoutMs;
    const stdout = new PassThrough({ highWaterMark: 64 * 1024 });
    const stderr = new PassThrough({ highWaterMark: 64 * 1024 });
    channel.pipe(stdout);
    channel.stderr.pipe(stderr);
    this.stdout = stdout;
    this.stderr = stderr;
    this.#outputs = [stdout, stderr];
    channel.on('error', () => undefined);
    channel.stderr.on('error', () => undefined);
    channel.on('exit', (code: number | null, signal?: string, coreDumped?: boolean) => {
      this.#exit =
        typeof code === 'number'
          ? { kind: 'code', code }
          : { kind: 'signal', signal: (signal ?? 'KILL').replace(/^SIG/, ''), coreDumped: coreDumped === true };
    });
    // ssh2 emits the channel's 'close' after its stdout 'end'; stderr ends on its own. Either one
    // ending means every byte of it has been handed to our output (the pipes' backpressure).
    const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    const stderrDone = new Promise<void>((resolve) => {
      channel.stderr.once('end', () => resolve());
      channel.stderr.once('close', () => resolve());
    });
    this.stdin = this.#stdinWriter();
    this.exited = this.#waitExit(closed, stderrDone);
    this.exited.catch(() => undefined);
  }

  async resize(cols: number, rows: number): Promise<void> {
    // window-change has no reply (RFC 4254 §6.7); the upstream applies it in order with the data.
    if (this.#pty) this.#requests.windowChange(cols, rows);
  }

  async signal(name: string): Promise<void> {
    if (!SIGNALS.has(name)) {
      throw new AirlockError('SIGNAL_FAILED', `signal "${name}" is not one of the RFC 4254 signal names`, { details: { signal: name } });
    }
    if (this.#ended || !this.#requests.signal(name)) {
      throw new AirlockError('SIGNAL_FAILED', 'the program has already ended', { details: { signal: name } });
    }
  }

  /**
   * KILL first: OpenSSH's sshd does not end a program without a pty when its channel closes (the
   * program would run on, orphaned, until it touches its closed output). Then close the channel.
   * If the upstream does not finish the close, or nobody reads the remaining output (the user
   * is gone), the channel is destroyed after `killTimeoutMs`.
   */
  kill(): Promise<void> {
    this.#killing ??= this.#kill();
    return this.#killing;
  }

  async #kill(): Promise<void> {
    if (this.#ended) return;
    this.#killed = true;
    this.#requests.signal('KILL');
    this.#channel.close();
    const settled = this.exited.then(
      () => 'done' as const,
      () => 'done' as const,
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, this.#killTimeoutMs, 'timeout')));
    const outcome = await Promise.race([settled, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#channel.unpipe(this.#outputs[0]);
      this.#channel.stderr.unpipe(this.#outputs[1]);
      this.#channel.stderr.destroy();
      this.#channel.destroy();
      for (const out of this.#outputs) if (!out.writableEnded) out.end();
      await settled;
    }
  }

  async #waitExit(closed: Promise<void>, stderrDone: Promise<void>): Promise<ExitStatus> {
    try {
      await Promise.all([closed, stderrDone]);
    } finally {
      this.#ended = true;
    }
    if (this.#exit) return this.#exit;
    if (this.#killed) return { kind: 'signal', signal: 'KILL', coreDumped: false };
    throw new AirlockError('EXEC_FAILED', 'the upstream closed the session without an exit status (connection lost?)', {
      userMessage: 'the connection to the upstream SSH server was lost',
    });
  }

  #stdinWriter(): Writable {
    const channel = this.#channel;
    const gone = () => channel.destroyed || channel.writableEnded || this.#ended;
    return new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        // Input for a program that has ended is dropped, as OpenSSH does.
        if (gone()) return callback();
        if (channel.write(chunk)) return callback();
        const done = () => {
          channel.off('drain', done);
          channel.off('close', done);
          callback();
        };
        channel.on('drain', done);
        channel.on('close', done);
      },
      final(callback) {
        if (!gone()) channel.end();
        callback();
      },
    });
  }
}
