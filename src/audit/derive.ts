import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { AuditType } from './events.js';
import { BufferSink, FileSink, type ByteSink } from './file-sink.js';
import { nsToIso } from './ns-clock.js';
import type { AuditMessage } from './format/binary-format.js';
import { AsciicastWriter, castFileName } from './format/asciicast.js';
import { LineEditor } from './commands/line-editor.js';
import { COMMANDS_FILE, CommandLogWriter, type CommandEntry } from './commands/command-log.js';
import type { ChannelEntry, FileEntry } from './manifest.js';

/** Where derived files go: files in a recording directory, or memory (exports, tests). */
export interface SinkFactory {
  open(name: string): { sink: ByteSink; close(): Promise<number> };
}

export function fileSinks(dir: string): SinkFactory {
  return {
    open(name) {
      const sink = FileSink.create(join(dir, name));
      return { sink, close: async () => (await sink.close()).bytes };
    },
  };
}

export function memorySinks(into: Map<string, BufferSink>): SinkFactory {
  return {
    open(name) {
      const sink = new BufferSink();
      into.set(name, sink);
      return { sink, close: async () => sink.toBuffer().length };
    },
  };
}

export interface DeriveOptions {
  /** Write one asciicast per shell/exec channel (`audit.format` asciinema or both). */
  readonly casts: boolean;
  /** Write the typed-command log. */
  readonly commands: boolean;
}

interface Pty {
  term: string;
  cols: number;
  rows: number;
}

interface Channel {
  readonly channelId: number;
  readonly kind: ChannelEntry['kind'];
  readonly command?: string;
  pty?: Pty;
  cast?: { writer: AsciicastWriter; close(): Promise<number>; entry?: Promise<FileEntry> };
  editor?: LineEditor;
  decoder?: StringDecoder;
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
const bytes = (v: unknown): Buffer | undefined => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : undefined);

/**
 * Builds the human-facing files of a recording from its messages: one asciicast v2 per session
 * channel (pty size, resizes, stdout+stderr as output, stdin as input; not for subsystems such
 * as SFTP, which are binary protocols) and the typed-command log (exec and subsystem requests,
 * and every line entered at a shell, rebuilt by LineEditor; keys typed inside full-screen
 * programs are skipped). The recorder runs it on the spool file once a recording is sealed, so
 * this work never happens on a live session's path; `airlock audit export` runs the same code.
 */
export class RecordingDeriver {
  readonly #o: DeriveOptions;
  readonly #sinks: SinkFactory;
  readonly #channels = new Map<number, Channel>();
  readonly #ptys = new Map<number, Pty>();
  #commands: { writer: CommandLogWriter; close(): Promise<number> } | undefined;
  #lastNs = 0n;

  constructor(sinks: SinkFactory, options: DeriveOptions) {
    this.#sinks = sinks;
    this.#o = options;
  }

  get lastTimestampNs(): bigint {
    return this.#lastNs;
  }

  message(m: AuditMessage): void {
    this.#lastNs = m.timestampNs;
    const id = m.channelId;
    if (id === null) return;
    const p = m.payload;
    const c = this.#channels.get(id);
    switch (m.type) {
      case AuditType.IO: {
        const data = bytes(p['data']);
        if (!c || !data) return;
        const stream = p['stream'];
        if (c.cast) {
          if (stream === 0) c.cast.writer.input(m.timestampNs, data);
          else c.cast.writer.output(m.timestampNs, stream === 2 ? 2 : 1, data);
        }
        if (c.editor && c.decoder) {
          if (stream === 1) {
            const alt = altScreenChange(data);
            if (alt !== undefined) c.altScreen = alt;
          } else if (stream === 0 && !c.altScreen) {
            for (const typed of c.editor.feed(c.decoder.write(data))) {
              this.#command({ time: nsToIso(m.timestampNs), channelId: id, kind: 'typed', command: typed.line, ...(typed.uncertain ? { uncertain: true } : {}) });
            }
          }
        }
        return;
      }
      case AuditType.ChannelRequestPty:
        this.#ptys.set(id, { term: str(p['term']) ?? 'xterm', cols: num(p['cols'], 80), rows: num(p['rows'], 24) });
        return;
      case AuditType.ChannelRequestExec:
        this.#start(m.timestampNs, id, 'exec', str(p['command']) ?? '');
        return;
      case AuditType.ChannelRequestShell:
        this.#start(m.timestampNs, id, 'shell', undefined);
        return;
      case AuditType.ChannelRequestSubsystem:
        this.#start(m.timestampNs, id, 'subsystem', str(p['subsystem']) ?? '');
        return;
      case AuditType.ChannelRequestWindow: {
        const cols = num(p['cols'], 80);
        const rows = num(p['rows'], 24);
        const pty = c?.pty ?? this.#ptys.get(id);
        if (pty) {
          pty.cols = cols;
          pty.rows = rows;
        }
        c?.cast?.writer.resize(m.timestampNs, cols, rows);
        return;
      }
      case AuditType.ExitStatus:
        if (c) c.exit = { status: num(p['exitStatus'], -1) };
        return;
      case AuditType.ExitSignal:
        if (c) c.exit = { signal: str(p['signal']) ?? 'unknown' };
        return;
      case AuditType.Close:
        if (c) this.#endCast(c, m.timestampNs);
        return;
      default:
    }
  }

  #start(ts: bigint, channelId: number, kind: ChannelEntry['kind'], command: string | undefined): void {
    if (this.#channels.has(channelId)) return;
    const pty = this.#ptys.get(channelId);
    const c: Channel = { channelId, kind, ...(command !== undefined ? { command } : {}), ...(pty ? { pty } : {}), altScreen: false };
    this.#channels.set(channelId, c);
    if (kind === 'exec' || kind === 'subsystem') this.#command({ time: nsToIso(ts), channelId, kind, command: command ?? '' });
    if (kind === 'shell' && this.#o.commands) {
      c.editor = new LineEditor();
      c.decoder = new StringDecoder('utf8');
    }
    if (this.#o.casts && kind !== 'subsystem') {
      const { sink, close } = this.#sinks.open(castFileName(channelId));
      const writer = new AsciicastWriter(sink, ts, {
        width: pty?.cols ?? 80,
        height: pty?.rows ?? 24,
        timestamp: Math.floor(Number(ts / 1_000_000_000n)),
        ...(kind === 'exec' && command ? { title: command } : {}),
        ...(pty ? { env: { TERM: pty.term } } : {}),
      });
      c.cast = { writer, close };
    }
  }

  #command(entry: CommandEntry): void {
    if (!this.#o.commands) return;
    if (!this.#commands) {
      const { sink, close } = this.#sinks.open(COMMANDS_FILE);
      this.#commands = { writer: new CommandLogWriter(sink), close };
    }
    this.#commands.writer.add(entry);
  }

  #endCast(c: Channel, ts: bigint): void {
    const cast = c.cast;
    if (!cast || cast.entry) return;
    cast.writer.end(ts);
    const name = castFileName(c.channelId);
    cast.entry = cast.close().then((size) => ({ name, kind: 'asciicast', bytes: size, messages: cast.writer.chain.count, chain: cast.writer.chain.hex }));
  }

  /** Ends every open channel and closes the files; returns their manifest entries. */
  async finish(): Promise<{ files: FileEntry[]; channels: ChannelEntry[] }> {
    const channels = [...this.#channels.values()].sort((a, b) => a.channelId - b.channelId);
    for (const c of channels) this.#endCast(c, this.#lastNs);
    const files: FileEntry[] = [];
    for (const c of channels) if (c.cast?.entry) files.push(await c.cast.entry);
    if (this.#commands) {
      const size = await this.#commands.close();
      files.push({ name: COMMANDS_FILE, kind: 'commands', bytes: size, messages: this.#commands.writer.chain.count, chain: this.#commands.writer.chain.hex });
    }
    return {
      files,
      channels: channels.map((c) => ({
        channelId: c.channelId,
        kind: c.kind,
        ...(c.command !== undefined ? { command: c.command } : {}),
        ...(c.pty ? { pty: { ...c.pty } } : {}),
        ...(c.exit ? { exit: c.exit } : {}),
        ...(c.cast ? { cast: castFileName(c.channelId) } : {}),
      })),
    };
  }
}
