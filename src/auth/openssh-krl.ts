/**
 * Binary OpenSSH key revocation lists, as `ssh-keygen -k` writes them (OpenSSH PROTOCOL.krl).
 * Pure: bytes in, RevocationList out; throws a plain Error naming the problem on anything that
 * is not a well-formed KRL, so the caller fails closed.
 *
 * KRL signature sections (PROTOCOL.krl §6) are skipped, not verified: the file comes from the
 * gateway's own disk, which the spec calls distribution "by trusted means". OpenSSH itself never
 * writes them and refuses them since 9.4.
 */
import { createHash } from 'node:crypto';
import { blobKeyType } from './public-key.js';
import { CERT_SUFFIX } from './ssh-cert.js';
import { WireReader } from './ssh-wire.js';
import type { CertificateRevocations, RevocationList } from './revocation-list.js';

export const KRL_MAGIC = Buffer.from('SSHKRL\n\0', 'latin1');
const KRL_FORMAT_VERSION = 1;

// PROTOCOL.krl §1: section types.
const KRL_SECTION_CERTIFICATES = 1;
const KRL_SECTION_EXPLICIT_KEY = 2;
const KRL_SECTION_FINGERPRINT_SHA1 = 3;
const KRL_SECTION_SIGNATURE = 4;
const KRL_SECTION_FINGERPRINT_SHA256 = 5;
const KRL_SECTION_EXTENSION = 255;
// PROTOCOL.krl §2: certificate subsection types.
const KRL_SECTION_CERT_SERIAL_LIST = 0x20;
const KRL_SECTION_CERT_SERIAL_RANGE = 0x21;
const KRL_SECTION_CERT_SERIAL_BITMAP = 0x22;
const KRL_SECTION_CERT_KEY_ID = 0x23;
const KRL_SECTION_CERT_EXTENSION = 0x39;

export interface Krl extends RevocationList {
  /** Set by its writer (`ssh-keygen -k -z N`); ssh-keygen leaves it 0 unless told. */
  readonly krlVersion: bigint;
  /** Seconds since the epoch. */
  readonly generatedAt: bigint;
  readonly comment: string;
  /** Signature sections present (skipped, see the file comment). */
  readonly signatures: number;
}

export function isKrl(content: Buffer): boolean {
  return content.subarray(0, KRL_MAGIC.length).equals(KRL_MAGIC);
}

/** §2.3: bit N of the bitmap revokes serial offset + N; runs of set bits become ranges. */
function bitmapRanges(offset: bigint, bitmap: bigint): [bigint, bigint][] {
  const ranges: [bigint, bigint][] = [];
  const bits = bitmap.toString(2);
  let runStart = -1;
  // bits[0] is the most significant bit; index i from the right is bit number i.
  for (let i = 0; i <= bits.length; i++) {
    const set = i < bits.length && bits[bits.length - 1 - i] === '1';
    if (set && runStart < 0) runStart = i;
    if (!set && runStart >= 0) {
      ranges.push([offset + BigInt(runStart), offset + BigInt(i - 1)]);
      runStart = -1;
    }
  }
  const max = 2n ** 64n - 1n;
  if (ranges.some(([, hi]) => hi > max)) throw new Error('serial bitmap runs past 2^64');
  return ranges;
}

/** §2.5 / §5: an extension may be ignored unless it is critical. */
function readExtension(data: Buffer, where: string): void {
  const r = new WireReader(data);
  const name = r.text();
  const critical = r.boolean();
  r.bytes();
  if (!r.done) throw new Error(`trailing bytes in ${where} extension ${name}`);
  if (critical) throw new Error(`unsupported critical ${where} extension ${name}`);
}

/** §2: string ca_key, string reserved, then subsections. */
function readCertificateSection(data: Buffer): CertificateRevocations {
  const r = new WireReader(data);
  const ca = r.bytes();
  r.bytes(); // reserved
  if (ca.length > 0 && blobKeyType(ca) === null) throw new Error('certificate section with an unreadable CA key');
  const serials: [bigint, bigint][] = [];
  const keyIds = new Set<string>();
  while (!r.done) {
    const type = r.byte();
    const subData = r.bytes();
    const sub = new WireReader(subData);
    switch (type) {
      case KRL_SECTION_CERT_SERIAL_LIST:
        while (!sub.done) {
          const serial = sub.uint64();
          serials.push([serial, serial]);
        }
        break;
      case KRL_SECTION_CERT_SERIAL_RANGE: {
        const lo = sub.uint64();
        const hi = sub.uint64();
        if (lo > hi) throw new Error(`serial range ${lo}-${hi} is inverted`);
        serials.push([lo, hi]);
        break;
      }
      case KRL_SECTION_CERT_SERIAL_BITMAP: {
        const offset = sub.uint64();
        serials.push(...bitmapRanges(offset, sub.unsignedMpint()));
        break;
      }
      case KRL_SECTION_CERT_KEY_ID:
        while (!sub.done) keyIds.add(sub.text());
        break;
      case KRL_SECTION_CERT_EXTENSION:
        readExtension(subData, 'certificate section');
        break;
      default:
        throw new Error(`unknown certificate subsection type 0x${type.toString(16)}`);
    }
    if (type !== KRL_SECTION_CERT_EXTENSION && !sub.done) throw new Error(`trailing bytes in certificate subsection 0x${type.toString(16)}`);
  }
  // Serial 0 means "no serial"; OpenSSH refuses a KRL that revokes it (krl.c), and so do we.
  if (serials.some(([lo]) => lo === 0n)) throw new Error('certificate section revokes serial 0');
  return { ca: ca.length === 0 ? null : Buffer.from(ca), serials, keyIds };
}

/** Parses a binary KRL. Throws (plain Error) on anything malformed or not understood. */
export function parseKrl(content: Buffer): Krl {
  if (!isKrl(content)) throw new Error('not an OpenSSH KRL (no SSHKRL magic)');
  const r = new WireReader(content.subarray(KRL_MAGIC.length));
  const format = r.uint32();
  if (format !== KRL_FORMAT_VERSION) throw new Error(`unsupported KRL format version ${format}`);
  const krlVersion = r.uint64();
  const generatedAt = r.uint64();
  r.uint64(); // flags: none defined
  r.bytes(); // reserved
  const comment = r.text();
  const certificates: CertificateRevocations[] = [];
  const keys = new Set<string>();
  const fingerprints = new Set<string>();
  const sha1 = new Set<string>();
  let signatures = 0;
  while (!r.done) {
    const type = r.byte();
    if (type === KRL_SECTION_SIGNATURE) {
      // §6: string signature_key, string signature; skipped (see the file comment).
      r.bytes();
      r.bytes();
      signatures++;
      continue;
    }
    // §6: signature sections "must appear last".
    if (signatures > 0) throw new Error('KRL section after a signature section');
    const data = r.bytes();
    const section = new WireReader(data);
    switch (type) {
      case KRL_SECTION_CERTIFICATES:
        certificates.push(readCertificateSection(data));
        break;
      case KRL_SECTION_EXPLICIT_KEY:
        while (!section.done) {
          const blob = section.bytes();
          const keyType = blobKeyType(blob);
          if (keyType === null) throw new Error('explicit key section with an unreadable key');
          if (keyType.endsWith(CERT_SUFFIX)) throw new Error('explicit key section holds a certificate (PROTOCOL.krl §3: raw keys only)');
          keys.add(blob.toString('base64'));
        }
        break;
      case KRL_SECTION_FINGERPRINT_SHA1:
      case KRL_SECTION_FINGERPRINT_SHA256: {
        const size = type === KRL_SECTION_FINGERPRINT_SHA1 ? 20 : 32;
        while (!section.done) {
          const hash = section.bytes();
          if (hash.length !== size) throw new Error(`${size === 20 ? 'SHA1' : 'SHA256'} hash of ${hash.length} bytes`);
          if (size === 20) sha1.add(hash.toString('hex'));
          else fingerprints.add(`SHA256:${hash.toString('base64').replace(/=+$/, '')}`);
        }
        break;
      }
      case KRL_SECTION_EXTENSION:
        readExtension(data, 'KRL');
        break;
      default:
        throw new Error(`unknown KRL section type ${type}`);
    }
  }
  return { certificates, keys, fingerprints, sha1, krlVersion, generatedAt, comment, signatures };
}

/** SHA-1 of a key blob as the KRL stores it (hex), for RevocationList.sha1 look-ups. */
export function sha1Hex(blob: Buffer): string {
  return createHash('sha1').update(blob).digest('hex');
}
