import { createHash } from 'node:crypto';

/** OpenSSH's fingerprint of a public key blob: "SHA256:" + unpadded base64 of its SHA-256. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Normalises a configured fingerprint (a trailing "=" is accepted, as some tools print it). */
export function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replace(/=+$/, '');
}
