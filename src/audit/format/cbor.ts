/**
 * The CBOR pieces the binary format needs beyond cbor-x: a hand-built encoding of I/O messages
 * (the hot path: a small fresh prefix, the data itself is never copied) and an item scanner that
 * finds where each message of a CBOR sequence ends (the chain hashes exact message bytes).
 */
import { Encoder } from 'cbor-x';

// cbor-x's default record extension is not standard CBOR (shared reference); plain maps only.
export const cborEncoder = new Encoder({ useRecords: false, mapsAsObjects: true });

/** Encodes a value and returns bytes the caller owns (cbor-x reuses its output buffer). */
export function encodeCbor(value: unknown): Buffer {
  return Buffer.from(cborEncoder.encode(value));
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return cborEncoder.decode(bytes);
}

function head(major: number, value: number): Buffer {
  if (value < 24) return Buffer.from([(major << 5) | value]);
  if (value < 0x100) return Buffer.from([(major << 5) | 24, value]);
  if (value < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(value, 1);
    return b;
  }
  if (value < 0x100000000) {
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(value, 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = (major << 5) | 27;
  b.writeBigUInt64BE(BigInt(value), 1);
  return b;
}

const text = (s: string): Buffer => {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([head(3, bytes.length), bytes]);
};

/**
 * Encodes I/O messages for one connection. The message is `prefix(channelId, stream, length)`
 * followed by the data bytes: the caller hashes and writes both without concatenating them.
 */
export class IoMessageEncoder {
  readonly #start: Buffer;
  readonly #typeAndChannelKey: Buffer;
  readonly #payloadStart: Buffer;
  readonly #dataKey: Buffer;

  constructor(connectionId: string) {
    // { connectionId, timestamp, type: 500, channelId, payload: { stream, data } }
    this.#start = Buffer.concat([Buffer.from([0xa5]), text('connectionId'), text(connectionId), text('timestamp'), Buffer.from([0x1b])]);
    this.#typeAndChannelKey = Buffer.concat([text('type'), head(0, 500), text('channelId')]);
    this.#payloadStart = Buffer.concat([text('payload'), Buffer.from([0xa2]), text('stream')]);
    this.#dataKey = text('data');
  }

  prefix(timestampNs: bigint, channelId: number, stream: number, length: number): Buffer {
    const channel = head(0, channelId);
    const bstr = head(2, length);
    const size =
      this.#start.length + 8 + this.#typeAndChannelKey.length + channel.length + this.#payloadStart.length + 1 + this.#dataKey.length + bstr.length;
    const out = Buffer.allocUnsafe(size);
    let o = this.#start.copy(out, 0);
    out.writeBigUInt64BE(timestampNs, o);
    o += 8;
    o += this.#typeAndChannelKey.copy(out, o);
    o += channel.copy(out, o);
    o += this.#payloadStart.copy(out, o);
    out[o++] = stream; // 0..2: a one-byte CBOR uint
    o += this.#dataKey.copy(out, o);
    bstr.copy(out, o);
    return out;
  }
}

export class CborFormatError extends Error {}

/**
 * Offset just past the CBOR item starting at `pos`, or undefined when the buffer ends first
 * (a truncated item). Throws CborFormatError on bytes that are not well-formed CBOR.
 */
export function cborItemEnd(buf: Uint8Array, pos: number): number | undefined {
  return skip(buf, pos);
}

function readArg(buf: Uint8Array, pos: number, ai: number): { value: number; next: number } | undefined {
  if (ai < 24) return { value: ai, next: pos };
  const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
  if (size === 0) throw new CborFormatError(`reserved additional information ${ai}`);
  if (pos + size > buf.length) return undefined;
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + (buf[pos + i] as number);
  return { value, next: pos + size };
}

function skip(buf: Uint8Array, pos: number): number | undefined {
  if (pos >= buf.length) return undefined;
  const initial = buf[pos] as number;
  const major = initial >> 5;
  const ai = initial & 0x1f;
  pos++;
  if (ai === 31) {
    // A break outside an indefinite-length item.
    if (major === 7) throw new CborFormatError('unexpected break');
    if (major === 0 || major === 1 || major === 6) throw new CborFormatError('indefinite length on a type without one');
    // Indefinite string/array/map: items until a break.
    for (;;) {
      if (pos >= buf.length) return undefined;
      if (buf[pos] === 0xff) return pos + 1;
      const next = skip(buf, pos);
      if (next === undefined) return undefined;
      pos = next;
      if (major === 5) {
        const value = skip(buf, pos);
        if (value === undefined) return undefined;
        pos = value;
      }
    }
  }
  if (major === 7) {
    if (ai < 24) return pos;
    if (ai >= 28) throw new CborFormatError(`reserved simple value encoding ${ai}`);
    const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : 8;
    return pos + size > buf.length ? undefined : pos + size;
  }
  const arg = readArg(buf, pos, ai);
  if (arg === undefined) return undefined;
  pos = arg.next;
  switch (major) {
    case 0:
    case 1:
      return pos;
    case 2:
    case 3:
      return pos + arg.value > buf.length ? undefined : pos + arg.value;
    case 4:
    case 5: {
      const items = major === 4 ? arg.value : arg.value * 2;
      for (let i = 0; i < items; i++) {
        const next = skip(buf, pos);
        if (next === undefined) return undefined;
        pos = next;
      }
      return pos;
    }
    default:
      // Tag: one item follows.
      return skip(buf, pos);
  }
}
