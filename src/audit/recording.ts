import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConnectionInfo } from '../backend/backend.js';
import type { CapturedStreams, ConnectionRecording } from './recorder.js';
import { AuditType, type AuditTypeNumber, type IoStream } from './events.js';
import { FileSink } from './file-sink.js';
import type { MemoryBudget } from './memory-budget.js';
import type { NsClock } from './ns-clock.js';
import { nsToIso } from './ns-clock.js';
import { BinaryWriter } from './format/binary-writer.js';
import { binaryHeader } from './format/binary-format.js';
import { BINARY_SPOOL_FILE } from './format/binary-compress.js';
import type { RecordingFormats } from './recover.js';
import { STATE_FILE, publicMetadata, writeJsonDurably, type Identity, type RecordingState } from './manifest.js';

export type { RecordingFormats } from './recover.js';

export interface Intercept {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  /** Bytes of forwarded TCP connections (audit.intercept.forwarding). */
  readonly forwarding?: boolean;
}

export interface RecordingOptions {
  /** The recording's own spool directory; created here. */
  readonly dir: string;
  readonly connectionId: string;
  readonly remoteAddress: string;
  readonly formats: RecordingFormats;
  readonly intercept: Intercept;
  readonly budget: MemoryBudget;
  readonly clock: NsClock;
  readonly logger: Logger;
  /** A spool write failed (disk full...). */
  readonly onWriteFailure: (err: NodeJS.ErrnoException) => void;
  /**
   * The spool file is closed (with its Seal when it could be written): the recorder derives the
   * casts and command log, compresses and stores it in the background (recover.ts
   * sealRecording). `reason` says why the recording is incomplete, '' when it is complete.
   */
  readonly onClosed: (dir: string, reason: string, spoolSealed: boolean) => void;
}

const EVENT = 0;
const IO = 1;
type Item =
  | { readonly k: typeof EVENT; readonly ts: bigint; readonly type: number; readonly channelId: number | null; readonly payload: Readonly<Record<string, unknown>> }
  | { readonly k: typeof IO; readonly ts: bigint; readonly channelId: number; readonly stream: IoStream; readonly data: Buffer };

/**
 * One connection's recording on the spool. The SSH layer's calls only timestamp and queue (I/O
 * within the shared memory bound `audit.queueSize`, else dropped and counted); a setImmediate
 * batch then frames every message as CBOR, extends the hash chain and appends it, uncompressed,
 * to the spool file — the only work done while the session runs. `checkpoint` (every second)
 * fsyncs. `close` writes the Seal and fsyncs (the recording is then safe on the spool);
 * asciicasts, the command log and compression are produced from the spool file afterwards, in
 * the background (recover.ts), off every session's path.
 */
export class SpoolRecording implements ConnectionRecording {
  readonly captures: CapturedStreams;
  readonly dir: string;
  readonly connectionId: string;
  readonly #o: RecordingOptions;
  readonly #writer: BinaryWriter;
  readonly #sink: FileSink;
  #pending: Item[] = [];
  #scheduled = false;
  #dirty = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #checkpointing: Promise<void> | undefined;
  #stateWrite: Promise<void> = Promise.resolve();
  #failure: NodeJS.ErrnoException | undefined;
  readonly #startedAt: string;
  readonly #dropped = { messages: 0, bytes: 0 };
  readonly #gap = { messages: 0, bytes: 0 };
  #warnedOverflow = false;

  /** Creates the directory and the spool file synchronously: a full or unwritable spool throws here. */
  constructor(options: RecordingOptions) {
    this.#o = options;
    this.dir = options.dir;
    this.connectionId = options.connectionId;
    const { stdin, stdout, stderr } = options.intercept;
    this.captures = { stdin, stdout, stderr, forwarding: options.intercept.forwarding === true };
    this.#startedAt = nsToIso(options.clock.nowNs());
    mkdirSync(options.dir, { mode: 0o700 });
    try {
      writeFileSync(join(options.dir, STATE_FILE), JSON.stringify(this.#state()) + '\n', { mode: 0o600 });
      this.#sink = FileSink.create(join(options.dir, BINARY_SPOOL_FILE), { header: binaryHeader(), budget: options.budget, onError: (e) => this.#fail(e) });
    } catch (err) {
      rmSync(options.dir, { recursive: true, force: true });
      throw err;
    }
    this.#writer = new BinaryWriter({ connectionId: options.connectionId, sink: this.#sink });
  }

  #state(identity?: Identity): RecordingState {
    return {
      connectionId: this.connectionId,
      remoteAddress: this.#o.remoteAddress,
      startedAt: this.#startedAt,
      formats: this.#o.formats,
      ...(identity ? { identity } : {}),
    };
  }

  get dropped(): { readonly messages: number; readonly bytes: number } {
    return this.#dropped;
  }

  event(type: AuditTypeNumber, channelId: number | null, payload: Readonly<Record<string, unknown>> = {}): void {
    if (this.#closing) return;
    this.#pending.push({ k: EVENT, ts: this.#o.clock.nowNs(), type, channelId, payload });
    this.#schedule();
  }

  io(channelId: number, stream: IoStream, data: Buffer): void {
    if (this.#closing) return;
    const i = this.#o.intercept;
    if (stream === 0 ? !i.stdin : stream === 1 ? !i.stdout : !i.stderr) return;
    this.#queueIo(channelId, stream, data);
  }

  forwardIo(channelId: number, direction: 0 | 1, data: Buffer): void {
    if (this.#closing || !this.captures.forwarding) return;
    this.#queueIo(channelId, direction, data);
  }

  #queueIo(channelId: number, stream: IoStream, data: Buffer): void {
    if (this.#failure || !this.#o.budget.tryTake(data.length)) {
      this.#drop(data.length);
      return;
    }
    const ts = this.#o.clock.nowNs();
    if (this.#gap.messages > 0) {
      this.#pending.push({ k: EVENT, ts, type: AuditType.RecordingGap, channelId, payload: { droppedMessages: this.#gap.messages, droppedBytes: this.#gap.bytes } });
      this.#gap.messages = 0;
      this.#gap.bytes = 0;
    }
    this.#pending.push({ k: IO, ts, channelId, stream, data });
    this.#schedule();
  }

  identify(info: ConnectionInfo): void {
    if (this.#closing) return;
    const identity: Identity = {
      username: info.username,
      loginUsername: info.loginUsername,
      clientVersion: info.clientVersion,
      // Sensitive values are dropped here, before anything is written anywhere.
      metadata: publicMetadata(info.metadata),
    };
    this.event(AuditType.Identity, null, identity);
    const state = this.#state(identity);
    this.#stateWrite = this.#stateWrite.then(() => writeJsonDurably(this.dir, STATE_FILE, state)).catch((err: NodeJS.ErrnoException) => this.#fail(err));
  }

  #drop(bytes: number): void {
    this.#dropped.messages++;
    this.#dropped.bytes += bytes;
    this.#gap.messages++;
    this.#gap.bytes += bytes;
    if (!this.#warnedOverflow && !this.#failure) {
      this.#warnedOverflow = true;
      this.#o.logger.warn(
        { code: 'AUDIT_QUEUE_OVERFLOW', queueBytes: this.#o.budget.limit },
        'recording queue full (audit.queueSize): dropping I/O for this recording; the session is not slowed',
      );
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const items = this.#pending;
    if (items.length === 0) return;
    this.#pending = [];
    for (const item of items) {
      if (item.k === IO) {
        if (this.#failure) {
          this.#dropped.messages++;
          this.#dropped.bytes += item.data.length;
        } else this.#writer.io(item.ts, item.channelId, item.stream, item.data);
        this.#o.budget.release(item.data.length);
      } else if (!this.#failure) {
        this.#writer.event(item.ts, item.type, item.channelId, item.payload);
      }
    }
    this.#writer.commit();
    this.#dirty = true;
  }

  #fail(err: NodeJS.ErrnoException): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#o.logger.error(
      { code: 'AUDIT_SPOOL_WRITE_FAILED', path: this.dir, errno: err.code, err: err.message },
      'recording cannot be written to the spool; the rest of this connection is not recorded',
    );
    this.#o.onWriteFailure(err);
  }

  /** fsyncs what was recorded since the last checkpoint (called every second by the recorder). */
  checkpoint(): Promise<void> {
    if (!this.#dirty || this.#closing || this.#failure || this.#checkpointing) return this.#checkpointing ?? Promise.resolve();
    this.#checkpointing = this.#doCheckpoint().finally(() => (this.#checkpointing = undefined));
    return this.#checkpointing;
  }

  async #doCheckpoint(): Promise<void> {
    this.#flush();
    this.#dirty = false;
    this.#writer.checkpoint(this.#o.clock.nowNs());
    try {
      await this.#sink.sync();
      this.#o.logger.debug({ messages: this.#writer.chain.count }, 'recording checkpoint');
    } catch (err) {
      this.#fail(err as NodeJS.ErrnoException);
    }
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await this.#checkpointing;
    this.#flush();
    this.#closing = true;
    await this.#stateWrite;
    const endNs = this.#o.clock.nowNs();
    let reason = '';
    if (!this.#failure) {
      if (this.#gap.messages > 0) {
        this.#writer.event(endNs, AuditType.RecordingGap, null, { droppedMessages: this.#gap.messages, droppedBytes: this.#gap.bytes });
      }
      const lossy = this.#dropped.messages > 0;
      reason = lossy ? `${this.#dropped.messages} I/O chunks (${this.#dropped.bytes} bytes) were dropped: the recording queue (audit.queueSize) was full` : '';
      this.#writer.seal(endNs, { complete: !lossy, ...(lossy ? { reason, dropped: { ...this.#dropped } } : {}) });
      await this.#sink.close().catch((err: NodeJS.ErrnoException) => this.#fail(err));
    }
    if (this.#failure) {
      await this.#sink.destroy();
      reason = `the spool could not be written (${this.#failure.code ?? this.#failure.message}); everything written before is kept`;
    }
    this.#o.onClosed(this.dir, reason, !this.#failure);
  }
}
