import { closeSync, fsync, openSync, writeSync, writev, close as closeFd, constants as fsConstants } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import type { MemoryBudget } from './memory-budget.js';

/** Where encoders put their bytes. Writes never block: they are queued. */
export interface ByteSink {
  write(chunk: Buffer): void;
}

/** Collects bytes in memory (exports, tests). */
export class BufferSink implements ByteSink {
  readonly chunks: Buffer[] = [];
  write(chunk: Buffer): void {
    this.chunks.push(chunk);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface FileSinkOptions {
  /** Written synchronously at creation, so a full or read-only spool fails the caller at once. */
  readonly header?: Buffer;
  readonly budget?: MemoryBudget;
  /** Keep a running SHA-256 of every byte (off by default: the chains cover text files). */
  readonly hash?: boolean;
  /** Called once, on the first failed write (ENOSPC, EIO...); later writes are dropped. */
  readonly onError?: (err: NodeJS.ErrnoException) => void;
}

// Linux IOV_MAX.
const MAX_IOVECS = 1024;

function writevOnce(fd: number, buffers: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, buffers, (err, n) => (err ? reject(err) : resolve(n))));
}

async function writevAll(fd: number, buffers: Buffer[]): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const group = pending.slice(0, MAX_IOVECS);
    let written = await writevOnce(fd, group);
    // Drop what was written (a short write leaves part of a buffer).
    let i = 0;
    while (i < pending.length && written >= (pending[i] as Buffer).length) {
      written -= (pending[i] as Buffer).length;
      i++;
    }
    pending = pending.slice(i);
    if (written > 0 && pending.length > 0) pending[0] = (pending[0] as Buffer).subarray(written);
  }
}

/**
 * An append-only spool file: queued writes go out in batches (writev) off the caller's path and
 * `sync()` is the fsync checkpoint.
 */
export class FileSink implements ByteSink {
  readonly path: string;
  readonly #fd: number;
  readonly #options: FileSinkOptions;
  readonly #hash: Hash | undefined;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #writing = false;
  #bytes = 0;
  #error: NodeJS.ErrnoException | undefined;
  #closed = false;
  #idleWaiters: Array<() => void> = [];

  private constructor(path: string, fd: number, options: FileSinkOptions) {
    this.path = path;
    this.#fd = fd;
    this.#options = options;
    this.#hash = options.hash ? createHash('sha256') : undefined;
  }

  /** Creates the file (it must not exist) and writes the header synchronously. */
  static create(path: string, options: FileSinkOptions = {}): FileSink {
    const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    const sink = new FileSink(path, fd, options);
    if (options.header && options.header.length > 0) {
      try {
        let off = 0;
        while (off < options.header.length) off += writeSync(fd, options.header, off);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      sink.#hash?.update(options.header);
      sink.#bytes = options.header.length;
    }
    return sink;
  }

  get error(): NodeJS.ErrnoException | undefined {
    return this.#error;
  }

  /** Bytes accepted so far (written or queued). */
  get bytes(): number {
    return this.#bytes;
  }

  write(chunk: Buffer): void {
    if (this.#error || this.#closed || chunk.length === 0) return;
    this.#hash?.update(chunk);
    this.#bytes += chunk.length;
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
    this.#options.budget?.force(chunk.length);
    if (!this.#writing) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      const size = this.#queuedBytes;
      this.#queue = [];
      this.#queuedBytes = 0;
      if (!this.#error) {
        try {
          await writevAll(this.#fd, batch);
        } catch (err) {
          this.#fail(err as NodeJS.ErrnoException);
        }
      }
      this.#options.budget?.release(size);
    }
    this.#writing = false;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #fail(err: NodeJS.ErrnoException): void {
    if (this.#error) return;
    this.#error = err;
    this.#options.onError?.(err);
  }

  #idle(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Waits for queued writes, then fsyncs. Rejects with the write error if one happened. */
  async sync(): Promise<void> {
    await this.#idle();
    if (this.#error) throw this.#error;
    await new Promise<void>((resolve, reject) => fsync(this.#fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Syncs and closes; returns the size (and SHA-256 when hashing) of everything written. */
  async close(): Promise<{ bytes: number; sha256?: string }> {
    if (this.#closed) throw new Error(`${this.path} already closed`);
    try {
      await this.sync();
    } finally {
      this.#closed = true;
      await new Promise<void>((resolve) => closeFd(this.#fd, () => resolve()));
    }
    return { bytes: this.#bytes, ...(this.#hash ? { sha256: this.#hash.digest('hex') } : {}) };
  }

  /** Closes without syncing (the recording is abandoned or will be repaired). */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#idle();
    await new Promise<void>((resolve) => closeFd(this.#fd, () => resolve()));
  }
}
