import type { SecurityPolicyConfig } from './policy.js';

/** What the SSH layer needs from configuration (cli/ maps the config file onto this). */
export interface SshOptions {
  readonly listenHost: string;
  readonly listenPort: number;
  readonly ciphers: readonly string[];
  readonly kex: readonly string[];
  readonly macs: readonly string[];
  readonly hostKeyAlgos: readonly string[];
  /** Shown before authentication; empty = none. */
  readonly banner: string;
  /** Full identification string, "SSH-2.0-...". */
  readonly serverVersion: string;
  /** ms; 0 disables server keepalives. */
  readonly clientAliveInterval: number;
  readonly clientAliveCountMax: number;
  /** ms from TCP accept to successful authentication. */
  readonly loginGraceTime: number;
  readonly maxAuthTries: number;
  /** ms without channel data in either direction; 0 disables. */
  readonly idleTimeout: number;
  /** ms before a connection's deadline (token expiry) at which its sessions are warned; 0 = never. */
  readonly deadlineWarning: number;
  /** ssh.maxConnectionDuration: ms from login to the connection's deadline; 0 = no limit. */
  readonly maxConnectionDuration: number;
  /** Max concurrent session channels per connection; -1 = unlimited. */
  readonly maxSessions: number;
  /** Decides whether an `env` request may set a variable. */
  readonly envAllowed: (name: string) => boolean;
  /** security.* session policy (command/shell/tty/subsystem/signal, forceCommand); absent = allow all. */
  readonly security?: SecurityPolicyConfig;
  /** ssh.motd: shown to interactive logins with the recording and deadline notices. */
  readonly motd?: string;
}
