/**
 * OpenSSH certificate parsing and SSH signature verification, written against OpenSSH
 * PROTOCOL.certkeys and RFC 4253 §6.6 / RFC 8332 / RFC 5656 / RFC 8709. Pure: no I/O, no clock.
 *
 * ssh2's utils.parseKey must never see a certificate blob (it reads the nonce as the key), so
 * keys are turned into node:crypto KeyObjects here via JWK.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { sshString, WireReader } from './ssh-wire.js';

export const CERT_SUFFIX = '-cert-v01@openssh.com';

export const CERT_TYPE_USER = 1;
export const CERT_TYPE_HOST = 2;

export interface OpenSshCertificate {
  /** e.g. "ssh-ed25519-cert-v01@openssh.com". */
  readonly certType: string;
  /** The certified key as a plain wire blob ("ssh-ed25519" + key), for signatures and revocation. */
  readonly publicKey: Buffer;
  readonly serial: bigint;
  /** 1 = user, 2 = host. */
  readonly type: number;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** Seconds since the epoch; validBefore 0xffffffffffffffff = forever. */
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  readonly criticalOptions: ReadonlyMap<string, Buffer>;
  readonly extensions: ReadonlyMap<string, Buffer>;
  /** The CA's public key blob. */
  readonly signatureKey: Buffer;
  /** The CA's signature blob (string algorithm, string signature). */
  readonly signature: Buffer;
  /** Everything the CA signed: the certificate up to (excluding) the signature field. */
  readonly signedBody: Buffer;
}

/** Key fields per certificate type; each entry rebuilds the plain key blob from the reader. */
const CERT_KEY_FIELDS: Readonly<Record<string, { plain: string; read: (r: WireReader) => Buffer[] }>> = {
  [`ssh-ed25519${CERT_SUFFIX}`]: { plain: 'ssh-ed25519', read: (r) => [r.bytes()] },
  [`ssh-rsa${CERT_SUFFIX}`]: { plain: 'ssh-rsa', read: (r) => [r.bytes(), r.bytes()] },
  [`ecdsa-sha2-nistp256${CERT_SUFFIX}`]: { plain: 'ecdsa-sha2-nistp256', read: (r) => [r.bytes(), r.bytes()] },
  [`ecdsa-sha2-nistp384${CERT_SUFFIX}`]: { plain: 'ecdsa-sha2-nistp384', read: (r) => [r.bytes(), r.bytes()] },
  [`ecdsa-sha2-nistp521${CERT_SUFFIX}`]: { plain: 'ecdsa-sha2-nistp521', read: (r) => [r.bytes(), r.bytes()] },
};

/** Packed name/data pairs (critical options, extensions); names must be unique and sorted-ish. */
function readOptions(blob: Buffer): Map<string, Buffer> {
  const r = new WireReader(blob);
  const out = new Map<string, Buffer>();
  while (!r.done) {
    const name = r.text();
    const data = r.bytes();
    if (out.has(name)) throw new Error(`duplicate certificate option ${name}`);
    out.set(name, data);
  }
  return out;
}

/** Throws (plain Error) on anything that is not a well-formed certificate of a supported type. */
export function parseCertificate(blob: Buffer): OpenSshCertificate {
  const r = new WireReader(blob);
  const certType = r.text();
  const fields = CERT_KEY_FIELDS[certType];
  if (!fields) throw new Error(`unsupported certificate type ${certType}`);
  r.bytes(); // nonce: only there to randomise the signed data
  const publicKey = Buffer.concat([sshString(fields.plain), ...fields.read(r).map((b) => sshString(b))]);
  const serial = r.uint64();
  const type = r.uint32();
  const keyId = r.text();
  const principalsReader = new WireReader(r.bytes());
  const principals: string[] = [];
  while (!principalsReader.done) principals.push(principalsReader.text());
  const validAfter = r.uint64();
  const validBefore = r.uint64();
  const criticalOptions = readOptions(r.bytes());
  const extensions = readOptions(r.bytes());
  r.bytes(); // reserved
  const signatureKey = r.bytes();
  const signedBody = blob.subarray(0, r.offset);
  const signature = r.bytes();
  if (!r.done) throw new Error('trailing bytes after certificate');
  return { certType, publicKey, serial, type, keyId, principals, validAfter, validBefore, criticalOptions, extensions, signatureKey, signature, signedBody };
}

/** The string inside an option's data field (critical options wrap their value in a string). */
export function optionString(data: Buffer): string {
  const r = new WireReader(data);
  const value = r.text();
  if (!r.done) throw new Error('trailing bytes in certificate option');
  return value;
}

const b64url = (b: Buffer) => b.toString('base64url');
/** mpint → unsigned big-endian bytes (drop the sign-padding zero). */
const unsignedInt = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

const CURVES: Readonly<Record<string, { crv: string; size: number; hash: string }>> = {
  'ecdsa-sha2-nistp256': { crv: 'P-256', size: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { crv: 'P-384', size: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { crv: 'P-521', size: 66, hash: 'sha512' },
};

interface ParsedKey {
  readonly type: string;
  readonly key: KeyObject;
}

/** A plain (non-certificate) public key blob → KeyObject. Throws on anything else. */
export function plainKeyObject(blob: Buffer): ParsedKey {
  const r = new WireReader(blob);
  const type = r.text();
  let key: KeyObject;
  if (type === 'ssh-ed25519') {
    const pk = r.bytes();
    if (pk.length !== 32) throw new Error('bad ed25519 key');
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(pk) }, format: 'jwk' });
  } else if (type === 'ssh-rsa') {
    const e = unsignedInt(r.bytes());
    const n = unsignedInt(r.bytes());
    // OpenSSH refuses RSA keys below 1024 bits; so do we.
    if (n.length * 8 < 1024) throw new Error('RSA key too small');
    key = createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' });
  } else if (CURVES[type]) {
    const curve = CURVES[type];
    if (r.text() !== type.slice('ecdsa-sha2-'.length)) throw new Error('ECDSA curve mismatch');
    const q = r.bytes();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 4) throw new Error('bad ECDSA point');
    key = createPublicKey({
      key: { kty: 'EC', crv: curve.crv, x: b64url(q.subarray(1, 1 + curve.size)), y: b64url(q.subarray(1 + curve.size)) },
      format: 'jwk',
    });
  } else {
    throw new Error(`unsupported key type ${type}`);
  }
  if (!r.done) throw new Error('trailing bytes after key');
  return { type, key };
}

/** Signature algorithms accepted per key type, with their hash. ssh-rsa (SHA-1) is refused. */
const SIG_ALGS: Readonly<Record<string, Readonly<Record<string, string | null>>>> = {
  'ssh-ed25519': { 'ssh-ed25519': null },
  'ssh-rsa': { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' },
  'ecdsa-sha2-nistp256': { 'ecdsa-sha2-nistp256': 'sha256' },
  'ecdsa-sha2-nistp384': { 'ecdsa-sha2-nistp384': 'sha384' },
  'ecdsa-sha2-nistp521': { 'ecdsa-sha2-nistp521': 'sha512' },
};

/**
 * True only when `signature` (SSH wire form: string algorithm, string bytes) is a valid signature
 * of `data` by the plain key `keyBlob`. Never throws.
 */
export function verifySshSignature(keyBlob: Buffer, signature: Buffer, data: Buffer): boolean {
  try {
    const { type, key } = plainKeyObject(keyBlob);
    const r = new WireReader(signature);
    const alg = r.text();
    let sig = r.bytes();
    if (!r.done) return false;
    const algs = SIG_ALGS[type];
    if (!algs || !(alg in algs)) return false;
    const hash = algs[alg] ?? null;
    const curve = CURVES[type];
    if (curve) {
      // RFC 5656 §3.1.2: string(mpint r, mpint s) → fixed-width r||s for ieee-p1363.
      const sr = new WireReader(sig);
      const rr = unsignedInt(sr.bytes());
      const ss = unsignedInt(sr.bytes());
      if (!sr.done || rr.length > curve.size || ss.length > curve.size) return false;
      sig = Buffer.concat([Buffer.alloc(curve.size - rr.length), rr, Buffer.alloc(curve.size - ss.length), ss]);
      return cryptoVerify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    }
    return cryptoVerify(hash, data, key, sig);
  } catch {
    return false;
  }
}
