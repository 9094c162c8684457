import { auditTypeName } from './events.js';
import { BufferSink } from './file-sink.js';
import { nsToIso } from './ns-clock.js';
import { scanBinary, type BinaryScan } from './format/binary-reader.js';
import { COMMANDS_FILE, parseCommandLog, type CommandEntry } from './commands/command-log.js';
import { RecordingDeriver, memorySinks } from './derive.js';

type Input = AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>;

export interface ChannelCast {
  readonly channelId: number;
  readonly kind: 'shell' | 'exec';
  readonly command?: string;
  readonly cast: string;
}

async function derive(input: Input, options: { casts: boolean; commands: boolean }) {
  const buffers = new Map<string, BufferSink>();
  const deriver = new RecordingDeriver(memorySinks(buffers), options);
  const scan = await scanBinary(input, (m) => deriver.message(m));
  const { channels } = await deriver.finish();
  return { buffers, channels, scan };
}

/**
 * Converts a binary recording into one asciicast v2 per session channel: the same code the
 * recorder runs at seal time (derive.ts), so an export equals what `audit.format: both` stores.
 */
export async function binaryToCasts(input: Input): Promise<{ casts: ChannelCast[]; scan: BinaryScan }> {
  const { buffers, channels, scan } = await derive(input, { casts: true, commands: false });
  const casts: ChannelCast[] = [];
  for (const c of channels) {
    const buf = c.cast ? buffers.get(c.cast) : undefined;
    if (!buf || c.kind === 'subsystem') continue;
    casts.push({ channelId: c.channelId, kind: c.kind, ...(c.command !== undefined ? { command: c.command } : {}), cast: buf.toBuffer().toString('utf8') });
  }
  return { casts, scan };
}

/** The typed-command log rebuilt from a binary recording (for recordings without commands.jsonl). */
export async function commandsFromBinary(input: Input): Promise<CommandEntry[]> {
  const { buffers } = await derive(input, { casts: false, commands: true });
  const log = buffers.get(COMMANDS_FILE);
  return log ? parseCommandLog(log.toBuffer().toString('utf8')) : [];
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
