import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';

/**
 * Everything the Docker backend needs, in Docker's own terms. Deliberately independent of
 * src/config (the CLI maps the parsed config onto it), so the backend can be built in tests
 * without a configuration file.
 *
 * `host` is the engine address; the container's HostConfig settings live under `hostConfig`
 * (one object cannot carry two `host` keys).
 */
export interface DockerBackendOptions {
  /** "unix:///var/run/docker.sock" or "tcp://host:port". */
  readonly host: string;
  /** PEM contents (not paths) for a tcp:// engine with TLS. */
  readonly tls?: DockerTlsOptions;
  /** This gateway process's id; stamped on every container as `airlock.gateway`. */
  readonly gatewayId: string;
  readonly container: DockerContainerOptions;
  readonly hostConfig: DockerHostConfigOptions;
  /** `connection`: one container per SSH connection, `docker exec` per channel; `session`: one container per channel. */
  readonly mode: 'connection' | 'session';
  /** undefined → `bash -l` when the image has /bin/bash, else `sh -l`. */
  readonly shellCommand?: readonly string[];
  /** The connection container's main process in `connection` mode. */
  readonly idleCommand: readonly string[];
  /** Subsystem name → binary path inside the container. */
  readonly subsystems: Readonly<Record<string, string>>;
  readonly imagePullPolicy: ImagePullPolicy;
  readonly timeouts: DockerTimeouts;
  /** Warm pool (connection mode only): containers started ahead of time; absent or size 0 = off. */
  readonly pool?: DockerPoolOptions;
  /** Image of the port-forwarding network helper (relay.ts); default RELAY_IMAGE. */
  readonly relayImage?: string;
  readonly logger: Logger;
  readonly clock?: Clock;
}

export interface DockerPoolOptions {
  /** Idle containers kept ready. */
  readonly size: number;
  /** The image they run; defaults to `container.image`. Connections for other images start fresh. */
  readonly image?: string;
}

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface DockerTlsOptions {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

export interface DockerContainerOptions {
  readonly image: string;
  /** Overrides user detection ("name", "uid" or "uid:gid"). */
  readonly user?: string;
  readonly env: Readonly<Record<string, string>>;
  /** Extra labels; `airlock.*` keys are the gateway's and always win. */
  readonly labels: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly hostname?: string;
  /** Raw create-body fields, merged last (keys match case-insensitively, like the Engine does). */
  readonly extra: Readonly<Record<string, unknown>>;
}

export interface DockerHostConfigOptions {
  /** Bytes. */
  readonly memory?: number;
  readonly nanoCpus?: number;
  readonly pidsLimit?: number;
  readonly securityOpt?: readonly string[];
  readonly readonlyRootfs?: boolean;
  /** Mount point → tmpfs options ("size=64m,mode=1777"). */
  readonly tmpfs?: Readonly<Record<string, string>>;
  readonly capDrop?: readonly string[];
  readonly capAdd?: readonly string[];
  readonly networkMode?: string;
  /** Raw HostConfig fields, merged last (keys match case-insensitively). */
  readonly extra: Readonly<Record<string, unknown>>;
}

/** All in milliseconds. */
export interface DockerTimeouts {
  /** Image pull, container create + start (+ files). */
  readonly containerStart: number;
  /** Container removal. */
  readonly containerStop: number;
  /** `docker exec` create + start, and the program's start in session mode. */
  readonly commandStart: number;
  /** Delivering a signal; also how long kill() waits for the output to end. */
  readonly signal: number;
  /** A terminal resize. */
  readonly window: number;
  /** Any other single Engine API call. */
  readonly http: number;
}

/** Built by scripts/build-relay-image.sh (busybox-static, no registry). */
export const RELAY_IMAGE = 'airlock-relay:busybox';

/** Secure defaults applied when the options say nothing (see README.md). */
export const DOCKER_DEFAULTS = {
  memory: 1024 * 1024 * 1024,
  nanoCpus: 1_000_000_000,
  pidsLimit: 512,
  capDrop: ['ALL'],
  securityOpt: ['no-new-privileges'],
} as const;
