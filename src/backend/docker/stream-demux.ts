import { Readable } from 'node:stream';

/**
 * Splits the Engine's attach/exec stream into stdout and stderr, our own way because dockerode's
 * `modem.demuxStream` ignores backpressure and never ends its targets.
 *
 * Without a TTY the Engine frames every write: an 8-byte header (stream type, three zero bytes,
 * big-endian uint32 payload length) and the payload. With a TTY the bytes are raw and all go to
 * stdout. Payloads are pushed as views of the socket's chunks (no copies); only a header split
 * across chunks is assembled in a small buffer. When either output's buffer is full the source is
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
  }

  #onData(chunk: Buffer): void {
    if (this.#done) return;
    if (this.#raw) this.#deliver(STDOUT, chunk);
    else this.#parse(chunk);
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
          if (this.#headerFill < HEADER) return;
          this.#headerFill = 0;
          header = this.#header;
          at = 0;
        }
        const type = header[at];
        if (type === undefined || type > 3 || header[at + 1] !== 0 || header[at + 2] !== 0 || header[at + 3] !== 0) {
          // Not a frame header: the stream is raw after all (or misaligned). Pass everything on
          // as stdout rather than dropping the user's bytes.
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
      this.#deliver(this.#target, offset === 0 && take === length ? chunk : chunk.subarray(offset, offset + take));
      this.#remaining -= take;
      offset += take;
    }
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
