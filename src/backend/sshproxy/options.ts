import type { Logger } from 'pino';

/** What the SSH proxy backend needs, independent of src/config (the CLI maps `sshproxy.*` onto it). */
export interface SshProxyBackendOptions {
  /** Upstream host name or IP address. */
  readonly server: string;
  readonly port: number;
  /** true: log in upstream as the connection's authenticated user name; false: as `username`. */
  readonly usernamePassThrough: boolean;
  readonly username?: string;
  readonly password?: string;
  /** Private key text (PEM or OpenSSH format, unencrypted). */
  readonly privateKey?: string;
  /** "SHA256:..." fingerprints; the upstream's host key must be one of them. */
  readonly allowedHostKeyFingerprints: readonly string[];
  /** Algorithm lists offered upstream; absent = ssh2's defaults. */
  readonly algorithms?: SshProxyAlgorithms;
  /** Connect + handshake + login, and every later upstream request (channel open, sftp). */
  readonly timeoutMs: number;
  /** Full identification string, e.g. "SSH-2.0-Airlock". */
  readonly clientVersion: string;
  /** Upstream keepalive (a dead upstream ends its sessions instead of hanging them); 0 = off. */
  readonly keepaliveIntervalMs?: number;
  readonly logger: Logger;
}

export interface SshProxyAlgorithms {
  readonly cipher?: readonly string[];
  readonly kex?: readonly string[];
  readonly hmac?: readonly string[];
  readonly serverHostKey?: readonly string[];
}
