import type Docker from 'dockerode';
import type { ProcessDriver } from './docker-process.js';
import { wasOomKilled } from './engine-ops.js';
import type { DockerTimeouts } from './options.js';
import type { SignalName } from './signals.js';
import { TIMED_OUT, within } from './timing.js';

/**
 * A program that is its container's main process (session mode), under docker-init (Init:
 * true), which forwards the Engine's kill signals to it. The exit code comes from `wait`, which
 * was started right after `start` so it cannot miss a fast exit.
 */
export class ContainerDriver implements ProcessDriver {
  readonly needsPid = false;
  readonly #container: Docker.Container;
  readonly #wait: Promise<{ StatusCode?: unknown }>;
  readonly #timeouts: DockerTimeouts;

  constructor(container: Docker.Container, wait: Promise<{ StatusCode?: unknown }>, timeouts: DockerTimeouts) {
    this.#container = container;
    this.#wait = wait;
    this.#timeouts = timeouts;
  }

  async deliver(name: SignalName): Promise<void> {
    await this.#container.kill({ signal: `SIG${name}`, abortSignal: AbortSignal.timeout(this.#timeouts.signal) });
  }

  async resize(cols: number, rows: number, signal: AbortSignal): Promise<void> {
    await this.#container.resize({ h: rows, w: cols, abortSignal: signal });
  }

  async terminate(): Promise<void> {
    await this.#container.kill({ signal: 'SIGKILL', abortSignal: AbortSignal.timeout(this.#timeouts.signal) });
  }

  async exitCode(): Promise<{ code: number; oomKilled: boolean }> {
    let code: number;
    try {
      // The output has ended, so the container is stopping; do not wait on `wait` forever.
      const result = await within(this.#wait, this.#timeouts.containerStop);
      if (result === TIMED_OUT) throw new Error('wait did not answer');
      if (typeof result.StatusCode !== 'number') throw new Error('wait answered without a StatusCode');
      code = result.StatusCode;
    } catch {
      // The wait connection failed (engine restart?): ask for the state instead.
      const info = await this.#container.inspect({ abortSignal: AbortSignal.timeout(this.#timeouts.http) });
      if (info.State.Running) throw new Error('the container is still running');
      code = info.State.ExitCode;
    }
    const oomKilled = code === 137 ? await wasOomKilled(this.#container, this.#timeouts) : false;
    return { code, oomKilled };
  }
}
