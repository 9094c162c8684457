import { hostname } from 'node:os';
import type { Backend, BackendConnection, ConnectionInfo } from '../backend.js';
import { systemClock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { DockerConnection, type BackendContext } from './connection.js';
import { DirectoryCache } from './container-fs.js';
import { createDockerClient } from './engine-client.js';
import { mapEngineError } from './engine-errors.js';
import { callSignal } from './engine-ops.js';
import { ImageUsers } from './image-user.js';
import type { DockerBackendOptions } from './options.js';
import { ContainerPool } from './pool.js';

export interface DockerBackend extends Backend {
  /**
   * `airlock.connection` values of warm-pool containers this backend still owns (idle, being
   * started, or claimed by an open connection): the reaper must treat them as live connections.
   */
  poolOwnerIds(): string[];
  /** The warm pool's state, undefined when there is none. */
  poolStatus(): { readonly image: string; readonly size: number; readonly idle: number } | undefined;
  /**
   * A backend with other options — one connection's config server answer — that shares this
   * backend's engine client and image caches (the image user lookup costs a probe container per
   * image), without a warm pool. Options naming another engine (host or TLS) get a client of
   * their own. Its close() releases only what it owns; this backend must outlive it.
   */
  derive(options: DockerBackendOptions): DockerBackend;
}

/** The Docker (and Podman-compatible) backend. See README.md for the decisions behind it. */
export function createDockerBackend(options: DockerBackendOptions): DockerBackend {
  const client = createDockerClient(options.host, options.tls);
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const host = hostname();
  const users = new ImageUsers({ docker: client.docker, timeouts: options.timeouts, clock, logger });
  // The pool serves connection mode only: in session mode every channel needs its own container
  // created with the program as its main process.
  const pool =
    options.pool && options.pool.size > 0 && options.mode === 'connection'
      ? new ContainerPool(
          { docker: client.docker, options, clock, hostname: host, pid: process.pid, users, logger },
          { size: options.pool.size, image: options.pool.image ?? options.container.image },
        )
      : undefined;
  const ctx: BackendContext = {
    docker: client.docker,
    options,
    clock,
    hostname: host,
    pid: process.pid,
    users,
    dirs: new DirectoryCache(),
    logger,
    ...(pool ? { pool } : {}),
  };
  pool?.start();
  return backendOn(ctx, async () => {
    // Idle pool containers belong to this gateway alone: remove them before letting go.
    await pool?.close();
    client.close();
  });
}

function sameEngine(a: DockerBackendOptions, b: DockerBackendOptions): boolean {
  return a.host === b.host && a.tls?.ca === b.tls?.ca && a.tls?.cert === b.tls?.cert && a.tls?.key === b.tls?.key;
}

/** The backend over `ctx`; `release` frees what this backend owns (once, on close). */
function backendOn(ctx: BackendContext, release: () => Promise<void>): DockerBackend {
  const { options, pool } = ctx;
  let closed = false;

  return {
    name: 'docker',

    poolOwnerIds: () => pool?.ownerIds() ?? [],
    poolStatus: () => (pool ? { image: pool.image, size: pool.size, idle: pool.idleCount() } : undefined),

    derive(next: DockerBackendOptions): DockerBackend {
      const { pool: _pool, ...unpooled } = next;
      if (!sameEngine(options, next)) return createDockerBackend(unpooled);
      const { pool: _own, ...shared } = ctx;
      return backendOn({ ...shared, options: unpooled, logger: next.logger }, async () => undefined);
    },

    async openConnection(info: ConnectionInfo, signal?: AbortSignal): Promise<BackendConnection> {
      if (closed) throw new AirlockError('BACKEND_UNAVAILABLE', 'the Docker backend is closed');
      signal?.throwIfAborted();
      return DockerConnection.open(ctx, info, signal);
    },

    async ping(signal?: AbortSignal): Promise<void> {
      try {
        // dockerode's typings omit ping's options; the JS passes abortSignal through.
        const ping = ctx.docker.ping.bind(ctx.docker) as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
        await ping({ abortSignal: callSignal(options.timeouts.http, signal) });
      } catch (err) {
        const mapped = mapEngineError(err, 'BACKEND_UNAVAILABLE', 'pinging the engine');
        // A timed-out or failing ping means the same thing to a readiness probe.
        throw mapped.code === 'BACKEND_UNAVAILABLE' ? mapped : new AirlockError('BACKEND_UNAVAILABLE', mapped.message, { cause: err });
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await release();
    },
  };
}
