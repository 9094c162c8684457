/**
 * SSH user certificates (OpenSSH PROTOCOL.certkeys) as an AuthProvider: the gateway itself checks
 * the trusted CA, the CA signature, the validity window, the principals, every critical option
 * and the revocation list. ssh2 does none of this server-side.
 *
 * The userauth signature (made with the certified key) is checked by the SSH layer through
 * `verifyCertificateUserauthSignature`, next to the plain-key check in public-key.ts.
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { AirlockError, ERROR_CODES, type ErrorCode } from '../core/errors.js';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential } from './provider.js';
import { blobKeyType, fingerprintOf, parseAuthorizedKeyLine } from './public-key.js';
import { EMPTY_REVOCATION_LIST, isRevoked, watchRevocationList, type RevocationList } from './revocation-list.js';
import { CERT_SUFFIX, CERT_TYPE_USER, optionString, parseCertificate, plainKeyObject, verifySshSignature, type OpenSshCertificate } from './ssh-cert.js';

export function isCertificateAlgorithm(algorithm: string): boolean {
  return algorithm.endsWith(CERT_SUFFIX);
}

/** What a valid certificate grants; the session layer enforces it. */
export interface CertificateGrant {
  readonly keyId: string;
  readonly serial: bigint;
  /** `force-command` critical option: runs instead of whatever the client asked for. */
  readonly forceCommand?: string;
  readonly permitPty: boolean;
  readonly permitPortForwarding: boolean;
}

export type CertificateCheck =
  | { readonly ok: true; readonly cert: OpenSshCertificate; readonly grant: CertificateGrant }
  | { readonly ok: false; readonly code: ErrorCode; readonly detail: string };

/**
 * AuthRequest.remoteAddress is always `${ip}:${port}` (ssh/connection.ts), IPv6 unbracketed:
 * "1.2.3.4:22" / "::1:22" / "::ffff:1.2.3.4:22" → bare IP.
 */
function clientIp(remoteAddress: string): string {
  const stripped = remoteAddress.replace(/:\d+$/, '');
  const withoutPort = isIP(stripped) ? stripped : remoteAddress;
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(withoutPort);
  return v4mapped?.[1] ?? withoutPort;
}

/** `source-address`: comma-separated addresses and CIDR blocks (sshd's addr_match_cidr_list). */
function sourceAddressAllows(list: string, remoteAddress: string): boolean {
  const ip = clientIp(remoteAddress);
  const family = isIP(ip);
  if (family === 0) return false;
  const blocks = new BlockList();
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    const [net, prefix] = entry.split('/');
    const type = isIP(net ?? '');
    if (type === 0) throw new Error(`invalid source-address entry ${entry}`);
    const ipType = type === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) blocks.addAddress(net ?? '', ipType);
    else {
      const bits = Number(prefix);
      if (!/^\d+$/.test(prefix) || bits > (type === 4 ? 32 : 128)) throw new Error(`invalid source-address entry ${entry}`);
      blocks.addSubnet(net ?? '', bits, ipType);
    }
  }
  return blocks.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export interface CheckCertificateArgs {
  readonly blob: Buffer;
  readonly username: string;
  readonly remoteAddress: string;
  /** Base64 blobs of the trusted CA public keys. */
  readonly trustedCaKeys: ReadonlySet<string>;
  readonly revoked: RevocationList;
  /** ms since the epoch. */
  readonly now: number;
}

/** Every check sshd makes for a TrustedUserCAKeys certificate, in a fixed order. Never throws. */
export function checkCertificate(args: CheckCertificateArgs): CertificateCheck {
  const refuse = (code: ErrorCode, detail: string): CertificateCheck => ({ ok: false, code, detail });
  let cert: OpenSshCertificate;
  try {
    cert = parseCertificate(args.blob);
  } catch (err) {
    return refuse('CERT_INVALID', err instanceof Error ? err.message : 'unparseable certificate');
  }
  if (!args.trustedCaKeys.has(cert.signatureKey.toString('base64'))) return refuse('CERT_UNTRUSTED_CA', `CA ${fingerprintOf(cert.signatureKey)} is not trusted`);
  if (!verifySshSignature(cert.signatureKey, cert.signature, cert.signedBody)) return refuse('CERT_INVALID', 'CA signature does not verify');
  if (cert.type !== CERT_TYPE_USER) return refuse('CERT_NOT_USER', `certificate type ${cert.type}`);
  const nowSeconds = BigInt(Math.floor(args.now / 1000));
  if (nowSeconds < cert.validAfter) return refuse('CERT_NOT_YET_VALID', `valid after ${cert.validAfter}`);
  if (nowSeconds >= cert.validBefore) return refuse('CERT_EXPIRED', `valid before ${cert.validBefore}`);
  if (cert.principals.length === 0 || !cert.principals.includes(args.username)) return refuse('CERT_PRINCIPAL_MISMATCH', 'login name not in principals');
  if (isRevoked(cert, args.blob, args.revoked)) return refuse('CERT_REVOKED', `serial ${cert.serial}`);
  let forceCommand: string | undefined;
  for (const [name, data] of cert.criticalOptions) {
    try {
      if (name === 'force-command') forceCommand = optionString(data);
      else if (name === 'source-address') {
        if (!sourceAddressAllows(optionString(data), args.remoteAddress)) return refuse('CERT_SOURCE_ADDRESS', `client ${clientIp(args.remoteAddress)} not in source-address`);
      } else return refuse('CERT_OPTION_UNSUPPORTED', `critical option ${name}`);
    } catch (err) {
      return refuse('CERT_INVALID', err instanceof Error ? err.message : `bad critical option ${name}`);
    }
  }
  return {
    ok: true,
    cert,
    grant: {
      keyId: cert.keyId,
      serial: cert.serial,
      ...(forceCommand !== undefined ? { forceCommand } : {}),
      permitPty: cert.extensions.has('permit-pty'),
      permitPortForwarding: cert.extensions.has('permit-port-forwarding'),
    },
  };
}

/**
 * The userauth signature (RFC 4252 §7) for a certificate credential: made by the certified key.
 * `signature` is ctx.signature as ssh2 hands it over for certificate algorithms: the full SSH
 * signature blob (ssh2 only unwraps it when its algorithm equals the cert algorithm, which never
 * happens). Never throws.
 */
export function verifyCertificateUserauthSignature(blob: Buffer, signature: Buffer, signedData: Buffer): boolean {
  try {
    return verifySshSignature(parseCertificate(blob).publicKey, signature, signedData);
  } catch {
    return false;
  }
}

/**
 * Reads `auth.publicKey.trustedUserCAKeys`: each entry is an inline public key or a file of them
 * (authorized_keys-like lines). Throws AirlockError CONFIG_INVALID at start-up.
 */
export function loadTrustedCaKeys(entries: readonly string[]): Set<string> {
  const keys = new Set<string>();
  for (const entry of entries) {
    const inline = parseAuthorizedKeyLine(entry);
    const lines = inline ? [entry] : readCaFile(entry);
    for (const line of lines) {
      const key = parseAuthorizedKeyLine(line);
      if (!key) {
        if (line.trim() === '' || line.trim().startsWith('#')) continue;
        throw new AirlockError('CONFIG_INVALID', `auth.publicKey.trustedUserCAKeys: ${entry}: a line is not a public key`);
      }
      try {
        plainKeyObject(key.blob);
      } catch (err) {
        throw new AirlockError('CONFIG_INVALID', `auth.publicKey.trustedUserCAKeys: ${entry}: unusable CA key (${(err as Error).message})`);
      }
      keys.add(key.blob.toString('base64'));
    }
  }
  if (keys.size === 0) throw new AirlockError('CONFIG_INVALID', 'auth.publicKey.trustedUserCAKeys lists no CA key');
  return keys;
}

function readCaFile(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/);
  } catch (err) {
    throw new AirlockError('CONFIG_INVALID', `auth.publicKey.trustedUserCAKeys: cannot read ${path} (neither a public key nor a readable file)`, { cause: err });
  }
}

export interface SshCaProviderDeps {
  readonly trustedCaKeys: ReadonlySet<string>;
  /** Revocation list file (KRL or plain), re-read when it changes so a revocation needs no restart. */
  readonly revokedKeysFile?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** auth.publicKey.closeAtCertificateExpiry: the certificate's `valid before` becomes the connection's deadline. */
  readonly closeAtExpiry?: boolean;
}

/** `valid before` 0xffffffffffffffff = forever (PROTOCOL.certkeys); beyond a Date's range counts as forever too. */
const FOREVER = 0xffff_ffff_ffff_ffffn;
const MAX_DATE_SECONDS = 8_640_000_000_000n;

/** The deadline a certificate puts on its connection, or undefined when it never expires. */
export function certificateDeadline(validBefore: bigint): Date | undefined {
  if (validBefore === FOREVER || validBefore > MAX_DATE_SECONDS) return undefined;
  return new Date(Number(validBefore) * 1000);
}

/**
 * Accepts `publickey` credentials whose key is a valid user certificate. The AuthDecision carries
 * the grant (forced command, permit-pty, permit-port-forwarding) for the session layer.
 */
export function createSshCaProvider(deps: SshCaProviderDeps): AuthProvider {
  const watched = deps.revokedKeysFile ? watchRevocationList(deps.revokedKeysFile, deps.logger) : undefined;
  const loadRevoked = async (): Promise<RevocationList> => (watched ? watched.current() : EMPTY_REVOCATION_LIST);
  return {
    name: 'ssh-ca',
    supports: (method: AuthMethod) => method === 'publickey',
    async authenticate(credential: Credential, request: AuthRequest): Promise<AuthDecision> {
      if (credential.method !== 'publickey') return { outcome: 'reject', reason: 'AUTH_METHOD_UNSUPPORTED' };
      const type = blobKeyType(credential.blob);
      if (type === null || !isCertificateAlgorithm(type)) return { outcome: 'reject', reason: 'NOT_A_CERTIFICATE' };
      let revoked: RevocationList;
      try {
        revoked = await loadRevoked();
      } catch (err) {
        // Fail closed: an unreadable revocation list must not let revoked certificates in.
        deps.logger.error({ file: deps.revokedKeysFile, code: 'CONFIG_INVALID', error: (err as Error).message }, 'revocation list unusable');
        return { outcome: 'error', reason: 'AUTH_BACKEND_ERROR' };
      }
      const result = checkCertificate({
        blob: credential.blob,
        username: request.username,
        remoteAddress: request.remoteAddress,
        trustedCaKeys: deps.trustedCaKeys,
        revoked,
        now: deps.clock.now(),
      });
      if (!result.ok) {
        deps.logger.info({ code: result.code, detail: result.detail }, 'certificate refused');
        return { outcome: 'reject', reason: result.code, userMessage: `airlock: ${ERROR_CODES[result.code].userMessage} [${result.code}]` };
      }
      const { grant } = result;
      deps.logger.info({ keyId: grant.keyId, serial: grant.serial.toString(), ca: fingerprintOf(result.cert.signatureKey) }, 'certificate accepted');
      // Off by default: sshd never ends a session when the certificate expires (see schema.ts).
      const deadline = deps.closeAtExpiry ? certificateDeadline(result.cert.validBefore) : undefined;
      return {
        outcome: 'accept',
        ...(deadline ? { deadline } : {}),
        metadata: {
          CERT_KEY_ID: { value: grant.keyId, sensitive: false },
          CERT_SERIAL: { value: grant.serial.toString(), sensitive: false },
        },
        session: {
          ...(grant.forceCommand !== undefined ? { forceCommand: grant.forceCommand } : {}),
          permitPty: grant.permitPty,
          permitPortForwarding: grant.permitPortForwarding,
        },
      };
    },
  };
}
