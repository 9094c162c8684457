import { StringDecoder } from 'node:string_decoder';
import { HashChain, TEXT_CHAIN_SEED } from '../hash-chain.js';
import type { ByteSink } from '../file-sink.js';

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * `[seconds, code, data]` line per event: "o" output, "i" input, "r" resize ("COLSxROWS").
 * Debian's asciinema 2.2 plays exactly this. Terminal bytes are decoded with a streaming UTF-8
 * decoder per stream, so a character split across chunks is not mangled.
 */
export interface CastHeader {
  readonly version: 2;
  readonly width: number;
  readonly height: number;
  /** Unix seconds of the start. */
  readonly timestamp?: number;
  readonly title?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export type CastEvent = readonly [time: number, code: string, data: string];

export function castFileName(channelId: number): string {
  return `channel-${channelId}.cast`;
}

export class AsciicastWriter {
  readonly #sink: ByteSink;
  readonly #startNs: bigint;
  readonly #chain = new HashChain(TEXT_CHAIN_SEED);
  readonly #decoders: [StringDecoder, StringDecoder, StringDecoder] = [new StringDecoder('utf8'), new StringDecoder('utf8'), new StringDecoder('utf8')];
  #lastTime = 0;

  constructor(sink: ByteSink, startNs: bigint, header: Omit<CastHeader, 'version'>) {
    this.#sink = sink;
    this.#startNs = startNs;
    this.#line(JSON.stringify({ version: 2, ...header }));
  }

  get chain(): HashChain {
    return this.#chain;
  }

  #line(text: string): void {
    const bytes = Buffer.from(text + '\n', 'utf8');
    this.#chain.add(bytes);
    this.#sink.write(bytes);
  }

  #time(ts: bigint): number {
    const us = ts > this.#startNs ? Number((ts - this.#startNs) / 1000n) : 0;
    // Players expect non-decreasing times.
    this.#lastTime = Math.max(this.#lastTime, us / 1e6);
    return this.#lastTime;
  }

  #event(ts: bigint, code: string, data: string): void {
    if (data.length === 0) return;
    this.#line(JSON.stringify([this.#time(ts), code, data]));
  }

  /** Program output (stdout or stderr: a terminal shows both). */
  output(ts: bigint, stream: 1 | 2, data: Buffer): void {
    this.#event(ts, 'o', this.#decoders[stream].write(data));
  }

  input(ts: bigint, data: Buffer): void {
    this.#event(ts, 'i', this.#decoders[0].write(data));
  }

  resize(ts: bigint, cols: number, rows: number): void {
    this.#event(ts, 'r', `${cols}x${rows}`);
  }

  /** Flushes bytes held back by the decoders (an incomplete character at the very end). */
  end(ts: bigint): void {
    this.#event(ts, 'i', this.#decoders[0].end());
    this.#event(ts, 'o', this.#decoders[1].end());
    this.#event(ts, 'o', this.#decoders[2].end());
  }
}

export interface ParsedCast {
  readonly header: CastHeader;
  readonly events: CastEvent[];
}

/** Parses a whole .cast file; throws with the line number on anything that is not asciicast v2. */
export function parseCast(content: string): ParsedCast {
  const lines = content.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const first = lines[0];
  if (first === undefined) throw new Error('empty asciicast file');
  const header = JSON.parse(first) as CastHeader;
  if (header === null || typeof header !== 'object' || header.version !== 2) throw new Error('not an asciicast v2 file (header line)');
  const events: CastEvent[] = [];
  for (let i = 1; i < lines.length; i++) {
    const e = JSON.parse(lines[i] as string) as unknown;
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== 'number' || typeof e[1] !== 'string' || typeof e[2] !== 'string') {
      throw new Error(`asciicast line ${i + 1} is not [time, code, data]`);
    }
    events.push([e[0], e[1], e[2]]);
  }
  return { header, events };
}
