import { createGunzip, gzipSync, constants as zlibConstants } from 'node:zlib';
import { Readable } from 'node:stream';
import { AuditType } from '../events.js';
import { HashChain } from '../hash-chain.js';
import { BINARY_HEADER_LENGTH, parseBinaryHeader, type AuditMessage } from './binary-format.js';
import { CborFormatError, cborItemEnd, decodeCbor } from './cbor.js';

export interface SealInfo {
  readonly complete: boolean;
  readonly reason?: string;
  readonly dropped?: { messages: number; bytes: number };
  /** Final digest: the chain after the seal message. */
  readonly digest: string;
}

export interface BinaryScan {
  readonly version: number;
  readonly connectionId?: string;
  /** Messages decoded (including checkpoints and the seal). */
  readonly messages: number;
  /** Chain after the last decoded message (equals the seal's digest when sealed). */
  readonly chain: string;
  readonly seal?: SealInfo;
  /** The stream ends early (no gzip trailer, partial message, or no seal). */
  readonly truncated: boolean;
  /** Bytes of the (decompressed) file up to the end of the last complete message, header included. */
  readonly validBytes: number;
  /** Evidence of modification or corruption; empty for an intact recording. */
  readonly problems: readonly string[];
}

export type MessageHandler = (message: AuditMessage, raw: Buffer) => void | Promise<void>;

export interface ScanOptions {
  /** The input is a spool file: header + uncompressed messages (binary-compress.ts). */
  readonly raw?: boolean;
}

// What our compressor (zlib) puts in the 10-byte gzip header: no flags, no mtime, this OS byte;
// XFL says 4 (fastest, level 1) or 0 (stored). The header is outside gzip's CRC and the message
// chain, so any other value there is a modification (the manifest's SHA-256 covers later members).
const GZIP_HEADER = gzipSync(Buffer.alloc(0), { level: zlibConstants.Z_BEST_SPEED }).subarray(0, 10);
function ourGzipHeader(h: Buffer): boolean {
  return h.subarray(0, 8).equals(GZIP_HEADER.subarray(0, 8)) && (h[8] === 4 || h[8] === 0) && h[9] === GZIP_HEADER[9];
}

function toMessage(value: unknown): AuditMessage | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  const ts = v['timestamp'];
  const channelId = v['channelId'];
  const payload = v['payload'];
  if (typeof v['connectionId'] !== 'string' || typeof v['type'] !== 'number') return undefined;
  if (typeof ts !== 'bigint' && typeof ts !== 'number') return undefined;
  if (channelId !== null && typeof channelId !== 'number') return undefined;
  if (payload === null || typeof payload !== 'object') return undefined;
  return {
    connectionId: v['connectionId'],
    timestampNs: BigInt(ts),
    type: v['type'],
    channelId: channelId as number | null,
    payload: payload as Record<string, unknown>,
  };
}

function sameBytes(a: unknown, b: Buffer): boolean {
  return a instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * Reads a binary recording as a stream: checks the header, decompresses (tolerating a missing
 * gzip trailer, as a crash leaves it), splits the CBOR sequence, recomputes the hash chain and
 * compares it with every checkpoint and the seal. `onMessage` sees each message and its raw bytes.
 */
export async function scanBinary(
  input: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  onMessage?: MessageHandler,
  options: ScanOptions = {},
): Promise<BinaryScan> {
  const problems: string[] = [];
  const iterator = (Readable.from(input) as AsyncIterable<Buffer | Uint8Array>)[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  while (head.length < BINARY_HEADER_LENGTH) {
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, Buffer.from(next.value)]);
  }
  const version = parseBinaryHeader(head);
  const chain = new HashChain(head.subarray(0, BINARY_HEADER_LENGTH));
  const rest = head.subarray(BINARY_HEADER_LENGTH);

  let gzipHeaderChecked = false;
  async function* compressed(): AsyncGenerator<Buffer> {
    let buf: Buffer = rest;
    while (!gzipHeaderChecked) {
      if (buf.length >= 10) {
        gzipHeaderChecked = true;
        if (!ourGzipHeader(buf.subarray(0, 10))) problems.push('the gzip header was modified');
        break;
      }
      const next = await iterator.next();
      if (next.done) break;
      buf = Buffer.concat([buf, Buffer.from(next.value)]);
    }
    if (buf.length > 0) yield buf;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield Buffer.from(next.value);
    }
  }

  let pending: Buffer = Buffer.alloc(0);
  let messages = 0;
  let connectionId: string | undefined;
  let seal: SealInfo | undefined;
  let truncated = false;
  let afterSealReported = false;
  let validBytes = BINARY_HEADER_LENGTH;

  const handleItem = async (raw: Buffer) => {
    let decoded: unknown;
    try {
      decoded = decodeCbor(raw);
    } catch {
      decoded = undefined;
    }
    const message = toMessage(decoded);
    const before = Buffer.from(chain.value);
    const countBefore = chain.count;
    chain.add(raw);
    messages++;
    if (seal && !afterSealReported) {
      afterSealReported = true;
      problems.push(`message ${messages} follows the seal (data was appended)`);
    }
    if (!message) {
      problems.push(`message ${messages} is not a valid audit message`);
      return;
    }
    if (connectionId === undefined) connectionId = message.connectionId;
    else if (message.connectionId !== connectionId) problems.push(`message ${messages} belongs to another connection`);
    if (message.type === AuditType.Checkpoint || message.type === AuditType.Seal) {
      const p = message.payload;
      if (p['messages'] !== countBefore || !sameBytes(p['chain'], before)) {
        problems.push(
          `${message.type === AuditType.Seal ? 'the seal' : `the checkpoint at message ${messages}`} does not match the hash chain (messages before it were modified, removed, added or reordered)`,
        );
      }
      if (message.type === AuditType.Seal) {
        const dropped = p['dropped'] as { messages: number; bytes: number } | undefined;
        seal = {
          complete: p['complete'] === true,
          ...(typeof p['reason'] === 'string' ? { reason: p['reason'] } : {}),
          ...(dropped ? { dropped: { messages: Number(dropped.messages), bytes: Number(dropped.bytes) } } : {}),
          digest: chain.hex,
        };
      }
    }
    await onMessage?.(message, raw);
  };

  const source = Readable.from(compressed());
  const gunzip = options.raw ? undefined : createGunzip();
  if (gunzip) {
    source.on('error', (err) => gunzip.destroy(err));
    source.pipe(gunzip);
    // A raw spool file has no gzip header to check.
  } else gzipHeaderChecked = true;
  let corrupt = false;
  try {
    for await (const chunk of gunzip ?? source) {
      pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
      let pos = 0;
      for (;;) {
        let end: number | undefined;
        try {
          end = cborItemEnd(pending, pos);
        } catch (err) {
          if (!(err instanceof CborFormatError)) throw err;
          problems.push(`the message stream is corrupt after message ${messages} (${err.message})`);
          corrupt = true;
          break;
        }
        if (end === undefined) break;
        await handleItem(pending.subarray(pos, end));
        validBytes += end - pos;
        pos = end;
      }
      if (corrupt) break;
      pending = pending.subarray(pos);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'Z_BUF_ERROR' || /unexpected end of file/.test(e.message)) truncated = true;
    else problems.push(`the compressed data is corrupt (${e.message})`);
  } finally {
    source.destroy();
    gunzip?.destroy();
  }
  if (!corrupt && pending.length > 0) truncated = true;
  if (!seal) truncated = true;
  if (!gzipHeaderChecked && messages === 0 && !truncated) problems.push('the compressed stream is missing');
  return {
    version,
    ...(connectionId !== undefined ? { connectionId } : {}),
    messages,
    chain: chain.hex,
    ...(seal ? { seal } : {}),
    truncated,
    validBytes,
    problems,
  };
}
