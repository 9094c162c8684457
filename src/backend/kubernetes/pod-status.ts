import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { AirlockError } from '../../core/errors.js';

/**
 * Reads a pod object (from a GET or a watch event) and says whether the console container is
 * ready for execs, still coming, or never will be. Pure, so every branch is unit-tested.
 *
 * Fail fast on what the kubelet will not fix by itself: image pull errors (ErrImagePull is
 * reported with the registry's reason first, then ImagePullBackOff), invalid image names,
 * container config errors (e.g. runAsNonRoot against a root image), a container that exited,
 * a pod that failed or is being deleted. "Unschedulable" is remembered but waited out — a
 * cluster autoscaler or a PVC binding may still fix it — and named in the timeout error.
 */
export type PodVerdict =
  | { readonly state: 'running' }
  | { readonly state: 'pending'; readonly detail: string | undefined; readonly unschedulable: string | undefined }
  | { readonly state: 'failed'; readonly error: AirlockError };

const IMAGE_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'ImageInspectError', 'RegistryUnavailable']);
const CONFIG_WAITING = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError', 'CrashLoopBackOff', 'PreCreateHookError', 'PostStartHookError']);
const NOT_FOUND = /not found|manifest unknown|NotFound|InvalidImageName|ErrImageNeverPull|invalid reference format/i;

export function podVerdict(pod: V1Pod, consoleContainer: string): PodVerdict {
  const name = pod.metadata?.name ?? '(unnamed)';
  const details = { pod: name, namespace: pod.metadata?.namespace };
  if (pod.metadata?.deletionTimestamp) {
    return failed('CONTAINER_START_FAILED', `pod ${name} is being deleted`, details);
  }
  const phase = pod.status?.phase;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  // Image and configuration problems of any container keep the pod from running.
  for (const status of statuses) {
    const waiting = status.state?.waiting;
    if (!waiting?.reason) continue;
    if (IMAGE_WAITING.has(waiting.reason)) return imageFailure(status, waiting.reason, waiting.message, details);
    if (CONFIG_WAITING.has(waiting.reason)) {
      return failed('CONTAINER_START_FAILED', `container ${status.name} of pod ${name}: ${waiting.reason}: ${waiting.message ?? ''}${hint(waiting.message)}`.trim(), {
        ...details,
        container: status.name,
        reason: waiting.reason,
      });
    }
  }
  const console = statuses.find((s) => s.name === consoleContainer);
  const terminated = console?.state?.terminated;
  if (terminated) {
    return failed(
      'CONTAINER_START_FAILED',
      `container ${consoleContainer} of pod ${name} exited (exit code ${terminated.exitCode}${terminated.reason ? `, ${terminated.reason}` : ''}${terminated.message ? `: ${terminated.message}` : ''})`,
      { ...details, container: consoleContainer, exitCode: terminated.exitCode },
    );
  }
  if (phase === 'Failed' || phase === 'Succeeded') {
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(': ');
    return failed('CONTAINER_START_FAILED', `pod ${name} ended (${phase}${why ? `, ${why}` : ''})`, { ...details, phase });
  }
  if (phase === 'Running' && console?.state?.running) return { state: 'running' };
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const unschedulable = scheduled?.status === 'False' && scheduled.reason === 'Unschedulable' ? (scheduled.message ?? 'no node fits the pod') : undefined;
  const waiting = console?.state?.waiting;
  const detail = unschedulable ? `Unschedulable: ${unschedulable}` : waiting?.reason ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : (phase ?? 'Pending');
  return { state: 'pending', detail, unschedulable };
}

/** The error for a pod that did not get to Running in time, naming the last thing it waited for. */
export function startTimeoutError(last: PodVerdict | undefined, seconds: number, details: Record<string, unknown>): AirlockError {
  if (last?.state === 'pending' && last.unschedulable !== undefined) {
    return new AirlockError('POD_UNSCHEDULABLE', `the pod could not be scheduled within ${seconds}s: ${last.unschedulable}`, { details });
  }
  const detail = last?.state === 'pending' ? last.detail : undefined;
  return new AirlockError('TIMEOUT', `the pod did not start within ${seconds}s${detail ? ` (last state: ${detail})` : ''}`, {
    userMessage: 'the container did not start in time; try again later',
    details,
  });
}

function imageFailure(status: V1ContainerStatus, reason: string, message: string | undefined, details: Record<string, unknown>): PodVerdict {
  const image = status.image || '(unknown image)';
  const notFound = NOT_FOUND.test(`${reason} ${message ?? ''}`);
  return failed(
    notFound ? 'IMAGE_NOT_FOUND' : 'IMAGE_PULL_FAILED',
    `container ${status.name}: ${reason}${message ? `: ${message}` : ''}`,
    { ...details, container: status.name, image, reason },
    notFound ? `the container image "${image}" does not exist` : `the container image "${image}" could not be pulled`,
  );
}

function hint(message: string | undefined): string {
  if (message && /runAsNonRoot|non-root|non-numeric user/.test(message)) {
    return ' — the pod template asks for runAsNonRoot (the default): set kubernetes.pod.spec.securityContext.runAsUser to a non-zero uid, or runAsNonRoot: false for images that need root';
  }
  return '';
}

function failed(code: 'CONTAINER_START_FAILED' | 'IMAGE_NOT_FOUND' | 'IMAGE_PULL_FAILED', message: string, details: Record<string, unknown>, userMessage?: string): PodVerdict {
  return { state: 'failed', error: new AirlockError(code, message, { details, ...(userMessage ? { userMessage } : {}) }) };
}
