import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { callSignal, createContainer, removeContainer } from './engine-ops.js';
import type { DockerTimeouts } from './options.js';

export interface ProbeTarget {
  readonly labels: Record<string, string>;
  readonly name: string;
  readonly signal?: AbortSignal;
}

export interface ProbeDeps {
  readonly docker: Docker;
  readonly timeouts: DockerTimeouts;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Runs `fn` against a created-but-never-started container of `imageId` — enough for the archive
 * API to look at the image's file system without running anything in it (no shell needed) —
 * and removes the container afterwards, whatever happened.
 */
export async function withProbeContainer<T>(deps: ProbeDeps, imageId: string, probe: ProbeTarget, fn: (container: Docker.Container, signal: AbortSignal) => Promise<T>): Promise<T> {
  const { docker, timeouts, clock } = deps;
  let container: Docker.Container | undefined;
  try {
    container = await createContainer(
      docker,
      probe.name,
      {
        Image: imageId,
        Entrypoint: ['/airlock-probe-is-never-started'],
        Cmd: [],
        Labels: probe.labels,
        NetworkDisabled: true,
        HostConfig: { LogConfig: { Type: 'none', Config: {} } },
      },
      callSignal(timeouts.http, probe.signal),
    );
    return await fn(container, callSignal(timeouts.http, probe.signal));
  } finally {
    if (container) {
      const probeContainer = container;
      await removeContainer(probeContainer, timeouts, clock).catch((err: unknown) =>
        deps.logger.warn({ err, containerId: probeContainer.id }, 'could not remove a probe container; the reaper will'),
      );
    }
  }
}
