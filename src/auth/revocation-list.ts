/**
 * `auth.publicKey.revokedKeys`: what is revoked, read from a binary OpenSSH KRL (openssh-krl.ts)
 * or a plain text list, and the check sshd makes against it (OpenSSH krl.c ssh_krl_check_key).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AirlockError } from '../core/errors.js';
import { fileStamp } from './file-stamp.js';
import { isKrl, parseKrl, sha1Hex } from './openssh-krl.js';
import { fingerprintOf, parseAuthorizedKeyLine } from './public-key.js';
import type { OpenSshCertificate } from './ssh-cert.js';

/** Certificates revoked by serial or key id, scoped to the CA that issued them. */
export interface CertificateRevocations {
  /** The CA's public key blob; null = certificates from any CA (an empty KRL `ca_key`). */
  readonly ca: Buffer | null;
  /** Inclusive ranges. */
  readonly serials: readonly (readonly [bigint, bigint])[];
  readonly keyIds: ReadonlySet<string>;
}

export interface RevocationList {
  readonly certificates: readonly CertificateRevocations[];
  /** Base64 key blobs (certified keys, CA keys; in the plain list also whole certificates). */
  readonly keys: ReadonlySet<string>;
  /** SHA-256 key fingerprints, "SHA256:..." as `ssh-keygen -l` prints them. */
  readonly fingerprints: ReadonlySet<string>;
  /** SHA-1 digests of key blobs, lower-case hex. */
  readonly sha1: ReadonlySet<string>;
  /** Set when the list came from a binary KRL (openssh-krl.ts). */
  readonly krlVersion?: bigint;
}

export const EMPTY_REVOCATION_LIST: RevocationList = { certificates: [], keys: new Set(), fingerprints: new Set(), sha1: new Set() };

/** What a loaded list is, for the log line. */
export interface RevocationListSummary {
  readonly format: 'krl' | 'plain';
  readonly krlVersion?: string;
  readonly serialRanges: number;
  readonly keyIds: number;
  readonly keys: number;
  readonly hashes: number;
}

export function summarizeRevocationList(list: RevocationList): RevocationListSummary {
  const { krlVersion } = list;
  return {
    format: krlVersion === undefined ? 'plain' : 'krl',
    ...(krlVersion === undefined ? {} : { krlVersion: krlVersion.toString() }),
    serialRanges: list.certificates.reduce((n, c) => n + c.serials.length, 0),
    keyIds: list.certificates.reduce((n, c) => n + c.keyIds.size, 0),
    keys: list.keys.size,
    hashes: list.fingerprints.size + list.sha1.size,
  };
}

/**
 * A binary OpenSSH KRL (`SSHKRL\n\0` magic, PROTOCOL.krl) or the plain list: one entry a line,
 * the spec format `ssh-keygen -k` reads — `serial: N` / `serial: N-M`, `id: KEYID`,
 * `key: <public key>`, `sha1: <public key>`, `sha256: <public key>`, `hash: SHA256:...` — plus
 * `sha256: SHA256:...` and bare public key / `SHA256:...` lines (as sshd's RevokedKeys reads).
 * The plain list names no CA, so its serials and key ids apply to certificates from any CA.
 */
export function parseRevocationList(content: Buffer | string): RevocationList {
  const buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (isKrl(buf)) return parseKrl(buf);
  const serials: [bigint, bigint][] = [];
  const keyIds = new Set<string>();
  const keys = new Set<string>();
  const fingerprints = new Set<string>();
  const sha1 = new Set<string>();
  buf
    .toString('utf8')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const bad = () => new Error(`line ${index + 1}: not a revocation entry`);
      const keyOf = (text: string) => {
        const key = parseAuthorizedKeyLine(text);
        if (!key) throw bad();
        return key.blob;
      };
      const directive = /^(serial|id|key|sha256|sha1|hash)\s*:\s*(.*)$/i.exec(line);
      if (directive) {
        const kind = (directive[1] ?? '').toLowerCase();
        const value = (directive[2] ?? '').trim();
        if (kind === 'serial') {
          const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(value);
          if (!m) throw bad();
          const lo = BigInt(m[1] ?? '0');
          const hi = m[2] === undefined ? lo : BigInt(m[2]);
          if (hi < lo) throw bad();
          // As ssh-keygen -k: serial 0 is "no serial" (see isRevoked), so it cannot be listed.
          if (lo === 0n) throw new Error(`line ${index + 1}: serial 0 cannot be revoked (certificates without a serial have 0); revoke them by id or key`);
          serials.push([lo, hi]);
        } else if (kind === 'id') {
          keyIds.add(value);
        } else if (kind === 'key') {
          keys.add(keyOf(value).toString('base64'));
        } else if (kind === 'sha1') {
          sha1.add(sha1Hex(keyOf(value)));
        } else if (kind === 'hash' || value.startsWith('SHA256:')) {
          if (!value.startsWith('SHA256:')) throw new Error(`line ${index + 1}: only SHA256: fingerprints can be revoked by hash`);
          fingerprints.add(value);
        } else {
          fingerprints.add(fingerprintOf(keyOf(value)));
        }
        return;
      }
      if (line.startsWith('SHA256:')) {
        fingerprints.add(line);
        return;
      }
      keys.add(keyOf(line).toString('base64'));
    });
  return { certificates: [{ ca: null, serials, keyIds }], keys, fingerprints, sha1 };
}

/**
 * sshd's check (krl.c ssh_krl_check_key): the certified key or the CA key revoked by blob or
 * hash, or the certificate revoked by key id or serial under its own CA (or "any CA").
 * Serial 0 is never revoked by serial: it is what a CA writes when it does not number its
 * certificates.
 */
export function isRevoked(cert: OpenSshCertificate, certBlob: Buffer, list: RevocationList): boolean {
  const keyRevoked = (blob: Buffer) =>
    list.keys.has(blob.toString('base64')) || list.fingerprints.has(fingerprintOf(blob)) || (list.sha1.size > 0 && list.sha1.has(sha1Hex(blob)));
  if ([cert.publicKey, cert.signatureKey, certBlob].some(keyRevoked)) return true;
  return list.certificates.some(
    (section) =>
      (section.ca === null || section.ca.equals(cert.signatureKey)) &&
      (section.keyIds.has(cert.keyId) || (cert.serial !== 0n && section.serials.some(([lo, hi]) => cert.serial >= lo && cert.serial <= hi))),
  );
}

/** Reads and parses the file at start-up; a bad file is a CONFIG_INVALID naming it. */
export function loadRevocationList(file: string): RevocationList {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (err) {
    throw new AirlockError('CONFIG_INVALID', `auth.publicKey.revokedKeys: cannot read ${file}`, { cause: err });
  }
  try {
    return parseRevocationList(content);
  } catch (err) {
    throw new AirlockError('CONFIG_INVALID', `auth.publicKey.revokedKeys: ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export interface WatchedRevocationList {
  /** The list as the file is now; re-parsed only when the file changed. Throws while it is bad. */
  current(): Promise<RevocationList>;
}

/**
 * Re-reads `file` whenever it changes (file-stamp.ts), so `ssh-keygen -k -u` or an edit takes
 * effect at the next login without a restart. A file that becomes unreadable or malformed throws
 * until it is fixed: keeping the last good copy could let in a certificate the edit revoked.
 */
export function watchRevocationList(file: string, logger: Logger): WatchedRevocationList {
  let cached: { stamp: string; list: RevocationList | Error } | undefined;
  let reading: Promise<RevocationList | Error> | undefined;
  async function reload(): Promise<RevocationList | Error> {
    let stamp: string;
    try {
      stamp = await fileStamp(file);
    } catch (err) {
      cached = undefined;
      return new Error(`cannot read ${file}: ${(err as Error).message}`);
    }
    if (cached?.stamp === stamp) return cached.list;
    let list: RevocationList | Error;
    try {
      list = parseRevocationList(await readFile(file));
      logger.info({ file, ...summarizeRevocationList(list) }, 'revocation list loaded');
    } catch (err) {
      list = new Error(`${file}: ${(err as Error).message}`);
      logger.error({ file, code: 'CONFIG_INVALID', error: list.message }, 'revocation list rejected');
    }
    cached = { stamp, list };
    return list;
  }
  return {
    async current() {
      // One reload at a time; concurrent logins share it.
      reading ??= reload().finally(() => {
        reading = undefined;
      });
      const list = await reading;
      if (list instanceof Error) throw list;
      return list;
    },
  };
}
