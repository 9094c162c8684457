import { setTimeout as sleep } from 'node:timers/promises';
import type { ParsedCast } from './format/asciicast.js';

export interface ReplayOptions {
  /** 1 = real pace, 2 = twice as fast; 0 or Infinity = no waiting. */
  readonly speed: number;
  /** Longest pause between two outputs, in ms (idle time is cut to this). */
  readonly maxWaitMs?: number;
  readonly signal?: AbortSignal;
}

/** Plays the output events of a cast to a terminal at the recorded (or scaled) pace. */
export async function replayCast(cast: ParsedCast, write: (text: string) => void, options: ReplayOptions): Promise<void> {
  let previous = 0;
  const pace = options.speed > 0 && Number.isFinite(options.speed);
  for (const [time, code, data] of cast.events) {
    if (code !== 'o') continue;
    if (pace) {
      let waitMs = ((time - previous) * 1000) / options.speed;
      if (options.maxWaitMs !== undefined) waitMs = Math.min(waitMs, options.maxWaitMs);
      if (waitMs >= 1) await sleep(waitMs, undefined, options.signal ? { signal: options.signal } : undefined);
    }
    previous = time;
    write(data);
  }
}
