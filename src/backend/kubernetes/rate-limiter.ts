import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';

/**
 * Client-side rate limit for API calls (ContainerSSH's `kubernetes.connection.qps`/`burst`, like
 * client-go's token bucket): up to `burst` calls at once, refilled at `qps` per second. Callers
 * queue in arrival order; an aborted wait gives its place up.
 */
export class RateLimiter {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(qps: number, burst: number, clock: Clock = systemClock) {
    this.#qps = qps;
    this.#burst = Math.max(1, burst);
    this.#clock = clock;
    this.#tokens = this.#burst;
    this.#last = clock.now();
  }

  /** Resolves when the caller may send one request. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(() => this.#acquire(signal));
    // The next caller waits for this one's turn, not for its success.
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  async #acquire(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      const waitMs = Math.ceil(((1 - this.#tokens) / this.#qps) * 1000);
      await sleep(waitMs, undefined, signal ? { signal } : undefined);
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
  }
}
