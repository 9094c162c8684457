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

/** The Docker (and Podman-compatible) backend. See README.md for the decisions behind it. */
export function createDockerBackend(options: DockerBackendOptions): Backend {
  const client = createDockerClient(options.host, options.tls);
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const ctx: BackendContext = {
    docker: client.docker,
    options,
    clock,
    hostname: hostname(),
    pid: process.pid,
    users: new ImageUsers({ docker: client.docker, timeouts: options.timeouts, clock, logger }),
    dirs: new DirectoryCache(),
    logger,
  };
  let closed = false;

  return {
    name: 'docker',

    async openConnection(info: ConnectionInfo, signal?: AbortSignal): Promise<BackendConnection> {
      if (closed) throw new AirlockError('BACKEND_UNAVAILABLE', 'the Docker backend is closed');
      signal?.throwIfAborted();
      return DockerConnection.open(ctx, info, signal);
    },

    async ping(signal?: AbortSignal): Promise<void> {
      try {
        // dockerode's typings omit ping's options; the JS passes abortSignal through.
        const ping = client.docker.ping.bind(client.docker) as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
        await ping({ abortSignal: callSignal(options.timeouts.http, signal) });
      } catch (err) {
        const mapped = mapEngineError(err, 'BACKEND_UNAVAILABLE', 'pinging the engine');
        // A timed-out or failing ping means the same thing to a readiness probe.
        throw mapped.code === 'BACKEND_UNAVAILABLE' ? mapped : new AirlockError('BACKEND_UNAVAILABLE', mapped.message, { cause: err });
      }
    },

    async close(): Promise<void> {
      closed = true;
      client.close();
    },
  };
}
