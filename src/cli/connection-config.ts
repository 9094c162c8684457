/**
 * The config server step of a connection (ContainerSSH's `configserver`): ask the server, merge
 * its `config` over the static config (config/merge.ts), merge its metadata/environment/files
 * into the connection's (0.6 key-by-key rule), and turn the result into the connection's
 * ConnectionSetup — policy, env filter, session cap, log level, and the backend to open the
 * workload on.
 *
 * The backend: when the merged config leaves the backend's settings as they are, the gateway's
 * backend serves the connection (warm pool included). Otherwise a backend is built from the
 * merged config for this connection alone — `backend:` itself may change, e.g. docker → sshproxy
 * — and closed with the connection's workload, or at once when opening the workload fails, so no
 * engine client, container or upstream connection outlives it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Backend, BackendConnection, ConnectionInfo } from '../backend/backend.js';
import { delegateConnection } from '../backend/index.js';
import { mergeMaps } from '../auth/metadata-merge.js';
import { filterEnv, mergeConnectionConfig, type AppConfig, type ConfigAnswer, type ConfigWebhook } from '../config/index.js';
import { AirlockError, isAirlockError } from '../core/errors.js';
import type { ConnectionConfigurer, ConnectionSetup } from '../ssh/index.js';
import { createConnectionBackend, securityPolicy } from './wiring.js';

export interface ConnectionConfigurerDeps {
  /** The parsed config file. */
  readonly config: AppConfig;
  /** The gateway's backend, built from `config`. */
  readonly backend: Backend;
  readonly webhook: ConfigWebhook;
  readonly gatewayId: string;
  readonly logger: Logger;
  /** `containerssh_config_server_*`: one call per connection, `ok` false when it refused it. */
  readonly onConfigRequest?: (ok: boolean) => void;
}

export function createConnectionConfigurer(deps: ConnectionConfigurerDeps): ConnectionConfigurer {
  return async (info, signal) => {
    let answer: ConfigAnswer;
    let config: AppConfig;
    try {
      answer = await deps.webhook.fetch(info, signal);
      config = mergeConnectionConfig(deps.config, answer.config);
    } catch (err) {
      deps.onConfigRequest?.(false);
      throw err;
    }
    deps.onConfigRequest?.(true);
    const merged = mergeInfo(info, answer);
    const own = sameBackend(deps.config, config) ? undefined : config;
    if (own) deps.logger.child({ connectionId: info.connectionId }).info({ backend: own.backend }, 'connection gets its own backend (config server)');
    const setup: ConnectionSetup = {
      info: merged,
      openWorkload: own ? (s) => openOwn(own, merged, s) : (s) => deps.backend.openConnection(merged, s),
      security: securityPolicy(config.security),
      envAllowed: (name) => filterEnv(name, config.security.env),
      maxSessions: config.security.maxSessions,
      ...(config.log.level !== deps.config.log.level ? { logLevel: config.log.level } : {}),
    };
    return setup;
  };

  async function openOwn(config: AppConfig, info: ConnectionInfo, signal: AbortSignal): Promise<BackendConnection> {
    let backend: Backend;
    try {
      // No warm pool of its own: it would start containers for a backend that serves one login.
      backend = await createConnectionBackend({ ...config, docker: { ...config.docker, pool: { ...config.docker.pool, size: 0 } } }, deps.gatewayId, deps.logger, deps.backend);
    } catch (err) {
      // Checks a backend makes when it is built (a key file, a pod template) judge the answer here.
      if (isAirlockError(err) && (err.code === 'CONFIG_INVALID' || err.code === 'CONFIG_FILE_UNREADABLE')) {
        throw new AirlockError('CONFIG_SERVER_INVALID', `config server answer: ${err.message}`, { cause: err, details: err.details });
      }
      throw err;
    }
    const log = deps.logger.child({ connectionId: info.connectionId });
    // Once, however often close() is called (BackendConnection.close is idempotent).
    let released: Promise<void> | undefined;
    const release = () =>
      (released ??= backend.close().then(
        () => log.debug({ backend: backend.name }, 'per-connection backend closed'),
        (err: unknown) => log.warn({ err, backend: backend.name }, 'closing the per-connection backend failed'),
      ));
    let conn: BackendConnection;
    try {
      conn = await backend.openConnection(info, signal);
    } catch (err) {
      await release();
      throw err;
    }
    // Everything the workload can do (SFTP over the file API, port forwarding, ...) passes
    // through; only close() does more.
    return delegateConnection(conn, {
      async close(reason) {
        try {
          await conn.close(reason);
        } finally {
          await release();
        }
      },
    });
  }
}

/**
 * Whether `merged` runs workloads exactly like the gateway's backend. The warm pool and reaper
 * keys cannot differ (merge.ts refuses them), so this compares what a backend is built from.
 */
function sameBackend(base: AppConfig, merged: AppConfig): boolean {
  if (base.backend !== merged.backend) return false;
  switch (merged.backend) {
    case 'kubernetes':
      return isDeepStrictEqual(base.kubernetes, merged.kubernetes);
    case 'sshproxy':
      return isDeepStrictEqual(base.sshproxy, merged.sshproxy);
    default:
      return isDeepStrictEqual(base.docker, merged.docker);
  }
}

/** The config server's maps over what auth collected, key by key (ContainerSSH 0.6). */
function mergeInfo(info: ConnectionInfo, answer: ConfigAnswer): ConnectionInfo {
  const decoded = Object.entries(answer.files ?? {}).map(([path, v]) => [path, { content: Buffer.from(v.value, 'base64'), sensitive: v.sensitive }] as const);
  return {
    ...info,
    metadata: mergeMaps(info.metadata, answer.metadata),
    environment: mergeMaps(info.environment, answer.environment),
    files: Object.fromEntries([...Object.entries(info.files), ...decoded]),
  };
}
