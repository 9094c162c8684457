import { hostname } from 'node:os';
import type { Backend, BackendConnection, ConnectionInfo } from '../backend.js';
import { systemClock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { KubernetesConnection, type KubeBackendContext } from './connection.js';
import { createKubeClient } from './kube-client.js';
import { mapKubeError } from './kube-errors.js';
import type { KubernetesBackendOptions } from './options.js';
import { checkPodTemplate } from './pod-template.js';

/** The Kubernetes backend. See README.md for the decisions behind it. */
export function createKubernetesBackend(options: KubernetesBackendOptions): Backend {
  const problems = checkPodTemplate(options.pod);
  if (problems.length > 0) {
    throw new AirlockError('CONFIG_INVALID', `the Kubernetes pod template is invalid:\n${problems.join('\n')}`, { details: { problems } });
  }
  const clock = options.clock ?? systemClock;
  const client = createKubeClient(options.connection, clock);
  const containers = options.pod.spec['containers'] as ReadonlyArray<{ readonly name: string }>;
  const ctx: KubeBackendContext = {
    client,
    options,
    clock,
    hostname: hostname(),
    pid: process.pid,
    logger: options.logger,
    consoleContainer: containers[options.pod.consoleContainerNumber]!.name,
  };
  let closed = false;

  return {
    name: 'kubernetes',

    async openConnection(info: ConnectionInfo, signal?: AbortSignal): Promise<BackendConnection> {
      if (closed) throw new AirlockError('BACKEND_UNAVAILABLE', 'the Kubernetes backend is closed');
      signal?.throwIfAborted();
      return KubernetesConnection.open(ctx, info, signal);
    },

    async ping(signal?: AbortSignal): Promise<void> {
      // Listing one pod in the namespace proves reachability, credentials and RBAC at once.
      try {
        await client.core.listNamespacedPod({ namespace: options.pod.namespace, limit: 1 }, client.call(options.timeouts.http, signal));
      } catch (err) {
        const mapped = mapKubeError(err, 'BACKEND_UNAVAILABLE', 'pinging the API server', { namespace: options.pod.namespace });
        throw mapped.code === 'BACKEND_UNAVAILABLE' || mapped.code === 'BACKEND_FORBIDDEN'
          ? mapped
          : new AirlockError('BACKEND_UNAVAILABLE', mapped.message, { cause: err, details: mapped.details });
      }
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
