/**
 * Host certificates (`ssh.hostcerts`, OpenSSH PROTOCOL.certkeys): the gateway presents a
 * certificate for its host key, so clients that trust the host CA (`@cert-authority` in
 * known_hosts) connect without trust on first use. The plain host keys stay on offer for clients
 * without the CA; OpenSSH picks the certificate algorithm when its known_hosts has the CA.
 *
 * ssh2 has no server-side host certificates. It advertises each host key under `key.type` and
 * sends `key.getPublicSSH()` as K_S (RFC 4253 §8), so per certificate algorithm we hand it the
 * parsed host key with exactly those two changed; signing is the host key's own. What cannot be
 * done from outside: the exchange-hash signature must name the plain algorithm (`ssh-ed25519`,
 * `rsa-sha2-512`), not the certificate algorithm. patches/ssh2+1.17.0.patch does that in
 * lib/protocol/kex.js; `npm install` applies it (patch-package), and start-up refuses host
 * certificates when the installed ssh2 lacks it.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintOf, parseAuthorizedKeyLine } from '../auth/public-key.js';
import { CERT_SUFFIX, CERT_TYPE_HOST, parseCertificate, verifySshSignature, type OpenSshCertificate } from '../auth/ssh-cert.js';
import { AirlockError } from '../core/errors.js';
import type { HostKey } from './host-keys.js';

export interface HostCertificate {
  /** The file it came from; for logs and errors. */
  readonly source: string;
  /** The certificate's wire blob (what clients receive as the host key). */
  readonly blob: Buffer;
  readonly cert: OpenSshCertificate;
  /** The configured host key it certifies. */
  readonly hostKey: HostKey;
  /** Host key algorithms it is offered under, e.g. `rsa-sha2-512-cert-v01@openssh.com`. */
  readonly algorithms: readonly string[];
}

const NO_EXPIRY = 0xffffffffffffffffn;

function isoTime(seconds: bigint): string {
  if (seconds >= NO_EXPIRY) return 'forever';
  const ms = Number(seconds) * 1000;
  return Number.isFinite(ms) && ms < 8.64e15 ? new Date(ms).toISOString() : `${seconds} s`;
}

/** Certificate algorithms per certified key type; RSA follows ssh.hostKeyAlgos (no SHA-1). */
function algorithmsFor(cert: OpenSshCertificate, hostKeyAlgos: readonly string[]): string[] {
  const plain = cert.certType.slice(0, -CERT_SUFFIX.length);
  if (plain !== 'ssh-rsa') return [cert.certType];
  return ['rsa-sha2-512', 'rsa-sha2-256'].filter((a) => hostKeyAlgos.includes(a)).map((a) => `${a}${CERT_SUFFIX}`);
}

/** True when the installed ssh2 carries patches/ssh2+1.17.0.patch (see the file comment). */
export function ssh2SupportsHostCertificates(): boolean {
  try {
    const kex = join(dirname(createRequire(import.meta.url).resolve('ssh2')), 'protocol', 'kex.js');
    return readFileSync(kex, 'utf8').includes("serverHostKey.replace(/-cert-v01@openssh\\.com$/, '')");
  } catch {
    return false;
  }
}

export interface LoadHostCertificatesOptions {
  /** ms since the epoch. */
  readonly now: number;
  /** ssh.hostKeyAlgos: which RSA signature algorithms are offered. */
  readonly hostKeyAlgos: readonly string[];
  /** Injected for tests; defaults to ssh2SupportsHostCertificates. */
  readonly ssh2Patched?: () => boolean;
}

function invalid(file: string, problem: string, cause?: unknown): AirlockError {
  return new AirlockError('HOSTCERT_INVALID', `ssh.hostcerts: ${file}: ${problem}`, cause === undefined ? {} : { cause });
}

/**
 * Reads `ssh.hostcerts` (files as `ssh-keygen -s ca -h` writes them) and checks each the way a
 * client will: a host certificate, signed correctly, valid now, certifying one of `hostKeys`.
 * Throws AirlockError HOSTCERT_INVALID naming the file, so a bad certificate stops the start
 * instead of failing every client that trusts the CA.
 */
export async function loadHostCertificates(files: readonly string[], hostKeys: readonly HostKey[], options: LoadHostCertificatesOptions): Promise<HostCertificate[]> {
  if (files.length === 0) return [];
  if (!(options.ssh2Patched ?? ssh2SupportsHostCertificates)()) {
    throw new AirlockError(
      'HOSTCERT_INVALID',
      'ssh.hostcerts needs the patched ssh2 (patches/ssh2+1.17.0.patch); the installed one is not: reinstall with `npm ci`, which runs patch-package',
    );
  }
  const nowSeconds = BigInt(Math.floor(options.now / 1000));
  const loaded: HostCertificate[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw invalid(file, `cannot be read: ${(err as Error).message}`, err);
    }
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    const parsed = lines.length === 1 ? parseAuthorizedKeyLine(lines[0] ?? '') : null;
    if (!parsed || !parsed.algorithm.endsWith(CERT_SUFFIX)) throw invalid(file, 'expected one OpenSSH certificate line (`<type>-cert-v01@openssh.com AAAA...`, as ssh-keygen -s writes it)');
    let cert: OpenSshCertificate;
    try {
      cert = parseCertificate(parsed.blob);
    } catch (err) {
      throw invalid(file, (err as Error).message, err);
    }
    if (!verifySshSignature(cert.signatureKey, cert.signature, cert.signedBody)) throw invalid(file, 'the CA signature does not verify (the certificate was modified or is damaged)');
    if (cert.type !== CERT_TYPE_HOST) throw invalid(file, 'is a user certificate; sign the host key with `ssh-keygen -s <ca> -h`');
    if (nowSeconds < cert.validAfter) throw invalid(file, `is not valid before ${isoTime(cert.validAfter)}`);
    if (nowSeconds >= cert.validBefore) throw invalid(file, `expired at ${isoTime(cert.validBefore)}`);
    const hostKey = hostKeys.find((k) => k.publicKey.equals(cert.publicKey));
    if (!hostKey) throw invalid(file, `certifies key ${fingerprintOf(cert.publicKey)}, which is not one of the host keys (ssh.hostkeys)`);
    const algorithms = algorithmsFor(cert, options.hostKeyAlgos);
    if (algorithms.length === 0) throw invalid(file, 'is an RSA certificate but ssh.hostKeyAlgos offers neither rsa-sha2-512 nor rsa-sha2-256');
    const clash = loaded.find((c) => c.algorithms.some((a) => algorithms.includes(a)));
    if (clash) throw invalid(file, `a second ${cert.certType} certificate (the first is ${clash.source}); one per host key type`);
    loaded.push({ source: file, blob: Buffer.from(parsed.blob), cert, hostKey, algorithms });
  }
  return loaded;
}

/** For the start-up log line. */
export function describeHostCertificate(c: HostCertificate): string {
  return `${c.algorithms.join(',')} ${c.source} id="${c.cert.keyId}" ca=${fingerprintOf(c.cert.signatureKey)} until=${isoTime(c.cert.validBefore)}`;
}

/**
 * ssh2 `hostKeys` entries presenting the certificates (see the file comment): the parsed host
 * key as prototype (ssh2 recognises parsed keys by an internal symbol, which the prototype
 * carries), with the certificate algorithm as `type` and the certificate as the public key.
 */
export function certificateHostKeyEntries(certs: readonly HostCertificate[]): { key: ssh2.ParsedKey }[] {
  return certs.flatMap((c) => {
    const parsed = ssh2.utils.parseKey(c.hostKey.pem);
    const base = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!base || base instanceof Error) throw new AirlockError('HOSTKEY_INVALID', `host key ${c.hostKey.source} no longer parses`);
    return c.algorithms.map((algorithm) => {
      const key = Object.create(base, {
        type: { value: algorithm, enumerable: true },
        getPublicSSH: { value: () => c.blob },
      }) as ssh2.ParsedKey;
      return { key };
    });
  });
}
