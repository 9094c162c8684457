/**
 * Pure public-key helpers for the SSH layer. ssh2 does NOT verify userauth signatures on the
 * server side (ctx.signature is handed over untouched), so the SSH layer calls
 * `verifyUserauthSignature` before it treats a `publickey` credential as proven.
 *
 * Wire formats: RFC 4253 §6.6 (public key blob = string algo, then algorithm fields),
 * RFC 4252 §7 (what is signed), RFC 8332 (rsa-sha2-256/512), RFC 5656 (ECDSA), RFC 8709 (Ed25519).
 */
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';

const CERT_SUFFIX = '-cert-v01@openssh.com';

/**
 * Key types whose signatures we verify, with the hash algorithms each may be verified with.
 * `undefined` means "the key type's own hash" (ssh2 picks it: none for Ed25519, the curve's
 * hash for ECDSA). Plain `ssh-rsa` (SHA-1) is refused unless the caller opts in, like OpenSSH ≥ 8.8.
 * DSA is gone from OpenSSH and is refused; sk-* (FIDO) keys are not parseable by ssh2.
 */
const VERIFIABLE: Readonly<Record<string, readonly (string | undefined)[]>> = {
  'ssh-ed25519': [undefined],
  'ecdsa-sha2-nistp256': [undefined, 'sha256'],
  'ecdsa-sha2-nistp384': [undefined, 'sha384'],
  'ecdsa-sha2-nistp521': [undefined, 'sha512'],
  'ssh-rsa': ['sha256', 'sha512'],
};

export interface PublicKeyDescription {
  /** authorized_keys form: `<algo> <base64 blob>`. */
  readonly authorizedKey: string;
  /** `SHA256:<unpadded base64>` exactly as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function describePublicKey(algorithm: string, blob: Buffer): PublicKeyDescription {
  return { authorizedKey: `${algorithm} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
}

/** Reads the leading SSH `string` (uint32 length + bytes) of a key blob: its algorithm name. */
export function blobKeyType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return null;
  const name = blob.toString('latin1', 4, 4 + len);
  return /^[\x21-\x7e]+$/.test(name) ? name : null;
}

export interface ParsedAuthorizedKey {
  readonly algorithm: string;
  readonly blob: Buffer;
  readonly comment: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses `<algo> <base64 blob> [comment]` (no authorized_keys options). Returns null for blank
 * lines, comments and anything malformed, including a blob whose embedded type is not `<algo>`.
 */
export function parseAuthorizedKeyLine(line: string): ParsedAuthorizedKey | null {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return null;
  const match = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(trimmed);
  if (!match) return null;
  const algorithm = match[1] ?? '';
  const encoded = match[2] ?? '';
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) return null;
  const blob = Buffer.from(encoded, 'base64');
  if (blobKeyType(blob) !== algorithm) return null;
  return { algorithm, blob, comment: (match[3] ?? '').trim() };
}

export interface UserauthSignature {
  /** The public key blob from the userauth request. */
  readonly blob: Buffer;
  /** The signature as ssh2 hands it over (ctx.signature: ECDSA already DER-encoded). */
  readonly signature: Buffer;
  /** The data the client signed (ctx.blob: session id + userauth request, RFC 4252 §7). */
  readonly signedData: Buffer;
  /** ctx.hashAlgo: 'sha256'/'sha512' for rsa-sha2-256/512, undefined otherwise. */
  readonly hashAlgo?: string;
  /** Accept `ssh-rsa` SHA-1 signatures (refused by default, as OpenSSH ≥ 8.8 does). */
  readonly allowRsaSha1?: boolean;
}

/**
 * True only when `signature` is a valid signature of `signedData` by the key in `blob`.
 * Never throws: garbage, unsupported key types and certificates all give false.
 */
export function verifyUserauthSignature(args: UserauthSignature): boolean {
  try {
    const type = blobKeyType(args.blob);
    // Certificates: parseKey would read the nonce as the key; the SSH CA verifier handles them.
    if (type === null || type.endsWith(CERT_SUFFIX)) return false;
    const allowed = VERIFIABLE[type];
    const hashAlgo = args.hashAlgo ?? undefined;
    const hashOk =
      allowed !== undefined &&
      (allowed.includes(hashAlgo) || (type === 'ssh-rsa' && args.allowRsaSha1 === true && (hashAlgo === undefined || hashAlgo === 'sha1')));
    if (!hashOk) return false;
    const key = ssh2.utils.parseKey(args.blob);
    if (key instanceof Error) return false;
    // parseKey also accepts text formats; insist the blob was the binary wire key, byte for byte.
    if (key.type !== type || !key.getPublicSSH().equals(args.blob)) return false;
    const algo = type === 'ssh-rsa' ? (hashAlgo ?? 'sha1') : hashAlgo;
    const result: unknown = key.verify(args.signedData, args.signature, algo);
    return result === true;
  } catch {
    return false;
  }
}
