/** SSH wire types (RFC 4251 §5) for the certificate and KRL parsers. Pure. */

/** Reads SSH wire types from one buffer; every read throws (plain Error) on truncation. */
export class WireReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  get offset(): number {
    return this.pos;
  }
  get done(): boolean {
    return this.pos === this.buf.length;
  }
  byte(): number {
    if (this.pos + 1 > this.buf.length) throw new Error('truncated byte');
    return this.buf[this.pos++] ?? 0;
  }
  boolean(): boolean {
    return this.byte() !== 0;
  }
  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new Error('truncated uint64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Buffer {
    const len = this.uint32();
    if (this.pos + len > this.buf.length) throw new Error('truncated string');
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
  /** A non-negative mpint (two's complement, big-endian) as a bigint; negative values throw. */
  unsignedMpint(): bigint {
    const raw = this.bytes();
    if (raw.length === 0) return 0n;
    if ((raw[0] ?? 0) & 0x80) throw new Error('negative mpint');
    return BigInt(`0x${raw.toString('hex')}`);
  }
}

export function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}
