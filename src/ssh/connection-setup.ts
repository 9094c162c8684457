/**
 * What one authenticated connection runs with. Decided once per connection after authentication
 * and before any session channel is opened, because a config server (ContainerSSH's
 * `configserver`) may change it for this connection alone: the backend and its settings, the
 * `security.*` policy and the log level. Without a config server it is the static configuration.
 */
import type { Backend, BackendConnection, ConnectionInfo } from '../backend/backend.js';
import type { SshOptions } from './options.js';
import { PERMISSIVE_SECURITY, type SecurityPolicyConfig } from './policy.js';

export interface ConnectionSetup {
  /** The connection's facts with the config server's metadata/environment/files merged in. */
  readonly info: ConnectionInfo;
  /**
   * Starts the workload. The returned connection's `close()` also releases whatever was created
   * for this connection alone (a backend built from its own config); when opening fails, that
   * is released before the promise rejects.
   */
  openWorkload(signal: AbortSignal): Promise<BackendConnection>;
  readonly security: SecurityPolicyConfig;
  /** `security.env` decision for one SSH `env` request. */
  readonly envAllowed: (name: string) => boolean;
  /** Concurrent session channels; -1 = unlimited. */
  readonly maxSessions: number;
  /** pino level for this connection's own log lines; absent = the gateway's. */
  readonly logLevel?: string;
}

/** Builds the setup of one authenticated connection; rejects with an AirlockError (fail closed). */
export type ConnectionConfigurer = (info: ConnectionInfo, signal: AbortSignal) => Promise<ConnectionSetup>;

/** The static configuration: the gateway's backend and options, the same for every connection. */
export function staticConnectionSetup(info: ConnectionInfo, backend: Backend, options: SshOptions): ConnectionSetup {
  return {
    info,
    openWorkload: (signal) => backend.openConnection(info, signal),
    security: options.security ?? PERMISSIVE_SECURITY,
    envAllowed: options.envAllowed,
    maxSessions: options.maxSessions,
  };
}
