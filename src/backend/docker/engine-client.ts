import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { inspect } from 'node:util';
import Docker from 'dockerode';
import type DockerModem from 'docker-modem';
import { AirlockError } from '../../core/errors.js';
import type { DockerTlsOptions } from './options.js';

export interface DockerClient {
  readonly docker: Docker;
  /** Closes idle keep-alive sockets; hijacked process streams are not affected. */
  close(): void;
}

/**
 * Builds a dockerode client for "unix:///path" or "tcp://host:port" (TLS when PEM material is
 * given). Our own keep-alive agent, so `close()` can release its sockets, and explicit
 * socketPath/host values so DOCKER_HOST in the environment cannot redirect us (docker-modem reads
 * it by default).
 */
export function createDockerClient(host: string, tls?: DockerTlsOptions): DockerClient {
  const secure = tls !== undefined && (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined);
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new AirlockError('CONFIG_INVALID', `docker host "${host}" needs an absolute socket path`);
    const agent = cheapToInspect(new HttpAgent({ keepAlive: true }));
    const docker = newDocker({ socketPath, host: undefined, port: undefined, protocol: 'http', agent });
    return { docker, close: () => agent.destroy() };
  }
  const match = /^tcp:\/\/([^/:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\/?$/.exec(host);
  if (!match?.[1] || !match[2]) throw new AirlockError('CONFIG_INVALID', `docker host "${host}" must be unix:///path or tcp://host:port`);
  const agent = cheapToInspect(secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true }));
  const docker = newDocker({
    socketPath: undefined,
    host: match[1],
    port: Number(match[2]),
    protocol: secure ? 'https' : 'http',
    agent,
    ...(tls?.ca ? { ca: tls.ca } : {}),
    ...(tls?.cert ? { cert: tls.cert } : {}),
    ...(tls?.key ? { key: tls.key } : {}),
  });
  return { docker, close: () => agent.destroy() };
}

/**
 * docker-modem formats every request's options — our agent included — with
 * `util.inspect(…, {showHidden: true, depth: null})` for a debug line, even when debugging is
 * off. That walks every socket the agent holds (and their getters), so each Engine call cost
 * grew with the number of open connections: with 100 concurrent logins the gateway spent most
 * of its CPU there and logins timed out. A custom inspect makes the agent a short string.
 */
function cheapToInspect<T extends object>(agent: T): T {
  Object.defineProperty(agent, inspect.custom, { value: () => '[Docker engine agent]' });
  return agent;
}

/** docker-modem takes an `agent`; dockerode's option typings do not list it. */
function newDocker(options: DockerModem.ConstructorOptions): Docker {
  return new Docker(options as Docker.DockerOptions);
}
