import { Readable, Writable } from 'node:stream';
import type WebSocket from 'ws';
import type { StdoutFilter } from '../docker/stream-demux.js';
import type { KubeWebSocketConnector } from './kube-client.js';

/**
 * One `pods/exec` over the websocket channel protocol (v5.channel.k8s.io preferred, v4 accepted).
 * Every message is a channel byte + payload: 0 stdin, 1 stdout, 2 stderr, 3 status (a
 * metav1.Status JSON: `Success`, or `Failure` with reason `NonZeroExitCode` and the code in the
 * `ExitCode` cause), 4 resize (`{"Width":w,"Height":h}`); v5 adds 255 = close a stream, which is
 * how stdin gets EOF without closing the socket. Under v4 there is no such message: closing the
 * socket would lose the rest of the output and the status, so EOF is not forwarded (the program
 * sees EOF only when it ends) — API servers before v1.30 only speak v4.
 *
 * Our own handler instead of client-node's WebSocketHandler: that one copies every frame, writes
 * to process.stdout/stderr by default and ignores backpressure. Here payloads are pushed as views
 * of the received message; when stdout or stderr is full the socket is paused (TCP then slows the
 * API server and the program down) and resumed once read; stdin writes wait for the socket's send
 * buffer to drain. `finished` resolves after the socket closed and both outputs ended.
 */
export type ExecStatus =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'error'; readonly message: string }
  /** The socket closed without a status (pod deleted, connection lost). */
  | { readonly kind: 'none'; readonly message: string };

export interface ExecTarget {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
}

export interface ExecOpenOptions extends ExecTarget {
  readonly command: readonly string[];
  readonly tty: boolean;
  readonly stdin: boolean;
  /** Sees stdout first (strips the PID marker line). */
  readonly stdoutFilter?: StdoutFilter;
  readonly signal?: AbortSignal;
  readonly highWaterMark?: number;
}

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const RESIZE = 4;
const CLOSE = 255;
const SEND_HIGH_WATER = 256 * 1024;

export function execPath(options: ExecOpenOptions): string {
  const query = new URLSearchParams();
  for (const arg of options.command) query.append('command', arg);
  query.set('container', options.container);
  query.set('stdin', String(options.stdin));
  query.set('stdout', 'true');
  // The kubelet drops stderr with a tty (both go to the terminal).
  query.set('stderr', String(!options.tty));
  query.set('tty', String(options.tty));
  return `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods/${encodeURIComponent(options.pod)}/exec?${query.toString()}`;
}

/** Reads the status channel's metav1.Status. */
export function parseExecStatus(text: string): ExecStatus {
  let status: { status?: unknown; reason?: unknown; message?: unknown; details?: { causes?: Array<{ reason?: unknown; message?: unknown }> } };
  try {
    status = JSON.parse(text) as typeof status;
  } catch {
    return { kind: 'error', message: text.slice(0, 500) };
  }
  if (status.status === 'Success') return { kind: 'exit', code: 0 };
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code) && code >= 0) return { kind: 'exit', code };
  }
  return { kind: 'error', message: typeof status.message === 'string' ? status.message : text.slice(0, 500) };
}

export class ExecStream {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  readonly finished: Promise<ExecStatus>;
  #ws: WebSocket | undefined;
  #filter: StdoutFilter | undefined;
  #status: ExecStatus | undefined;
  #blocked = 0;
  #paused = false;
  #done = false;
  #closeReason = 'the exec stream closed without an exit status';
  #resolveFinished!: (status: ExecStatus) => void;

  /** Opens the exec; rejects (KubeHttpError with the server's Status) when the server refuses. */
  static async open(connector: KubeWebSocketConnector, options: ExecOpenOptions): Promise<ExecStream> {
    const stream = new ExecStream(options);
    const ws = await connector.connect(execPath(options), null, (channel, payload) => stream.#onFrame(channel, payload), options.signal);
    stream.#attach(ws);
    return stream;
  }

  private constructor(options: ExecOpenOptions) {
    const hwm = options.highWaterMark ?? 64 * 1024;
    this.#filter = options.stdoutFilter;
    this.stdout = new Readable({ highWaterMark: hwm, read: () => this.#wake(STDOUT) });
    this.stderr = new Readable({ highWaterMark: hwm, read: () => this.#wake(STDERR) });
    this.stdout.once('close', () => this.#wake(STDOUT));
    this.stderr.once('close', () => this.#wake(STDERR));
    if (options.tty) this.stderr.push(null);
    this.stdin = this.#stdinWriter(!options.tty);
    this.finished = new Promise((resolve) => {
      this.#resolveFinished = resolve;
    });
  }

  /** The negotiated subprotocol ("v5.channel.k8s.io" or "v4.channel.k8s.io"). */
  get protocol(): string {
    return this.#ws?.protocol ?? '';
  }

  /** Sends a terminal size (tty only; the kubelet ignores it otherwise). */
  resize(cols: number, rows: number): void {
    this.#send(RESIZE, Buffer.from(JSON.stringify({ Width: cols, Height: rows })));
  }

  /** Drops the socket at once (the program may keep running; see KubeProcess.kill). */
  destroy(): void {
    this.#closeReason = 'the exec stream was closed by the gateway';
    this.#ws?.terminate();
    this.#finish();
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    if (this.#blocked !== 0 && !this.#paused) {
      this.#paused = true;
      ws.pause();
    }
    ws.once('close', (code: number, reason: Buffer) => {
      if (code !== 1000 && code !== 1005) this.#closeReason = `the exec stream closed (websocket code ${code}${reason.length ? `: ${reason.toString('utf8')}` : ''})`;
      this.#finish();
    });
    ws.on('error', (err: Error) => {
      this.#closeReason = `the exec stream failed: ${err.message}`;
    });
    if (ws.readyState !== ws.OPEN) this.#finish();
  }

  #onFrame(channel: number, payload: Buffer): boolean {
    if (this.#done) return true;
    switch (channel) {
      case STDOUT:
        this.#deliver(STDOUT, payload);
        break;
      case STDERR:
        this.#deliver(STDERR, payload);
        break;
      case STATUS:
        // An empty message on a channel only says "ready" (remotecommand/websocket.go).
        if (payload.length > 0) this.#status = parseExecStatus(payload.toString('utf8'));
        break;
      case CLOSE:
        if (payload[0] === STDOUT) this.#endOutput(this.stdout);
        if (payload[0] === STDERR) this.#endOutput(this.stderr);
        break;
      default:
        break;
    }
    return true;
  }

  #deliver(target: typeof STDOUT | typeof STDERR, bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (target === STDOUT && this.#filter) {
      const passed = this.#filter.feed(bytes);
      if (this.#filter.passthrough) this.#filter = undefined;
      if (!passed || passed.length === 0) return;
      bytes = passed;
    }
    const out = target === STDOUT ? this.stdout : this.stderr;
    if (out.destroyed || out.readableEnded) return;
    if (!out.push(bytes)) {
      this.#blocked |= target;
      if (this.#ws && !this.#paused) {
        this.#paused = true;
        this.#ws.pause();
      }
    }
  }

  #wake(target: typeof STDOUT | typeof STDERR): void {
    this.#blocked &= ~target;
    if (this.#blocked === 0 && this.#paused && !this.#done) {
      this.#paused = false;
      this.#ws?.resume();
    }
  }

  #endOutput(out: Readable): void {
    if (out === this.stdout && this.#filter) {
      const held = this.#filter.flush();
      this.#filter = undefined;
      if (held && held.length > 0 && !out.destroyed) out.push(held);
    }
    if (!out.destroyed && !out.readableEnded) out.push(null);
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#endOutput(this.stdout);
    this.#endOutput(this.stderr);
    this.#resolveFinished(this.#status ?? { kind: 'none', message: this.#closeReason });
  }

  #send(channel: number, payload: Buffer, callback?: (err?: Error) => void): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== ws.OPEN) return false;
    const frame = Buffer.allocUnsafe(payload.length + 1);
    frame[0] = channel;
    payload.copy(frame, 1);
    ws.send(frame, callback);
    return true;
  }

  /**
   * With a tty, EOF is not forwarded (as in the Docker backend and OpenSSH): closing a terminal's
   * input can tear the terminal down; the user types ^D instead.
   */
  #stdinWriter(forwardEof: boolean): Writable {
    return new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        const ws = this.#ws;
        // Input for a program that is gone is dropped, as OpenSSH does.
        if (!ws || ws.readyState !== ws.OPEN) return callback();
        let called = false;
        const done = () => {
          if (called) return;
          called = true;
          callback();
        };
        // Continue at once while the socket's send buffer is small; else when this frame is out.
        this.#send(STDIN, chunk, done);
        if (ws.bufferedAmount < SEND_HIGH_WATER) done();
      },
      final: (callback) => {
        // v5: close only stdin; v4 has no way to (see the class comment).
        if (forwardEof && this.protocol === 'v5.channel.k8s.io') this.#send(CLOSE, Buffer.from([STDIN]));
        callback();
      },
    });
  }
}
