/**
 * Which reapers `airlock serve` runs, and starting them. The rule (docs/operations.md,
 * "Reapers"):
 *   - the static backend's own: `docker`/`podman` → the Docker reaper on `docker.connection`,
 *     `kubernetes` → the Kubernetes reaper in `kubernetes.pod.metadata.namespace`, `sshproxy` →
 *     none (it starts no workloads; a Docker reaper there would only log failures on a host
 *     without Docker);
 *   - with a config server, also the reaper of each container backend the config file has a
 *     section for (`docker:` → Docker, `kubernetes:` → Kubernetes): a config server that switches
 *     a connection to that backend uses that section's engine unless its answer names another one,
 *     so leftovers of a crash there are found. Workloads on an engine the file does not name are
 *     removed when their connection ends, but not after a crash.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.js';
import { createReaper } from '../backend/docker/index.js';
import { dockerOptions, kubernetesConnection } from './wiring.js';

export type ReaperKind = 'docker' | 'kubernetes';

/** The reapers to run, the static backend's first. `fileSections`: top-level keys the file writes. */
export function reaperKinds(config: AppConfig, fileSections: ReadonlySet<string>): ReaperKind[] {
  const kinds = new Set<ReaperKind>();
  if (config.backend === 'kubernetes') kinds.add('kubernetes');
  else if (config.backend === 'docker' || config.backend === 'podman') kinds.add('docker');
  if (config.configserver) {
    if (fileSections.has('docker')) kinds.add('docker');
    if (fileSections.has('kubernetes')) kinds.add('kubernetes');
  }
  return [...kinds];
}

export interface ReapersDeps {
  readonly config: AppConfig;
  readonly kinds: readonly ReaperKind[];
  readonly gatewayId: string;
  /** Connections (and warm-pool containers) the reapers must keep. */
  readonly liveConnections: () => Iterable<string>;
  readonly logger: Logger;
}

export interface Reapers {
  /** Stops every timer and waits for running sweeps. */
  stop(): Promise<void>;
}

/** Runs each reaper once (a failure is logged, start-up goes on), then on its interval. */
export async function startReapers(deps: ReapersDeps): Promise<Reapers> {
  const { config, gatewayId, liveConnections } = deps;
  const logger = deps.logger.child({ component: 'reaper' });
  const started: Array<{ stop(): Promise<void> }> = [];
  for (const kind of deps.kinds) {
    const log = logger.child({ reaper: kind });
    let reaper: { runOnce(): Promise<number>; start(intervalMs: number): void; stop(): Promise<void> };
    let interval: number;
    if (kind === 'kubernetes') {
      const { createKubernetesReaper } = await import('../backend/kubernetes/index.js');
      reaper = createKubernetesReaper({
        gatewayId,
        liveConnections,
        logger: log,
        connection: kubernetesConnection(config),
        namespace: config.kubernetes.pod.metadata.namespace,
        foreignMaxAgeMs: config.kubernetes.reaper.foreignMaxAge,
        timeouts: config.kubernetes.timeouts,
      });
      interval = config.kubernetes.reaper.interval;
    } else {
      // The engine the Docker backend built from this config talks to (TLS included).
      const engine = dockerOptions(config, gatewayId, logger);
      reaper = createReaper({
        gatewayId,
        liveConnections,
        logger: log,
        host: engine.host,
        ...(engine.tls ? { tls: engine.tls } : {}),
        foreignMaxAgeMs: config.docker.reaper.foreignMaxAge,
        timeouts: config.docker.timeouts,
      });
      interval = config.docker.reaper.interval;
    }
    await reaper.runOnce().catch((err: unknown) => log.warn({ err }, 'start-up reaper run failed'));
    if (interval > 0) reaper.start(interval);
    started.push(reaper);
  }
  if (deps.kinds.length > 0) logger.info({ reapers: deps.kinds }, 'reapers started');
  else logger.info({ backend: config.backend }, 'no reaper: this backend starts no workloads and no config server can send any to a configured engine');
  return {
    async stop() {
      await Promise.all(started.map((r) => r.stop()));
    },
  };
}
