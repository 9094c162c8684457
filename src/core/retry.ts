import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

/**
 * The one retry loop of the code base (auth webhooks, config server, Docker, S3 all use it):
 * exponential backoff with full jitter until a deadline, stoppable through an AbortSignal.
 */
export interface RetryOptions {
  /** Absolute deadline in clock milliseconds; no attempt starts after it. */
  readonly deadline: number;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly signal?: AbortSignal;
  readonly clock?: Clock;
  /** Decides whether an error is worth another attempt; default: every error is. */
  readonly retryable?: (err: unknown) => boolean;
  /** Called before sleeping, for logging. */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Source of randomness for jitter, injectable for tests. */
  readonly random?: () => number;
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const initial = options.initialDelayMs ?? 200;
  const max = options.maxDelayMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (options.retryable && !options.retryable(err)) throw err;
      const remaining = options.deadline - clock.now();
      const backoff = Math.min(max, initial * 2 ** (attempt - 1));
      const delay = Math.min(remaining, Math.round(backoff / 2 + (random() * backoff) / 2));
      if (remaining <= 0 || delay < 0) throw err;
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined);
      if (clock.now() >= options.deadline) throw err;
    }
  }
}
