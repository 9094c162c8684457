import type { FileAttributes, FileReader, FileWriter, OpenWriteFlags, WorkloadFiles } from '../backend/backend.js';
import { WorkloadFileError } from '../backend/file-error.js';

/**
 * One open SFTP file handle on top of the backend's sequential streams. SFTP READ and WRITE
 * carry an offset each (draft-ietf-secsh-filexfer-02 §6.4); clients like OpenSSH keep many in
 * flight but in increasing order, so a reader or writer stream is kept open at the position
 * the next request is expected at, and reopened at the requested offset only when access is not
 * sequential. Requests on one handle run one after another, in arrival order.
 */
export interface OpenFileMode {
  readonly read: boolean;
  readonly write: boolean;
  readonly flags: OpenWriteFlags;
}

/** A forward gap up to this size is read and dropped rather than reopening the stream. */
const SKIP_LIMIT = 1024 * 1024;

interface ReaderAt {
  readonly reader: FileReader;
  readonly bytes: ByteReader;
  pos: number;
  /** The reader reached the end of the file at `pos`. */
  eof: boolean;
}

interface WriterAt {
  readonly writer: FileWriter;
  pos: number;
  failed: WorkloadFileError | undefined;
}

export class OpenFile {
  readonly path: string;
  /** Bytes served to / received from the client (for the audit event at close). */
  bytesRead = 0;
  bytesWritten = 0;
  readonly #files: WorkloadFiles;
  readonly #mode: OpenFileMode;
  #reader: ReaderAt | undefined;
  #writer: WriterAt | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(files: WorkloadFiles, path: string, mode: OpenFileMode) {
    this.#files = files;
    this.path = path;
    this.#mode = mode;
  }

  /**
   * Opens like open(2) would, so OPEN itself answers "no such file" or "permission denied":
   * a write handle starts its writer (which creates/truncates), a read-only one its reader.
   */
  static async open(files: WorkloadFiles, path: string, mode: OpenFileMode): Promise<OpenFile> {
    const file = new OpenFile(files, path, mode);
    if (mode.write) file.#writer = { writer: await files.openWrite(path, mode.flags, 0), pos: 0, failed: undefined };
    else file.#reader = readerAt(await files.openRead(path, 0), 0);
    if (file.#writer) file.#watch(file.#writer);
    return file;
  }

  /** Up to `length` bytes at `offset`; fewer only at the end of the file; null at EOF. */
  read(offset: number, length: number): Promise<Buffer | null> {
    return this.#serial(async () => {
      if (!this.#mode.read) throw new WorkloadFileError('permission-denied', 'the file is not open for reading');
      await this.#finishWriter();
      // Clients keep reads in flight past the end: answer those without reopening.
      if (this.#reader?.eof && offset >= this.#reader.pos) return null;
      const at = await this.#readerAt(offset);
      const data = await at.bytes.read(length);
      if (data === null || data.length < length) {
        // The end of the file, or the reader failed: its error says which.
        await at.reader.finished;
        at.eof = true;
      }
      if (data === null) return null;
      at.pos += data.length;
      this.bytesRead += data.length;
      return data;
    });
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.#serial(async () => {
      if (!this.#mode.write) throw new WorkloadFileError('permission-denied', 'the file is not open for writing');
      await this.#closeReader();
      let at = this.#writer;
      // O_APPEND ignores offsets: every write goes to the end.
      if (at && !this.#mode.flags.append && at.pos !== offset) {
        await this.#finishWriter();
        at = undefined;
      }
      if (!at) {
        // The file exists now: reopen without create/truncate, at the requested offset.
        const flags: OpenWriteFlags = { create: false, truncate: false, exclusive: false, append: this.#mode.flags.append };
        at = { writer: await this.#files.openWrite(this.path, flags, offset), pos: offset, failed: undefined };
        this.#writer = at;
        this.#watch(at);
      }
      if (at.failed) throw at.failed;
      if (!at.writer.stream.write(data)) await drained(at.writer.stream);
      if (at.failed) throw at.failed;
      at.pos += data.length;
      this.bytesWritten += data.length;
    });
  }

  /** FSTAT: pending writes are flushed first, so the size is right. */
  fstat(): Promise<FileAttributes> {
    return this.#serial(async () => {
      await this.#finishWriter();
      return this.#files.stat(this.path);
    });
  }

  /** Waits until every accepted write is in the file (FSETSTAT must not race a late write). */
  flush(): Promise<void> {
    return this.#serial(() => this.#finishWriter());
  }

  /** Flushes and closes; rejects when the last writes failed (CLOSE then reports it). */
  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      this.#closed = true;
      await this.#closeReader();
      await this.#finishWriter();
    });
  }

  /** Stops everything at once (the channel is gone); never rejects. */
  async abort(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#reader?.reader.close(), this.#writer?.writer.close()].map((p) => p?.catch(() => undefined)));
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #readerAt(offset: number): Promise<ReaderAt> {
    const current = this.#reader;
    if (current && current.pos === offset) return current;
    if (current && offset > current.pos && offset - current.pos <= SKIP_LIMIT) {
      const skipped = await current.bytes.read(offset - current.pos);
      current.pos += skipped?.length ?? 0;
      // Short: the file ends before the offset, and the read finds the end at once.
      return current;
    }
    await this.#closeReader();
    const at = readerAt(await this.#files.openRead(this.path, offset), offset);
    this.#reader = at;
    return at;
  }

  async #closeReader(): Promise<void> {
    const at = this.#reader;
    this.#reader = undefined;
    await at?.reader.close();
  }

  async #finishWriter(): Promise<void> {
    const at = this.#writer;
    if (!at) return;
    this.#writer = undefined;
    await at.writer.close();
  }

  #watch(at: WriterAt): void {
    at.writer.finished.catch((err: unknown) => {
      at.failed = err instanceof WorkloadFileError ? err : new WorkloadFileError('failure', 'the write failed', { cause: err });
    });
  }
}

/** How far a reader may run ahead of the client's requests before its stream is paused. */
const READ_AHEAD = 256 * 1024;

/**
 * Hands out a Readable's bytes in the sizes SFTP READs ask for. Flowing with explicit
 * pause/resume, so a reader that is ahead pushes back on its source (and through it on the
 * workload), and no request ever spins: `read(n)` waits for n bytes or the end.
 */
export class ByteReader {
  readonly #stream: NodeJS.ReadableStream;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(stream: NodeJS.ReadableStream) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= READ_AHEAD) stream.pause();
      this.#notify();
    });
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    stream.once('end', end);
    stream.once('close', end);
    stream.once('error', end);
  }

  /** Up to `n` bytes: exactly n unless the stream ended first; null when nothing is left. */
  async read(n: number): Promise<Buffer | null> {
    while (this.#buffered < n && !this.#ended) {
      this.#stream.resume();
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    if (this.#buffered === 0) return null;
    const out = this.#take(Math.min(n, this.#buffered));
    if (this.#buffered < READ_AHEAD && !this.#ended) this.#stream.resume();
    return out;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.#chunks[0]!;
        const part = Math.min(chunk.length, n - filled);
        chunk.copy(out, filled, 0, part);
        filled += part;
        if (part === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(part);
      }
    }
    this.#buffered -= n;
    return out;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

function readerAt(reader: FileReader, pos: number): ReaderAt {
  return { reader, bytes: new ByteReader(reader.stream), pos, eof: false };
}

function drained(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
