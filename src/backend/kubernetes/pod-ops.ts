import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { retry } from '../../core/retry.js';
import { TIMED_OUT, within } from '../docker/timing.js';
import type { KubeClient } from './kube-client.js';
import { isNotFound, isTransient, mapKubeError } from './kube-errors.js';
import type { KubernetesTimeouts } from './options.js';
import { podVerdict, startTimeoutError, type PodVerdict } from './pod-status.js';

/** Pod API calls with the backend's timeouts, retries and error codes. */

export async function createPod(client: KubeClient, body: V1Pod, timeouts: KubernetesTimeouts): Promise<V1Pod> {
  const namespace = body.metadata?.namespace ?? 'default';
  try {
    // Never aborted by the caller: an aborted create may still happen unseen. The name is known
    // up front, so whoever cleans up deletes it by name either way.
    return await client.core.createNamespacedPod({ namespace, body }, client.call(timeouts.http));
  } catch (err) {
    throw mapKubeError(err, 'CONTAINER_START_FAILED', 'creating the pod', { pod: body.metadata?.name, namespace });
  }
}

export interface WaitDeps {
  readonly client: KubeClient;
  readonly timeouts: KubernetesTimeouts;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Waits until the pod's console container runs: a watch from the create's resourceVersion (a
 * re-GET and a new watch when the server ends the watch or says the version is too old), failing
 * fast on what will not fix itself (see pod-status.ts) and after `timeouts.podStart` with the last
 * thing the pod waited for.
 */
export async function waitForRunning(deps: WaitDeps, created: V1Pod, consoleContainer: string, signal?: AbortSignal): Promise<void> {
  const { client, timeouts, clock } = deps;
  const namespace = created.metadata?.namespace ?? 'default';
  const name = created.metadata?.name ?? '';
  const details = { pod: name, namespace };
  const deadline = clock.now() + timeouts.podStart;
  let last: PodVerdict = podVerdict(created, consoleContainer);
  let resourceVersion = created.metadata?.resourceVersion;
  for (;;) {
    if (last.state === 'running') return;
    if (last.state === 'failed') throw last.error;
    signal?.throwIfAborted();
    const remaining = deadline - clock.now();
    if (remaining <= 0) throw startTimeoutError(last, Math.round(timeouts.podStart / 1000), details);
    const outcome = await watchOnce(deps, namespace, name, resourceVersion, remaining, signal, (pod) => {
      resourceVersion = pod.metadata?.resourceVersion ?? resourceVersion;
      last = podVerdict(pod, consoleContainer);
      return last.state !== 'pending';
    });
    if (outcome === 'deleted') throw new AirlockError('CONTAINER_START_FAILED', `pod ${name} was deleted while starting`, { details });
    if (outcome === 'settled') continue;
    signal?.throwIfAborted();
    // The watch ended (server timeout, connection loss, expired version): look again.
    try {
      const pod = await client.core.readNamespacedPod({ namespace, name }, client.call(timeouts.http, signal));
      resourceVersion = pod.metadata?.resourceVersion;
      last = podVerdict(pod, consoleContainer);
    } catch (err) {
      if (isNotFound(err)) throw new AirlockError('CONTAINER_START_FAILED', `pod ${name} disappeared while starting`, { cause: err, details });
      if (!isTransient(err)) throw mapKubeError(err, 'CONTAINER_START_FAILED', 'reading the pod', details);
      deps.logger.debug({ err, pod: name }, 'reading the pod failed; retrying');
      await within(new Promise((r) => setTimeout(r, 500)), Math.max(0, deadline - clock.now()));
    }
  }
}

type WatchOutcome = 'settled' | 'deleted' | 'ended';

/** One watch; `onPod` returns true once the verdict is final. Resolves when it is, or the watch ends. */
async function watchOnce(
  deps: WaitDeps,
  namespace: string,
  name: string,
  resourceVersion: string | undefined,
  remainingMs: number,
  signal: AbortSignal | undefined,
  onPod: (pod: V1Pod) => boolean,
): Promise<WatchOutcome> {
  const { client } = deps;
  await client.limiter.take(signal);
  let controller: AbortController | undefined;
  let over = false;
  let resolveDone!: (outcome: WatchOutcome) => void;
  const done = new Promise<WatchOutcome>((resolve) => {
    resolveDone = resolve;
  });
  // Events already buffered keep arriving after the verdict; they must not replace it.
  const finish = (outcome: WatchOutcome) => {
    over = true;
    resolveDone(outcome);
  };
  const onAbort = () => finish('ended');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    controller = await client.watch.watch(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      {
        fieldSelector: `metadata.name=${name}`,
        ...(resourceVersion ? { resourceVersion } : {}),
        timeoutSeconds: Math.max(1, Math.ceil(remainingMs / 1000)),
      },
      (type: string, object: V1Pod) => {
        if (over) return;
        if (type === 'DELETED') finish('deleted');
        else if (type === 'ERROR') finish('ended');
        else if (onPod(object)) finish('settled');
      },
      (err: unknown) => {
        if (err) deps.logger.debug({ err: String(err), pod: name }, 'pod watch ended');
        finish('ended');
      },
    );
    const outcome = await within(done, remainingMs);
    return outcome === TIMED_OUT ? 'ended' : outcome;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    controller?.abort();
  }
}

/**
 * Deletes a pod by name (404 = already gone), retrying transient failures until
 * `timeouts.podStop`. Does not wait for the pod to disappear: the kubelet stops it within its
 * grace period and every exec stream ends with it.
 */
export async function deletePod(client: KubeClient, namespace: string, name: string, timeouts: KubernetesTimeouts, clock: Clock): Promise<void> {
  try {
    await retry(
      async () => {
        try {
          await client.core.deleteNamespacedPod({ namespace, name }, client.call(timeouts.http));
        } catch (err) {
          if (isNotFound(err)) return;
          throw err;
        }
      },
      { deadline: clock.now() + timeouts.podStop, clock, retryable: isTransient },
    );
  } catch (err) {
    throw mapKubeError(err, 'BACKEND_UNAVAILABLE', 'deleting the pod', { pod: name, namespace });
  }
}

/** Pods in `namespace` matching `labelSelector`. */
export async function listPods(client: KubeClient, namespace: string, labelSelector: string, timeouts: KubernetesTimeouts, signal?: AbortSignal): Promise<V1Pod[]> {
  try {
    const list = await client.core.listNamespacedPod({ namespace, labelSelector }, client.call(timeouts.http, signal));
    return list.items;
  } catch (err) {
    throw mapKubeError(err, 'BACKEND_UNAVAILABLE', 'listing pods', { namespace });
  }
}
