import { HashChain, TEXT_CHAIN_SEED } from '../hash-chain.js';
import type { ByteSink } from '../file-sink.js';

/** The typed-command log stored beside a recording: one JSON object per line. */
export const COMMANDS_FILE = 'commands.jsonl';

export interface CommandEntry {
  /** ISO time with nanoseconds. */
  readonly time: string;
  readonly channelId: number;
  /** `exec`: an exec request; `typed`: a line entered at a shell; `subsystem`: e.g. sftp. */
  readonly kind: 'exec' | 'typed' | 'subsystem';
  readonly command: string;
  /** Typed with keys whose effect the gateway cannot see (Tab completion, Ctrl-R). */
  readonly uncertain?: boolean;
}

export class CommandLogWriter {
  readonly #sink: ByteSink;
  readonly #chain = new HashChain(TEXT_CHAIN_SEED);

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  get chain(): HashChain {
    return this.#chain;
  }

  add(entry: CommandEntry): void {
    const bytes = Buffer.from(JSON.stringify(entry) + '\n', 'utf8');
    this.#chain.add(bytes);
    this.#sink.write(bytes);
  }
}

export function parseCommandLog(content: string): CommandEntry[] {
  const out: CommandEntry[] = [];
  content.split('\n').forEach((line, i) => {
    if (line === '') return;
    const v = JSON.parse(line) as Partial<CommandEntry>;
    if (typeof v.time !== 'string' || typeof v.channelId !== 'number' || typeof v.command !== 'string' || typeof v.kind !== 'string') {
      throw new Error(`command log line ${i + 1} is not a command entry`);
    }
    out.push(v as CommandEntry);
  });
  return out;
}

/** `2026-01-02T03:04:05.123Z  ch0  exec   ls -la` (the CLI's `audit commands` output). */
export function formatCommand(entry: CommandEntry): string {
  const time = entry.time.replace(/\.(\d{3})\d*Z$/, '.$1Z');
  const kind = entry.kind.padEnd(9);
  return `${time}  ch${entry.channelId}  ${kind} ${entry.command}${entry.uncertain ? '   (edited with Tab/search: may differ)' : ''}`;
}
