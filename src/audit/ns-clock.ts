import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';

/** Nanosecond wall-clock timestamps (recordings use ns like ContainerSSH's log). */
export interface NsClock {
  /** Nanoseconds since the epoch. */
  nowNs(): bigint;
}

/**
 * Wall-clock time anchored once, then advanced by the monotonic high-resolution timer: each
 * timestamp costs one hrtime call, and timestamps within a recording never go backwards.
 */
export function createNsClock(clock: Clock = systemClock): NsClock {
  const base = BigInt(clock.now()) * 1_000_000n - process.hrtime.bigint();
  return { nowNs: () => base + process.hrtime.bigint() };
}

export function nsToDate(ns: bigint): Date {
  return new Date(Number(ns / 1_000_000n));
}

/** ISO time with the nanoseconds the Date cannot hold ("2026-01-02T03:04:05.123456789Z"). */
export function nsToIso(ns: bigint): string {
  const iso = nsToDate(ns).toISOString();
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${fraction}Z`;
}
