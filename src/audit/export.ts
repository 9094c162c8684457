import { StringDecoder } from 'node:string_decoder';
import { AuditType, auditTypeName } from './events.js';
import { BufferSink } from './file-sink.js';
import { nsToIso } from './ns-clock.js';
import type { AuditMessage } from './format/binary-format.js';
import { scanBinary, type BinaryScan } from './format/binary-reader.js';
import { AsciicastWriter } from './format/asciicast.js';
import { LineEditor } from './commands/line-editor.js';
import type { CommandEntry } from './commands/command-log.js';

type Input = AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>;

export interface ChannelCast {
  readonly channelId: number;
  readonly kind: 'shell' | 'exec';
  readonly command?: string;
  readonly cast: string;
}

/**
 * Converts a binary recording into one asciicast v2 per session channel (what the recorder
 * would have written with `audit.format: both`): terminal size from the pty request, resizes,
 * stdout+stderr as output, stdin as input. Subsystem channels (SFTP) are binary and skipped.
 */
export async function binaryToCasts(input: Input): Promise<{ casts: ChannelCast[]; scan: BinaryScan }> {
  const ptys = new Map<number, { term: string; cols: number; rows: number }>();
  const open = new Map<number, { writer: AsciicastWriter; sink: BufferSink; kind: 'shell' | 'exec'; command?: string }>();
  const done: ChannelCast[] = [];
  const finish = (channelId: number, ts: bigint) => {
    const c = open.get(channelId);
    if (!c) return;
    c.writer.end(ts);
    open.delete(channelId);
    done.push({ channelId, kind: c.kind, ...(c.command !== undefined ? { command: c.command } : {}), cast: c.sink.toBuffer().toString('utf8') });
  };
  let last = 0n;
  const scan = await scanBinary(input, (m: AuditMessage) => {
    last = m.timestampNs;
    const p = m.payload;
    const id = m.channelId;
    if (id === null) return;
    switch (m.type) {
      case AuditType.ChannelRequestPty:
        ptys.set(id, { term: String(p['term'] ?? 'xterm'), cols: Number(p['cols'] ?? 80), rows: Number(p['rows'] ?? 24) });
        break;
      case AuditType.ChannelRequestExec:
      case AuditType.ChannelRequestShell: {
        if (open.has(id)) break;
        const kind = m.type === AuditType.ChannelRequestExec ? 'exec' : 'shell';
        const command = kind === 'exec' ? String(p['command'] ?? '') : undefined;
        const pty = ptys.get(id);
        const sink = new BufferSink();
        const writer = new AsciicastWriter(sink, m.timestampNs, {
          width: pty?.cols ?? 80,
          height: pty?.rows ?? 24,
          timestamp: Math.floor(Number(m.timestampNs / 1_000_000_000n)),
          ...(command ? { title: command } : {}),
          ...(pty ? { env: { TERM: pty.term } } : {}),
        });
        open.set(id, { writer, sink, kind, ...(command !== undefined ? { command } : {}) });
        break;
      }
      case AuditType.ChannelRequestWindow:
        open.get(id)?.writer.resize(m.timestampNs, Number(p['cols'] ?? 80), Number(p['rows'] ?? 24));
        break;
      case AuditType.IO: {
        const c = open.get(id);
        const data = p['data'];
        if (!c || !(data instanceof Uint8Array)) break;
        const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        if (p['stream'] === 0) c.writer.input(m.timestampNs, buf);
        else c.writer.output(m.timestampNs, p['stream'] === 2 ? 2 : 1, buf);
        break;
      }
      case AuditType.Close:
        finish(id, m.timestampNs);
        break;
      default:
    }
  });
  for (const id of [...open.keys()]) finish(id, last);
  done.sort((a, b) => a.channelId - b.channelId);
  return { casts: done, scan };
}

/** The typed-command log rebuilt from a binary recording (for recordings without commands.jsonl). */
export async function commandsFromBinary(input: Input): Promise<CommandEntry[]> {
  const shells = new Map<number, { editor: LineEditor; decoder: StringDecoder; alt: boolean }>();
  const out: CommandEntry[] = [];
  await scanBinary(input, (m) => {
    const id = m.channelId;
    if (id === null) return;
    const p = m.payload;
    if (m.type === AuditType.ChannelRequestExec) out.push({ time: nsToIso(m.timestampNs), channelId: id, kind: 'exec', command: String(p['command'] ?? '') });
    else if (m.type === AuditType.ChannelRequestSubsystem) out.push({ time: nsToIso(m.timestampNs), channelId: id, kind: 'subsystem', command: String(p['subsystem'] ?? '') });
    else if (m.type === AuditType.ChannelRequestShell) shells.set(id, { editor: new LineEditor(), decoder: new StringDecoder('utf8'), alt: false });
    else if (m.type === AuditType.IO) {
      const s = shells.get(id);
      const data = p['data'];
      if (!s || !(data instanceof Uint8Array)) return;
      const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
      if (p['stream'] === 1) {
        const on = Math.max(text.lastIndexOf('\x1b[?1049h'), text.lastIndexOf('\x1b[?1047h'), text.lastIndexOf('\x1b[?47h'));
        const off = Math.max(text.lastIndexOf('\x1b[?1049l'), text.lastIndexOf('\x1b[?1047l'), text.lastIndexOf('\x1b[?47l'));
        if (on !== -1 || off !== -1) s.alt = on > off;
      } else if (p['stream'] === 0 && !s.alt) {
        for (const t of s.editor.feed(s.decoder.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength)))) {
          out.push({ time: nsToIso(m.timestampNs), channelId: id, kind: 'typed', command: t.line, ...(t.uncertain ? { uncertain: true } : {}) });
        }
      }
    }
  });
  return out;
}

/** Every message as one JSON line (data as UTF-8 text when it is valid UTF-8, else base64). */
export async function binaryToJsonLines(input: Input, write: (line: string) => void): Promise<BinaryScan> {
  return scanBinary(input, (m) => {
    const payload: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(m.payload)) {
      if (v instanceof Uint8Array) {
        const buf = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        const text = buf.toString('utf8');
        payload[k] = Buffer.from(text, 'utf8').equals(buf) ? { text } : { base64: buf.toString('base64') };
      } else payload[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    write(JSON.stringify({ time: nsToIso(m.timestampNs), type: m.type, name: auditTypeName(m.type), channelId: m.channelId, payload }));
  });
}
