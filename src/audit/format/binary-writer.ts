import { createGzip, constants as zlibConstants, type Gzip } from 'node:zlib';
import { once } from 'node:events';
import { AuditType } from '../events.js';
import { HashChain } from '../hash-chain.js';
import type { ByteSink } from '../file-sink.js';
import type { MemoryBudget } from '../memory-budget.js';
import { IoMessageEncoder, encodeCbor } from './cbor.js';
import { binaryHeader, type SealPayload } from './binary-format.js';

export interface BinaryWriterOptions {
  readonly connectionId: string;
  /** Receives the compressed stream (the header is NOT written: see `writeHeader`). */
  readonly sink: ByteSink;
  /** Writes the 40-byte header through the sink first (false when the sink wrote it already). */
  readonly writeHeader?: boolean;
  /** Bytes handed to zlib count against the recorder's memory bound until zlib consumed them. */
  readonly budget?: MemoryBudget;
}

/**
 * Streams messages into an Airlock binary recording (format: binary-format.ts). Messages are
 * batched (`commit` hands the batch to zlib as one write) and chained as they are encoded, so the
 * chain always matches the byte order on disk. Compression runs on libuv's thread pool.
 */
export class BinaryWriter {
  readonly #gzip: Gzip;
  readonly #chain: HashChain;
  readonly #io: IoMessageEncoder;
  readonly #connectionId: string;
  readonly #budget: MemoryBudget | undefined;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #sealed = false;

  constructor(options: BinaryWriterOptions) {
    const header = binaryHeader();
    this.#connectionId = options.connectionId;
    this.#budget = options.budget;
    this.#chain = new HashChain(header);
    this.#io = new IoMessageEncoder(options.connectionId);
    if (options.writeHeader) options.sink.write(header);
    // Level 1: terminal text still compresses well, and a fast level keeps up with bulk output.
    this.#gzip = createGzip({ level: zlibConstants.Z_BEST_SPEED });
    this.#gzip.on('data', (chunk: Buffer) => options.sink.write(chunk));
  }

  /** Chain value and message count so far. */
  get chain(): HashChain {
    return this.#chain;
  }

  event(timestampNs: bigint, type: number, channelId: number | null, payload: Readonly<Record<string, unknown>>): void {
    this.raw(encodeCbor({ connectionId: this.#connectionId, timestamp: timestampNs, type, channelId, payload }));
  }

  io(timestampNs: bigint, channelId: number, stream: number, data: Buffer): void {
    const prefix = this.#io.prefix(timestampNs, channelId, stream, data.length);
    this.#chain.add(prefix, data);
    this.#push(prefix);
    this.#push(data);
  }

  /** Appends an already-encoded message (recovery copies surviving messages byte for byte). */
  raw(message: Buffer): void {
    this.#chain.add(message);
    this.#push(message);
  }

  #push(b: Buffer): void {
    this.#batch.push(b);
    this.#batchBytes += b.length;
  }

  /** Hands the messages encoded since the last commit to the compressor. */
  commit(): void {
    if (this.#batch.length === 0) return;
    const chunk = this.#batch.length === 1 ? (this.#batch[0] as Buffer) : Buffer.concat(this.#batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    const size = chunk.length;
    this.#budget?.force(size);
    this.#gzip.write(chunk, () => this.#budget?.release(size));
  }

  /** Writes a Checkpoint message and flushes the compressor; resolves once the sink has the bytes. */
  async checkpoint(timestampNs: bigint): Promise<void> {
    if (this.#sealed) return;
    this.event(timestampNs, AuditType.Checkpoint, null, { messages: this.#chain.count, chain: this.#chain.value });
    this.commit();
    await new Promise<void>((resolve) => this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
  }

  /**
   * Writes the Seal message and ends the stream; resolves with the final digest (the chain value
   * after the seal, so it also covers the seal's complete/reason fields) once the sink has it all.
   */
  async seal(timestampNs: bigint, seal: Omit<SealPayload, 'messages' | 'chain'>): Promise<{ digest: string; messages: number }> {
    if (this.#sealed) throw new Error('recording already sealed');
    this.#sealed = true;
    const payload: Record<string, unknown> = { complete: seal.complete, messages: this.#chain.count, chain: this.#chain.value };
    if (seal.reason !== undefined) payload['reason'] = seal.reason;
    if (seal.dropped !== undefined) payload['dropped'] = seal.dropped;
    this.event(timestampNs, AuditType.Seal, null, payload);
    this.commit();
    const ended = once(this.#gzip, 'end');
    this.#gzip.end();
    this.#gzip.resume();
    await ended;
    return { digest: this.#chain.hex, messages: this.#chain.count };
  }

  /** Stops without a seal (abandoned); the compressor's memory is freed. */
  destroy(): void {
    this.#sealed = true;
    this.#gzip.destroy();
  }
}
