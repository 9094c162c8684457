import { AuditType } from '../events.js';
import { HashChain } from '../hash-chain.js';
import type { ByteSink } from '../file-sink.js';
import { IoMessageEncoder, encodeCbor } from './cbor.js';
import { binaryHeader, type SealPayload } from './binary-format.js';

export interface BinaryWriterOptions {
  readonly connectionId: string;
  /** Receives header + uncompressed CBOR messages (the spool file; see binary-compress.ts). */
  readonly sink: ByteSink;
  /** Writes the 40-byte header through the sink first (false when the sink wrote it already). */
  readonly writeHeader?: boolean;
  /** Continues an existing chain (recovery appends a seal to a crashed spool file). */
  readonly chain?: HashChain;
}

/**
 * Writes the messages of an Airlock binary recording (format: binary-format.ts) UNCOMPRESSED to
 * the spool: the session path does only CBOR framing, one SHA-256 step per message and a
 * batched write. Compression (gzip) happens once the recording is sealed, off the session's
 * path (binary-compress.ts); on random or already-compressed output deflate is slower than the
 * session itself, so doing it inline would mean dropping data. Messages are batched (`commit`)
 * and chained as they are encoded, so the chain always matches the byte order on disk.
 */
export class BinaryWriter {
  readonly #sink: ByteSink;
  readonly #chain: HashChain;
  readonly #io: IoMessageEncoder;
  readonly #connectionId: string;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #sealed = false;

  constructor(options: BinaryWriterOptions) {
    const header = binaryHeader();
    this.#sink = options.sink;
    this.#connectionId = options.connectionId;
    this.#chain = options.chain ?? new HashChain(header);
    this.#io = new IoMessageEncoder(options.connectionId);
    if (options.writeHeader) options.sink.write(header);
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

  /** Appends an already-encoded message (copied byte for byte). */
  raw(message: Buffer): void {
    this.#chain.add(message);
    this.#push(message);
  }

  #push(b: Buffer): void {
    this.#batch.push(b);
    this.#batchBytes += b.length;
  }

  /** Hands the messages encoded since the last commit to the sink as one write. */
  commit(): void {
    if (this.#batch.length === 0) return;
    // One copy per batch: the sink then owns its bytes and the session's buffers are released.
    const chunk = this.#batch.length === 1 ? Buffer.from(this.#batch[0] as Buffer) : Buffer.concat(this.#batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    this.#sink.write(chunk);
  }

  /** Writes a Checkpoint message (the caller then fsyncs the sink). */
  checkpoint(timestampNs: bigint): void {
    if (this.#sealed) return;
    this.event(timestampNs, AuditType.Checkpoint, null, { messages: this.#chain.count, chain: this.#chain.value });
    this.commit();
  }

  /**
   * Writes the Seal message; returns the final digest (the chain after the seal, so it also
   * covers the seal's complete/reason fields) and the message count.
   */
  seal(timestampNs: bigint, seal: Omit<SealPayload, 'messages' | 'chain'>): { digest: string; messages: number } {
    if (this.#sealed) throw new Error('recording already sealed');
    this.#sealed = true;
    const payload: Record<string, unknown> = { complete: seal.complete, messages: this.#chain.count, chain: this.#chain.value };
    if (seal.reason !== undefined) payload['reason'] = seal.reason;
    if (seal.dropped !== undefined) payload['dropped'] = seal.dropped;
    this.event(timestampNs, AuditType.Seal, null, payload);
    this.commit();
    return { digest: this.#chain.hex, messages: this.#chain.count };
  }
}
