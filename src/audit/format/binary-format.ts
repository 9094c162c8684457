/**
 * Airlock binary recording, modelled on ContainerSSH's audit log so tools map across:
 *   40-byte header: 32-byte magic "AirlockAudit" zero-padded, uint64 LE format version (1)
 *   then one gzip stream of CBOR messages (RFC 8742 CBOR sequence), each a map
 *   { connectionId: text, timestamp: uint (ns since epoch), type: uint (events.ts numbering),
 *     channelId: uint | null, payload: map }.
 * I/O messages carry payload { stream: 0|1|2, data: bytes }. The hash chain (hash-chain.ts) is
 * seeded with SHA-256(header) and runs over each message's exact CBOR bytes; Checkpoint (998)
 * and Seal (999) messages carry { messages, chain } = count and chain value before themselves.
 */
export const BINARY_MAGIC = 'AirlockAudit';
export const BINARY_VERSION = 1;
export const BINARY_HEADER_LENGTH = 40;
/** File name of the binary recording inside a recording directory. */
export const BINARY_FILE = 'audit.airlock';

export function binaryHeader(version = BINARY_VERSION): Buffer {
  const header = Buffer.alloc(BINARY_HEADER_LENGTH);
  header.write(BINARY_MAGIC, 0, 'ascii');
  header.writeBigUInt64LE(BigInt(version), 32);
  return header;
}

/** Returns the format version, or throws when the bytes are not an Airlock binary header. */
export function parseBinaryHeader(header: Buffer): number {
  if (header.length < BINARY_HEADER_LENGTH) throw new Error('file too short for an Airlock recording header');
  const magic = header.subarray(0, 32);
  const expected = Buffer.alloc(32);
  expected.write(BINARY_MAGIC, 0, 'ascii');
  if (!magic.equals(expected)) throw new Error('not an Airlock binary recording (bad magic)');
  const version = Number(header.readBigUInt64LE(32));
  if (version !== BINARY_VERSION) throw new Error(`unsupported Airlock recording version ${version}`);
  return version;
}

/** A decoded message. */
export interface AuditMessage {
  readonly connectionId: string;
  readonly timestampNs: bigint;
  readonly type: number;
  readonly channelId: number | null;
  readonly payload: Readonly<Record<string, unknown>>;
}

export interface ChainMark {
  /** Messages before this mark. */
  readonly messages: number;
  /** Chain value after those messages. */
  readonly chain: Uint8Array;
}

export interface SealPayload extends ChainMark {
  readonly complete: boolean;
  readonly reason?: string;
  readonly dropped?: { readonly messages: number; readonly bytes: number };
}
