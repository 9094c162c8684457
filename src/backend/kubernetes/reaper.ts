import { hostname as osHostname } from 'node:os';
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../core/clock.js';
import { LABEL } from '../docker/labels.js';
import { createKubeClient, type KubeClient } from './kube-client.js';
import type { KubernetesConnectionOptions, KubernetesTimeouts } from './options.js';
import { deletePod, listPods } from './pod-ops.js';

/**
 * Deletes Airlock pods whose owner is gone — the backstop for a crashed gateway, a lost API
 * answer, or a connection whose close() failed. Run at start-up and every interval; the pods'
 * `activeDeadlineSeconds` is the server-side backstop when no gateway runs at all.
 *
 * A pod (label airlock.managed=true in the namespace) is deleted when (see `podReapReason`):
 *   - its `airlock.deadline` annotation has passed (any gateway);
 *   - it is ours (label airlock.gateway) and its connection is not live, and it is older than
 *     `minAgeMs` (a pod whose connection is still being opened is safe);
 *   - it has ended (Succeeded/Failed) and no live connection of ours owns it;
 *   - it belongs to another gateway on this host (annotation airlock.gateway-host) whose process
 *     is gone — or whose pid is our own: a restarted gateway container usually gets the same pid
 *     (often 1), and one process cannot be two gateways;
 *   - it belongs to another gateway and is older than `foreignMaxAgeMs`.
 */
export interface KubernetesReaperDeps {
  /** A ready client, or the connection options to build one. */
  readonly client?: KubeClient;
  readonly connection?: KubernetesConnectionOptions;
  readonly namespace: string;
  readonly gatewayId: string;
  readonly liveConnections: () => Iterable<string>;
  readonly foreignMaxAgeMs: number;
  readonly minAgeMs?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly hostname?: string;
  readonly pid?: number;
  readonly isProcessAlive?: (pid: number) => boolean;
  readonly timeouts?: KubernetesTimeouts;
}

export interface KubernetesReaper {
  /** One sweep; resolves with the number of pods deleted. Concurrent calls share a run. */
  runOnce(): Promise<number>;
  start(intervalMs: number): void;
  /** Stops the timer and waits for a running sweep. */
  stop(): Promise<void>;
}

export interface PodCandidate {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly createdMs: number;
  readonly phase: string | undefined;
}

export interface PodReapPolicy {
  readonly gatewayId: string;
  readonly hostname: string;
  readonly pid: number;
  readonly live: ReadonlySet<string>;
  readonly now: number;
  readonly minAgeMs: number;
  readonly foreignMaxAgeMs: number;
  readonly isProcessAlive: (pid: number) => boolean;
}

/** Why a pod should go, or undefined to keep it. Pure, so it is unit-tested. */
export function podReapReason(pod: PodCandidate, policy: PodReapPolicy): string | undefined {
  const age = policy.now - pod.createdMs;
  const deadline = Date.parse(pod.annotations[LABEL.deadline] ?? '');
  if (Number.isFinite(deadline) && policy.now > deadline) return 'deadline passed';
  const gateway = pod.labels[LABEL.gateway];
  const connection = pod.labels[LABEL.connection];
  if (gateway === policy.gatewayId) {
    if (connection !== undefined && policy.live.has(connection)) return undefined;
    if (age >= policy.minAgeMs) return 'connection gone';
    return undefined;
  }
  if ((pod.phase === 'Succeeded' || pod.phase === 'Failed') && age >= policy.minAgeMs) return 'pod ended';
  if (pod.annotations[LABEL.gatewayHost] === policy.hostname) {
    const pid = Number(pod.annotations[LABEL.gatewayPid]);
    if (pid === policy.pid) return 'gateway restarted';
    if (Number.isSafeInteger(pid) && pid > 0 && !policy.isProcessAlive(pid)) return 'gateway process gone';
  }
  if (age > policy.foreignMaxAgeMs) return 'older than foreignMaxAge';
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const DEFAULT_TIMEOUTS: KubernetesTimeouts = { podStart: 60_000, podStop: 30_000, commandStart: 60_000, signal: 10_000, window: 10_000, http: 15_000 };

export function candidateOf(pod: V1Pod): PodCandidate {
  const annotations = pod.metadata?.annotations ?? {};
  const labelled = Date.parse(annotations[LABEL.createdAt] ?? '');
  const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : Number.NaN;
  return {
    labels: pod.metadata?.labels ?? {},
    annotations,
    createdMs: Number.isFinite(labelled) ? labelled : Number.isFinite(created) ? created : 0,
    phase: pod.status?.phase,
  };
}

export function createKubernetesReaper(deps: KubernetesReaperDeps): KubernetesReaper {
  const clock = deps.clock ?? systemClock;
  const client = deps.client ?? (deps.connection ? createKubeClient(deps.connection, clock) : undefined);
  if (!client) throw new Error('createKubernetesReaper needs a client or connection options');
  const timeouts = deps.timeouts ?? DEFAULT_TIMEOUTS;
  const host = deps.hostname ?? osHostname();
  const pid = deps.pid ?? process.pid;
  const isAlive = deps.isProcessAlive ?? processAlive;
  let running: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function sweep(): Promise<number> {
    const pods = await listPods(client!, deps.namespace, `${LABEL.managed}=true`, timeouts);
    const policy: PodReapPolicy = {
      gatewayId: deps.gatewayId,
      hostname: host,
      pid,
      live: new Set(deps.liveConnections()),
      now: clock.now(),
      minAgeMs: deps.minAgeMs ?? 10_000,
      foreignMaxAgeMs: deps.foreignMaxAgeMs,
      isProcessAlive: isAlive,
    };
    let deleted = 0;
    for (const pod of pods) {
      const name = pod.metadata?.name;
      if (!name || pod.metadata?.deletionTimestamp) continue;
      const candidate = candidateOf(pod);
      const reason = podReapReason(candidate, policy);
      if (!reason) continue;
      try {
        await deletePod(client!, deps.namespace, name, timeouts, clock);
        deleted++;
        deps.logger.info(
          {
            pod: name,
            namespace: deps.namespace,
            reason,
            gateway: candidate.labels[LABEL.gateway],
            connectionId: candidate.labels[LABEL.connection],
            gatewayHost: candidate.annotations[LABEL.gatewayHost],
            gatewayPid: candidate.annotations[LABEL.gatewayPid],
          },
          'reaped pod',
        );
      } catch (err) {
        deps.logger.warn({ err, pod: name, reason }, 'reaper could not delete a pod');
      }
    }
    return deleted;
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
    },
  };
}
