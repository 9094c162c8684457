import { z } from 'zod';
import { durationMs } from './value-parsers.js';

/**
 * The `sshproxy:` section (`backend: sshproxy`): every authenticated connection is forwarded to
 * one upstream SSH server. Key names and defaults follow ContainerSSH 0.5's `sshproxy.*`.
 * The upstream's host key must be pinned: there is no trust-on-first-use.
 */

const text = () => z.string().min(1);

// What the ssh2 client implements, minus known-weak algorithms (CBC, arcfour, SHA-1 MACs and
// kex, DSA). Kept here rather than imported from schema.ts, which imports this file.
export const SSHPROXY_CIPHERS = [
  'chacha20-poly1305@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-gcm@openssh.com',
  'aes256-ctr',
  'aes192-ctr',
  'aes128-ctr',
] as const;
export const SSHPROXY_KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
] as const;
export const SSHPROXY_MACS = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'] as const;
export const SSHPROXY_HOST_KEY_ALGOS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
] as const;

// `ssh-keygen -l` prints "SHA256:" + unpadded base64 of the key blob's SHA-256 (43 characters).
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

// RFC 4253 §4.2, as for ssh.serverVersion.
const CLIENT_VERSION = /^SSH-2\.0-[\x21-\x2c\x2e-\x7e]+(?: [\x20-\x7e]*)?$/;

/** Reads a nested field of a value that may not have parsed cleanly (refinements run regardless). */
function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
}

export const sshProxySchema = z
  .strictObject({
    /** Host name or IP address of the upstream SSH server. */
    server: text(),
    port: z.int().min(1).max(65535).default(22),
    /** Log in upstream with the user's own (authenticated) name instead of `username`. */
    usernamePassThrough: z.boolean().default(false),
    username: text().optional(),
    password: text().optional(),
    /** PEM/OpenSSH private key, inline or a file path (read at start-up). */
    privateKey: text().optional(),
    allowedHostKeyFingerprints: z
      .array(z.string().regex(FINGERPRINT, { message: 'must be a SHA256 fingerprint as printed by ssh-keygen -l, e.g. SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8' }))
      .min(1),
    ciphers: z.array(z.enum(SSHPROXY_CIPHERS)).min(1).optional(),
    kex: z.array(z.enum(SSHPROXY_KEX)).min(1).optional(),
    macs: z.array(z.enum(SSHPROXY_MACS)).min(1).optional(),
    hostKeyAlgos: z.array(z.enum(SSHPROXY_HOST_KEY_ALGOS)).min(1).optional(),
    /** Connect + handshake + authentication, and each later upstream request. */
    timeout: durationMs({ minMs: 100 }).default(60_000),
    clientVersion: z
      .string()
      .max(253)
      .regex(CLIENT_VERSION, { message: 'must look like "SSH-2.0-Name_1.0": start with SSH-2.0-, printable ASCII, no spaces or "-" in the software version (RFC 4253 §4.2)' })
      .default('SSH-2.0-Airlock'),
  })
  .superRefine(
    (value, ctx) => {
      if (field(value, 'usernamePassThrough') !== true && field(value, 'username') === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['username'],
          message: 'required unless sshproxy.usernamePassThrough is true — set the upstream user name',
        });
      }
      if (field(value, 'password') === undefined && field(value, 'privateKey') === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['privateKey'],
          message: 'the upstream login needs credentials — set sshproxy.privateKey (a key or a key file path) or sshproxy.password',
        });
      }
    },
    { when: () => true },
  );

export type SshProxyConfig = z.output<typeof sshProxySchema>;
