import { hostname as osHostname } from 'node:os';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../core/clock.js';
import { createDockerClient } from './engine-client.js';
import { removeContainer } from './engine-ops.js';
import { LABEL } from './labels.js';
import type { DockerTlsOptions } from './options.js';

/**
 * Removes Airlock containers whose owner is gone — the backstop for a crashed gateway, a lost
 * engine answer, or a connection whose close() failed. Run it at start-up and every interval.
 *
 * A container is removed when (see `reapReason`):
 *   - its `airlock.deadline` has passed (any gateway);
 *   - it is ours (`airlock.gateway` = our id) but its connection is not live any more, and it is
 *     older than `minAgeMs` (so a container whose connection is still being set up is safe);
 *   - it belongs to another gateway on this host (`airlock.gateway-host`) whose process
 *     (`airlock.gateway-pid`) no longer exists;
 *   - it belongs to another gateway and is older than `foreignMaxAgeMs` (a gateway on another
 *     host that died without cleaning up).
 */
export interface ReaperDeps {
  /** A ready client, or the engine address (and TLS) to build one the reaper owns. */
  readonly docker?: Docker;
  readonly host?: string;
  readonly tls?: DockerTlsOptions;
  readonly gatewayId: string;
  /** Ids of the connections this gateway is serving right now. */
  readonly liveConnections: () => Iterable<string>;
  readonly foreignMaxAgeMs: number;
  /** Our containers younger than this are never reaped (default 10 s). */
  readonly minAgeMs?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Defaults to os.hostname(). */
  readonly hostname?: string;
  /** Defaults to `process.kill(pid, 0)` (ESRCH = gone). */
  readonly isProcessAlive?: (pid: number) => boolean;
  readonly timeouts?: { readonly http: number; readonly containerStop: number };
}

export interface Reaper {
  /** One sweep; resolves with the number of containers removed. Concurrent calls share a run. */
  runOnce(): Promise<number>;
  start(intervalMs: number): void;
  /** Stops the timer and waits for a running sweep. */
  stop(): Promise<void>;
}

export interface ReapCandidate {
  readonly labels: Readonly<Record<string, string>>;
  /** Creation time in ms (label airlock.created-at, else the Engine's Created). */
  readonly createdMs: number;
}

export interface ReapPolicy {
  readonly gatewayId: string;
  readonly hostname: string;
  readonly live: ReadonlySet<string>;
  readonly now: number;
  readonly minAgeMs: number;
  readonly foreignMaxAgeMs: number;
  readonly isProcessAlive: (pid: number) => boolean;
}

/** Why a container should go, or undefined to keep it. Pure, so it is unit-tested. */
export function reapReason(candidate: ReapCandidate, policy: ReapPolicy): string | undefined {
  const labels = candidate.labels;
  const age = policy.now - candidate.createdMs;
  const deadline = Date.parse(labels[LABEL.deadline] ?? '');
  if (Number.isFinite(deadline) && policy.now > deadline) return 'deadline passed';
  const gateway = labels[LABEL.gateway];
  if (gateway === policy.gatewayId) {
    const connection = labels[LABEL.connection];
    if (age >= policy.minAgeMs && (connection === undefined || !policy.live.has(connection))) return 'connection gone';
    return undefined;
  }
  if (labels[LABEL.gatewayHost] === policy.hostname) {
    const pid = Number(labels[LABEL.gatewayPid]);
    if (Number.isSafeInteger(pid) && pid > 0 && !policy.isProcessAlive(pid)) return 'gateway process gone';
  }
  if (age > policy.foreignMaxAgeMs) return 'older than foreignMaxAge';
  return undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export function createReaper(deps: ReaperDeps): Reaper {
  const owned = deps.docker ? undefined : createDockerClient(deps.host ?? 'unix:///var/run/docker.sock', deps.tls);
  const docker = deps.docker ?? owned!.docker;
  const clock = deps.clock ?? systemClock;
  const timeouts = deps.timeouts ?? { http: 15_000, containerStop: 10_000 };
  const host = deps.hostname ?? osHostname();
  const isAlive = deps.isProcessAlive ?? processAlive;
  let running: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function sweep(): Promise<number> {
    const list = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.managed}=true`] },
      abortSignal: AbortSignal.timeout(timeouts.http),
    });
    const policy: ReapPolicy = {
      gatewayId: deps.gatewayId,
      hostname: host,
      live: new Set(deps.liveConnections()),
      now: clock.now(),
      minAgeMs: deps.minAgeMs ?? 10_000,
      foreignMaxAgeMs: deps.foreignMaxAgeMs,
      isProcessAlive: isAlive,
    };
    let removed = 0;
    for (const info of list) {
      const labels = info.Labels ?? {};
      const labelled = Date.parse(labels[LABEL.createdAt] ?? '');
      const reason = reapReason({ labels, createdMs: Number.isFinite(labelled) ? labelled : info.Created * 1000 }, policy);
      if (!reason) continue;
      try {
        await removeContainer(docker.getContainer(info.Id), timeouts, clock);
        removed++;
        deps.logger.info(
          {
            containerId: info.Id,
            name: info.Names?.[0],
            reason,
            gateway: labels[LABEL.gateway],
            connectionId: labels[LABEL.connection],
            gatewayHost: labels[LABEL.gatewayHost],
            gatewayPid: labels[LABEL.gatewayPid],
          },
          'reaped container',
        );
      } catch (err) {
        deps.logger.warn({ err, containerId: info.Id, reason }, 'reaper could not remove a container');
      }
    }
    return removed;
  }

  function runOnce(): Promise<number> {
    running ??= sweep().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(intervalMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      runOnce()
        .catch((err: unknown) => deps.logger.warn({ err }, 'reaper run failed'))
        .finally(() => schedule(intervalMs));
    }, intervalMs);
    timer.unref();
  }

  return {
    runOnce,
    start(intervalMs: number): void {
      if (timer || stopped) return;
      schedule(intervalMs);
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => undefined);
      owned?.close();
    },
  };
}
