import { Readable } from 'node:stream';

/**
 * Splits the Engine's attach/exec stream into stdout and stderr, our own way because dockerode's
 * `modem.demuxStream` ignores backpressure and never ends its targets.
 *
 * Without a TTY the Engine frames every write: an 8-byte header (stream type, three zero bytes,
 * big-endian uint32 payload length) and the payload. With a TTY the bytes are raw and all go to
 * stdout. Small writes are joined into bigger pushes (see #collect); a lone payload is pushed as a
 * view of the socket's chunk (no copy), and a header split across chunks is assembled in a small
 * buffer. When either output's buffer is full the source is
 * paused, and it resumes once every full output has been read from — so a slow SSH channel slows
 * the program down instead of filling the gateway's memory. Both outputs end when the source
 * ends, fails or closes.
 */
export interface StdoutFilter {
  /** Bytes that may reach the user now (may be empty or undefined). */
  feed(chunk: Buffer): Buffer | undefined;
  /** True once the filter lets everything through; the demuxer then stops calling `feed`. */
  readonly passthrough: boolean;
  /** The source ended: whatever the filter still holds. */
  flush(): Buffer | undefined;
}

export interface DemuxOptions {
  /** true: the Engine's framed stream (no TTY); false: raw TTY bytes, all stdout. */
  readonly multiplexed: boolean;
  /** Sees stdout bytes first (used to strip the PID marker line). */
  readonly stdoutFilter?: StdoutFilter;
  readonly highWaterMark?: number;
}

const HEADER = 8;
/** Push at once when this much is gathered (bounds the copy and the memory between pushes). */
const MAX_BATCH = 256 * 1024;
/** A bulk transfer's pieces are pushed once this much is gathered (or BULK_WAIT_MS passed). */
const BULK_BATCH = 64 * 1024;
const BULK_WAIT_MS = 1;
/** Data arriving within this long of the last push counts as a bulk transfer. */
const BULK_GAP_MS = 2;
const STDOUT = 1;
const STDERR = 2;

export class DockerStreamDemuxer {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves when the source is done (end, error or close) and both outputs have been ended. */
  readonly finished: Promise<void>;
  /** The source's error, if it failed (the outputs still end normally). */
  error: Error | undefined;

  readonly #source: Readable;
  readonly #multiplexed: boolean;
  #filter: StdoutFilter | undefined;
  readonly #header = Buffer.alloc(HEADER);
  #headerFill = 0;
  #remaining = 0;
  #target: typeof STDOUT | typeof STDERR = STDOUT;
  #raw: boolean;
  /** Payload views not yet pushed (see #collect). */
  #batch: Buffer[] = [];
  #flushTimer: { readonly kind: 'timeout'; readonly handle: NodeJS.Timeout } | { readonly kind: 'immediate'; readonly handle: NodeJS.Immediate } | undefined;
  #lastPushAt = -Infinity;
  #batchBytes = 0;
  #batchTarget: typeof STDOUT | typeof STDERR = STDOUT;
  /** Bit set of outputs whose buffer is full (1 stdout, 2 stderr). */
  #blocked = 0;
  #pausedByUs = false;
  #done = false;
  #resolveFinished!: () => void;

  constructor(source: Readable, options: DemuxOptions) {
    this.#source = source;
    this.#multiplexed = options.multiplexed;
    this.#raw = !options.multiplexed;
    this.#filter = options.stdoutFilter;
    const hwm = options.highWaterMark ?? 64 * 1024;
    this.stdout = new Readable({ highWaterMark: hwm, read: () => this.#wake(STDOUT) });
    this.stderr = new Readable({ highWaterMark: hwm, read: () => this.#wake(STDERR) });
    // A consumer that destroys an output stops reading it; never let it block the other one.
    this.stdout.once('close', () => this.#wake(STDOUT));
    this.stderr.once('close', () => this.#wake(STDERR));
    this.finished = new Promise((resolve) => {
      this.#resolveFinished = resolve;
    });
    if (!this.#multiplexed) this.stderr.push(null);
    source.on('data', (chunk: Buffer) => this.#onData(chunk));
    source.once('end', () => this.#finish());
    source.once('close', () => this.#finish());
    source.on('error', (err: Error) => {
      this.error ??= err;
      this.#finish();
    });
    // The source may be done before we subscribe: Podman ends a session container's attach stream
    // as soon as a quick program exits, which can be before the process object exists. 'end' is
    // only emitted once the buffer is empty, so nothing unread is lost.
    if (source.readableEnded || source.destroyed) this.#finish();
  }

  #onData(chunk: Buffer): void {
    if (this.#done) return;
    if (this.#raw) this.#collect(STDOUT, chunk);
    else this.#parse(chunk);
    const now = performance.now();
    const bulk = now - this.#lastPushAt < BULK_GAP_MS;
    if (this.#batchBytes >= (bulk ? BULK_BATCH : MAX_BATCH)) {
      this.#flushBatch();
    } else if (this.#batch.length > 0 && this.#flushTimer === undefined) {
      // Interactive output (the first bytes after a pause) goes out this turn of the event
      // loop; in a bulk transfer, wait a moment for more so packets are big.
      this.#flushTimer = bulk ? { kind: 'timeout', handle: setTimeout(this.#flushNow, BULK_WAIT_MS) } : { kind: 'immediate', handle: setImmediate(this.#flushNow) };
    }
    this.#pauseIfBlocked();
  }

  /** Pushes what was gathered this turn of the event loop. */
  readonly #flushNow = (): void => {
    this.#cancelFlush();
    if (this.#done) return;
    this.#flushBatch();
    this.#pauseIfBlocked();
  };

  #cancelFlush(): void {
    const timer = this.#flushTimer;
    this.#flushTimer = undefined;
    if (timer?.kind === 'timeout') clearTimeout(timer.handle);
    else if (timer?.kind === 'immediate') clearImmediate(timer.handle);
  }

  /** A full output (a push was refused, possibly when the output switched) pauses the source. */
  #pauseIfBlocked(): void {
    if (this.#blocked !== 0 && !this.#pausedByUs) {
      this.#pausedByUs = true;
      this.#source.pause();
    }
  }

  #parse(chunk: Buffer): void {
    const length = chunk.length;
    let offset = 0;
    while (offset < length) {
      if (this.#remaining === 0) {
        let header: Buffer;
        let at: number;
        if (this.#headerFill === 0 && length - offset >= HEADER) {
          header = chunk;
          at = offset;
          offset += HEADER;
        } else {
          const take = Math.min(HEADER - this.#headerFill, length - offset);
          chunk.copy(this.#header, this.#headerFill, offset, offset + take);
          this.#headerFill += take;
          offset += take;
          if (this.#headerFill < HEADER) break;
          this.#headerFill = 0;
          header = this.#header;
          at = 0;
        }
        const type = header[at];
        if (type === undefined || type > 3 || header[at + 1] !== 0 || header[at + 2] !== 0 || header[at + 3] !== 0) {
          // Not a frame header: the stream is raw after all (or misaligned). Pass everything on
          // as stdout rather than dropping the user's bytes.
          this.#flushBatch();
          this.#raw = true;
          this.#deliver(STDOUT, Buffer.from(header.subarray(at, at + HEADER)));
          if (offset < length) this.#deliver(STDOUT, chunk.subarray(offset));
          return;
        }
        // 0 (stdin echo) and 1 go to stdout; 2 and 3 (the Engine's own error text) to stderr.
        this.#target = type >= 2 ? STDERR : STDOUT;
        this.#remaining = header.readUInt32BE(at + 4);
        continue;
      }
      const take = Math.min(this.#remaining, length - offset);
      this.#collect(this.#target, offset === 0 && take === length ? chunk : chunk.subarray(offset, offset + take));
      this.#remaining -= take;
      offset += take;
    }
  }

  /**
   * Payloads are gathered per output and pushed together. The first bytes after a pause
   * (interactive output) go out at the end of the current turn of the event loop (setImmediate
   * runs right after the I/O phase that read them). While a bulk transfer runs (data keeps
   * coming within BULK_GAP_MS of the last push) the demuxer waits up to BULK_WAIT_MS or until
   * BULK_BATCH bytes are gathered — the Engine hands over one small frame per socket read when
   * the gateway keeps up, so only waiting makes big packets. Programs often write in small pieces (busybox `head` 8 KiB, a
   * pty 4 KiB, shells a line) and the Engine frames each write; every push becomes at least one
   * SSH packet downstream (an allocation, an encryption and a socket write each, also on the
   * client). Joining the pieces (one copy of at most MAX_BATCH) costs far less than that
   * per-packet work: measured here, ssh2 moves ~2× the bytes per second with 32–64 KiB writes
   * than with 8 KiB ones. A lone piece is pushed as a view, without a copy.
   */
  #collect(target: typeof STDOUT | typeof STDERR, view: Buffer): void {
    if (view.length === 0) return;
    if (this.#batch.length > 0 && this.#batchTarget !== target) this.#flushBatch();
    this.#batchTarget = target;
    this.#batch.push(view);
    this.#batchBytes += view.length;
  }

  #flushBatch(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    const bytes = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    this.#lastPushAt = performance.now();
    this.#deliver(this.#batchTarget, bytes);
  }

  #deliver(target: typeof STDOUT | typeof STDERR, bytes: Buffer): void {
    if (target === STDOUT && this.#filter) {
      const passed = this.#filter.feed(bytes);
      if (this.#filter.passthrough) this.#filter = undefined;
      if (!passed || passed.length === 0) return;
      bytes = passed;
    }
    const out = target === STDOUT ? this.stdout : this.stderr;
    if (out.destroyed || out.readableEnded) return;
    if (!out.push(bytes)) this.#blocked |= target;
  }

  #wake(target: typeof STDOUT | typeof STDERR): void {
    this.#blocked &= ~target;
    if (this.#blocked === 0 && this.#pausedByUs && !this.#done) {
      this.#pausedByUs = false;
      this.#source.resume();
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    // What was gathered goes out before the end.
    this.#cancelFlush();
    this.#flushBatch();
    if (this.#filter) {
      const held = this.#filter.flush();
      this.#filter = undefined;
      if (held && held.length > 0 && !this.stdout.destroyed) this.stdout.push(held);
    }
    if (!this.stdout.destroyed) this.stdout.push(null);
    if (this.#multiplexed && !this.stderr.destroyed) this.stderr.push(null);
    this.#resolveFinished();
  }
}
