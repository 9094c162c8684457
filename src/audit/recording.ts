import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import type { ConnectionInfo } from '../backend/backend.js';
import type { ConnectionRecording } from './recorder.js';
import { AuditType, type AuditTypeNumber, type IoStream } from './events.js';
import { FileSink } from './file-sink.js';
import type { MemoryBudget } from './memory-budget.js';
import type { NsClock } from './ns-clock.js';
import { nsToIso } from './ns-clock.js';
import { BinaryWriter } from './format/binary-writer.js';
import { BINARY_FILE, binaryHeader } from './format/binary-format.js';
import { AsciicastWriter, castFileName } from './format/asciicast.js';
import { LineEditor } from './commands/line-editor.js';
import { COMMANDS_FILE, CommandLogWriter, type CommandEntry } from './commands/command-log.js';
import {
  STATE_FILE,
  publicMetadata,
  recordingDigest,
  writeJsonDurably,
  type ChannelEntry,
  type FileEntry,
  type Identity,
  type Manifest,
  type RecordingState,
  MANIFEST_FILE,
} from './manifest.js';

export interface RecordingFormats {
  readonly binary: boolean;
  readonly asciicast: boolean;
}

export interface Intercept {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
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
  /** The recording is sealed on the spool (manifest written): hand it to storage. */
  readonly onSealed: (dir: string, manifest: Manifest) => void;
  /** A spool write failed (disk full...): the recorder re-checks the spool before new sessions. */
  readonly onWriteFailure: (err: NodeJS.ErrnoException) => void;
  /** Repairs and seals files that could not be written completely (recover.ts). */
  readonly sealIncomplete: (dir: string, reason: string) => Promise<Manifest>;
  /** Sealing failed even in repair mode: the recorder retries later. */
  readonly onUnsealed: (dir: string, err: unknown) => void;
}

const EVENT = 0;
const IO = 1;
type Item =
  | { readonly k: typeof EVENT; readonly ts: bigint; readonly type: number; readonly channelId: number | null; readonly payload: Readonly<Record<string, unknown>> }
  | { readonly k: typeof IO; readonly ts: bigint; readonly channelId: number; readonly stream: IoStream; readonly data: Buffer };

interface Pty {
  term: string;
  cols: number;
  rows: number;
}

interface ChannelState {
  readonly channelId: number;
  readonly kind: ChannelEntry['kind'];
  readonly command?: string;
  pty?: Pty;
  cast?: { writer: AsciicastWriter; sink: FileSink; done?: Promise<FileEntry | undefined> };
  editor?: LineEditor;
  inputDecoder?: StringDecoder;
  altScreen: boolean;
  exit?: ChannelEntry['exit'];
}

// Full-screen programs (vim, less, top) switch to the alternate screen; keys typed there are
// not shell commands. DEC private modes 1049/1047/47, set (h) and reset (l).
const ALT_ON = ['\x1b[?1049h', '\x1b[?1047h', '\x1b[?47h'];
const ALT_OFF = ['\x1b[?1049l', '\x1b[?1047l', '\x1b[?47l'];

function altScreenChange(data: Buffer): boolean | undefined {
  if (data.indexOf(0x1b) === -1) return undefined;
  let on = -1;
  let off = -1;
  for (const s of ALT_ON) on = Math.max(on, data.lastIndexOf(s));
  for (const s of ALT_OFF) off = Math.max(off, data.lastIndexOf(s));
  if (on === -1 && off === -1) return undefined;
  return on > off;
}

const num = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * One connection's recording on the spool. The SSH layer's calls (`event`, `io`) only timestamp
 * and queue (I/O within the shared memory bound, else dropped and counted); a setImmediate batch
 * then feeds the encoders: binary (every message, chained), one asciicast per session channel,
 * and the typed-command log. `checkpoint` fsyncs; `close` seals and writes the manifest.
 */
export class SpoolRecording implements ConnectionRecording {
  readonly capturesIo: boolean;
  readonly dir: string;
  readonly connectionId: string;
  readonly #o: RecordingOptions;
  readonly #startedNs: bigint;
  readonly #binary: { writer: BinaryWriter; sink: FileSink } | undefined;
  #commands: { writer: CommandLogWriter; sink: FileSink } | undefined;
  readonly #channels = new Map<number, ChannelState>();
  readonly #ptys = new Map<number, Pty>();
  #pending: Item[] = [];
  #scheduled = false;
  #dirty = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #checkpointing: Promise<void> | undefined;
  #stateWrite: Promise<void> = Promise.resolve();
  #identity: Identity | undefined;
  #failure: NodeJS.ErrnoException | undefined;
  readonly #dropped = { messages: 0, bytes: 0 };
  readonly #gap = { messages: 0, bytes: 0 };
  #warnedOverflow = false;

  /** Creates the directory and files synchronously: a full or unwritable spool throws here. */
  constructor(options: RecordingOptions) {
    this.#o = options;
    this.dir = options.dir;
    this.connectionId = options.connectionId;
    const { stdin, stdout, stderr } = options.intercept;
    this.capturesIo = stdin || stdout || stderr;
    this.#startedNs = options.clock.nowNs();
    mkdirSync(options.dir, { mode: 0o700 });
    try {
      const state: RecordingState = { connectionId: options.connectionId, remoteAddress: options.remoteAddress, startedAt: nsToIso(this.#startedNs) };
      writeFileSync(join(options.dir, STATE_FILE), JSON.stringify(state) + '\n', { mode: 0o600 });
      if (options.formats.binary) {
        const sink = FileSink.create(join(options.dir, BINARY_FILE), { header: binaryHeader(), budget: options.budget, onError: (e) => this.#fail(e) });
        this.#binary = { sink, writer: new BinaryWriter({ connectionId: options.connectionId, sink, budget: options.budget }) };
      }
    } catch (err) {
      rmSync(options.dir, { recursive: true, force: true });
      throw err;
    }
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
      metadata: publicMetadata(info.metadata),
    };
    this.#identity = identity;
    this.event(AuditType.Identity, null, identity);
    const state: RecordingState = { connectionId: this.connectionId, remoteAddress: this.#o.remoteAddress, startedAt: nsToIso(this.#startedNs), identity };
    this.#stateWrite = this.#stateWrite
      .then(() => writeJsonDurably(this.dir, STATE_FILE, state))
      .catch((err: NodeJS.ErrnoException) => this.#fail(err));
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
      if (this.#failure) {
        if (item.k === IO) {
          this.#o.budget.release(item.data.length);
          this.#dropped.messages++;
          this.#dropped.bytes += item.data.length;
        }
        continue;
      }
      if (item.k === IO) {
        this.#onIo(item);
        this.#o.budget.release(item.data.length);
      } else {
        this.#onEvent(item);
      }
    }
    this.#binary?.writer.commit();
    this.#dirty = true;
  }

  #onIo(item: Extract<Item, { k: typeof IO }>): void {
    const { ts, channelId, stream, data } = item;
    this.#binary?.writer.io(ts, channelId, stream, data);
    const c = this.#channels.get(channelId);
    if (!c) return;
    if (c.cast) {
      if (stream === 0) c.cast.writer.input(ts, data);
      else c.cast.writer.output(ts, stream, data);
    }
    if (c.editor && c.inputDecoder) {
      if (stream === 1) {
        const alt = altScreenChange(data);
        if (alt !== undefined) c.altScreen = alt;
      } else if (stream === 0 && !c.altScreen) {
        for (const typed of c.editor.feed(c.inputDecoder.write(data))) {
          this.#command({ time: nsToIso(ts), channelId, kind: 'typed', command: typed.line, ...(typed.uncertain ? { uncertain: true } : {}) });
        }
      }
    }
  }

  #onEvent(item: Extract<Item, { k: typeof EVENT }>): void {
    const { ts, type, channelId, payload } = item;
    this.#binary?.writer.event(ts, type, channelId, payload);
    if (channelId === null) return;
    const c = this.#channels.get(channelId);
    switch (type) {
      case AuditType.ChannelRequestPty:
        this.#ptys.set(channelId, { term: str(payload['term']) ?? 'xterm', cols: num(payload['cols'], 80), rows: num(payload['rows'], 24) });
        return;
      case AuditType.ChannelRequestExec:
        this.#startChannel(ts, channelId, 'exec', str(payload['command']) ?? '');
        return;
      case AuditType.ChannelRequestShell:
        this.#startChannel(ts, channelId, 'shell', undefined);
        return;
      case AuditType.ChannelRequestSubsystem:
        this.#startChannel(ts, channelId, 'subsystem', str(payload['subsystem']) ?? '');
        return;
      case AuditType.ChannelRequestWindow: {
        const cols = num(payload['cols'], 80);
        const rows = num(payload['rows'], 24);
        const pty = c?.pty ?? this.#ptys.get(channelId);
        if (pty) {
          pty.cols = cols;
          pty.rows = rows;
        }
        c?.cast?.writer.resize(ts, cols, rows);
        return;
      }
      case AuditType.ExitStatus:
        if (c) c.exit = { status: num(payload['exitStatus'], -1) };
        return;
      case AuditType.ExitSignal:
        if (c) c.exit = { signal: str(payload['signal']) ?? 'unknown' };
        return;
      case AuditType.Close:
        if (c) this.#finishCast(c, ts);
        return;
      default:
    }
  }

  #startChannel(ts: bigint, channelId: number, kind: ChannelEntry['kind'], command: string | undefined): void {
    if (this.#channels.has(channelId)) return;
    const pty = this.#ptys.get(channelId);
    const c: ChannelState = { channelId, kind, ...(command !== undefined ? { command } : {}), ...(pty ? { pty } : {}), altScreen: false };
    this.#channels.set(channelId, c);
    if (kind === 'exec' || kind === 'subsystem') this.#command({ time: nsToIso(ts), channelId, kind, command: command ?? '' });
    if (kind === 'shell' && this.#o.intercept.stdin) {
      c.editor = new LineEditor();
      c.inputDecoder = new StringDecoder('utf8');
    }
    // SFTP and other subsystems speak binary protocols: a terminal recording would be noise.
    if (this.#o.formats.asciicast && kind !== 'subsystem') {
      try {
        const sink = FileSink.create(join(this.dir, castFileName(channelId)), { budget: this.#o.budget, onError: (e) => this.#fail(e) });
        const writer = new AsciicastWriter(sink, ts, {
          width: pty?.cols ?? 80,
          height: pty?.rows ?? 24,
          timestamp: Math.floor(Number(ts / 1_000_000_000n)),
          ...(kind === 'exec' && command ? { title: command } : {}),
          ...(pty ? { env: { TERM: pty.term } } : {}),
        });
        c.cast = { writer, sink };
      } catch (err) {
        this.#fail(err as NodeJS.ErrnoException);
      }
    }
  }

  #command(entry: CommandEntry): void {
    if (!this.#commands) {
      try {
        const sink = FileSink.create(join(this.dir, COMMANDS_FILE), { budget: this.#o.budget, onError: (e) => this.#fail(e) });
        this.#commands = { sink, writer: new CommandLogWriter(sink) };
      } catch (err) {
        this.#fail(err as NodeJS.ErrnoException);
        return;
      }
    }
    this.#commands.writer.add(entry);
  }

  #finishCast(c: ChannelState, ts: bigint): void {
    const cast = c.cast;
    if (!cast || cast.done) return;
    cast.writer.end(ts);
    const name = castFileName(c.channelId);
    cast.done = cast.sink.close().then(
      ({ bytes, sha256 }): FileEntry => ({ name, kind: 'asciicast', bytes, sha256, messages: cast.writer.chain.count, chain: cast.writer.chain.hex }),
      (err: NodeJS.ErrnoException) => {
        this.#fail(err);
        return undefined;
      },
    );
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
    try {
      if (this.#binary) await this.#binary.writer.checkpoint(this.#o.clock.nowNs());
      const sinks: FileSink[] = [];
      if (this.#binary) sinks.push(this.#binary.sink);
      if (this.#commands) sinks.push(this.#commands.sink);
      for (const c of this.#channels.values()) if (c.cast && !c.cast.done) sinks.push(c.cast.sink);
      await Promise.all(sinks.map((s) => s.sync()));
      this.#o.logger.debug({ messages: this.#binary?.writer.chain.count }, 'recording checkpoint');
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
    if (this.#gap.messages > 0 && !this.#failure) {
      this.#binary?.writer.event(this.#o.clock.nowNs(), AuditType.RecordingGap, null, { droppedMessages: this.#gap.messages, droppedBytes: this.#gap.bytes });
    }
    this.#closing = true;
    const endNs = this.#o.clock.nowNs();
    for (const c of this.#channels.values()) this.#finishCast(c, endNs);
    await this.#stateWrite;
    let manifest: Manifest | undefined;
    if (!this.#failure) {
      try {
        manifest = await this.#seal(endNs);
      } catch (err) {
        this.#fail(err as NodeJS.ErrnoException);
      }
    }
    if (!manifest) {
      await this.#abandonWriters();
      const reason = `the spool could not be written (${this.#failure?.code ?? this.#failure?.message ?? 'unknown error'}); what was written before is kept`;
      try {
        manifest = await this.#o.sealIncomplete(this.dir, reason);
      } catch (err) {
        this.#o.onUnsealed(this.dir, err);
        return;
      }
    }
    this.#o.onSealed(this.dir, manifest);
  }

  async #abandonWriters(): Promise<void> {
    this.#binary?.writer.destroy();
    await this.#binary?.sink.destroy();
    await this.#commands?.sink.destroy();
    for (const c of this.#channels.values()) {
      if (c.cast?.done) await c.cast.done;
      else await c.cast?.sink.destroy();
    }
  }

  async #seal(endNs: bigint): Promise<Manifest> {
    const lossy = this.#dropped.messages > 0;
    const incompleteReason = lossy
      ? `${this.#dropped.messages} I/O chunks (${this.#dropped.bytes} bytes) were dropped: the recording queue (audit.queueSize) was full`
      : undefined;
    const files: FileEntry[] = [];
    if (this.#binary) {
      const { messages } = await this.#binary.writer.seal(endNs, { complete: !lossy, ...(incompleteReason ? { reason: incompleteReason } : {}), ...(lossy ? { dropped: { ...this.#dropped } } : {}) });
      const { bytes, sha256 } = await this.#binary.sink.close();
      files.push({ name: BINARY_FILE, kind: 'binary', bytes, sha256, messages, chain: this.#binary.writer.chain.hex });
    }
    const casts = await Promise.all([...this.#channels.values()].map((c) => c.cast?.done));
    if (this.#failure) throw this.#failure;
    for (const f of casts) if (f) files.push(f);
    if (this.#commands) {
      const { bytes, sha256 } = await this.#commands.sink.close();
      files.push({ name: COMMANDS_FILE, kind: 'commands', bytes, sha256, messages: this.#commands.writer.chain.count, chain: this.#commands.writer.chain.hex });
    }
    const channels: ChannelEntry[] = [...this.#channels.values()].map((c) => ({
      channelId: c.channelId,
      kind: c.kind,
      ...(c.command !== undefined ? { command: c.command } : {}),
      ...(c.pty ? { pty: { ...c.pty } } : {}),
      ...(c.exit ? { exit: c.exit } : {}),
      ...(c.cast ? { cast: castFileName(c.channelId) } : {}),
    }));
    const base = { connectionId: this.connectionId, complete: !lossy, files };
    const manifest: Manifest = {
      airlockRecording: 1,
      connectionId: this.connectionId,
      remoteAddress: this.#o.remoteAddress,
      startedAt: nsToIso(this.#startedNs),
      endedAt: nsToIso(endNs),
      ...(this.#identity ? { identity: this.#identity } : {}),
      complete: !lossy,
      ...(incompleteReason ? { incompleteReason } : {}),
      dropped: { ...this.#dropped },
      channels,
      files,
      digest: recordingDigest(base),
    };
    await writeJsonDurably(this.dir, MANIFEST_FILE, manifest);
    return manifest;
  }
}
