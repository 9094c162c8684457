import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';

/**
 * Everything the Kubernetes backend needs, in Kubernetes' own terms. Independent of src/config
 * (the CLI maps the parsed `kubernetes:` section onto it), so tests can build the backend without
 * a configuration file.
 */
export interface KubernetesBackendOptions {
  readonly connection: KubernetesConnectionOptions;
  /** This gateway process's id; stamped on every pod as label `airlock.gateway`. */
  readonly gatewayId: string;
  /** The pod template: where and what to run. */
  readonly pod: KubernetesPodOptions;
  /** `connection`: one pod per SSH connection, an exec per channel; `session`: one pod per channel. */
  readonly mode: 'connection' | 'session';
  /** undefined → `bash -l` when the image has /bin/bash, else `sh -l`. */
  readonly shellCommand?: readonly string[];
  /** The console container's main process (it replaces the image's entrypoint and command). */
  readonly idleCommand: readonly string[];
  /** Subsystem name → binary path inside the container. */
  readonly subsystems: Readonly<Record<string, string>>;
  readonly timeouts: KubernetesTimeouts;
  readonly logger: Logger;
  readonly clock?: Clock;
}

export interface KubernetesConnectionOptions {
  /** API server URL ("https://kubernetes.default.svc", "https://10.0.0.1:6443"). */
  readonly host: string;
  readonly bearerToken?: string;
  /** Re-read every minute (projected ServiceAccount tokens rotate). */
  readonly bearerTokenFile?: string;
  /** Client certificate and key: PEM text, or a path to a PEM file. */
  readonly cert?: string;
  readonly key?: string;
  /** CA bundle that signed the API server's certificate: PEM text, or a path. */
  readonly cacert?: string;
  /** Client-side rate limit (token bucket): sustained requests per second and burst. */
  readonly qps: number;
  readonly burst: number;
}

export interface KubernetesPodOptions {
  readonly namespace: string;
  /** Name prefix (ContainerSSH's `generateName`); the gateway appends connection id and a random part. */
  readonly generateName: string;
  /** Extra labels/annotations; `airlock.*` keys are the gateway's and always win. */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** A PodSpec as JSON (the Kubernetes field names); defaults are added where it says nothing. */
  readonly spec: Readonly<Record<string, unknown>>;
  /** Index in `spec.containers` of the container programs run in. */
  readonly consoleContainerNumber: number;
}

/** All in milliseconds. */
export interface KubernetesTimeouts {
  /** Pod create until Running (and its files written). */
  readonly podStart: number;
  /** Deleting a pod (retried until then). */
  readonly podStop: number;
  /** Opening an exec. */
  readonly commandStart: number;
  /** Delivering a signal; also how long kill() waits for the output to end. */
  readonly signal: number;
  /** A terminal resize (queued behind the program's start). */
  readonly window: number;
  /** Any other single API call. */
  readonly http: number;
}

/** The idle command: PID 1 that exits on TERM, so a graceful delete takes no grace period. */
export const DEFAULT_IDLE_COMMAND = ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"] as const;
