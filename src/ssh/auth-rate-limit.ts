/**
 * Limits failed logins across connections (ssh2 has no such thing): after `maxFailures` failed
 * attempts within `windowMs` from one source address, or for one login name, further attempts
 * from that address / for that name are refused at once — without asking any provider — until
 * `blockForMs` has passed. Pure bookkeeping on the injected Clock: no timers, nothing to close.
 *
 * Source addresses are keyed by IPv4 address, or by the IPv6 /64 prefix (one host usually owns
 * a whole /64, so per-address counting would be trivial to dodge). Each scope tracks at most
 * MAX_TRACKED keys; past that the least recently failed key is forgotten, so a spray of fresh
 * names or addresses costs bounded memory.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Clock } from '../core/clock.js';

export type RateLimitScope = 'ip' | 'user';

export interface FailureLimit {
  /** Failures within `windowMs` that start a block; 0 = the scope is not limited. */
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly blockForMs: number;
}

export interface AuthRateLimitOptions {
  readonly perIp: FailureLimit;
  readonly perUser: FailureLimit;
}

export interface AuthBlock {
  readonly scope: RateLimitScope;
  /** The blocked key: the source address (or /64) or the login name. */
  readonly key: string;
  /** Clock milliseconds at which the block ends. */
  readonly until: number;
}

export interface AuthRateLimiter {
  /** The block that refuses an attempt from `ip` for `username` now, if any. */
  blockFor(ip: string, username: string): AuthBlock | undefined;
  /** Records one failed attempt; returns the blocks it started (to be logged and counted once). */
  failed(ip: string, username: string): AuthBlock[];
}

export const MAX_TRACKED = 100_000;
/** Every this many failures, keys whose failures and blocks are all in the past are dropped. */
const SWEEP_EVERY = 1_000;

interface Entry {
  /** Times of the failures within the window, oldest first (at most maxFailures). */
  failures: number[];
  blockedUntil: number;
}

class FailureTracker {
  readonly #entries = new Map<string, Entry>();
  #sinceSweep = 0;
  constructor(
    readonly scope: RateLimitScope,
    readonly limit: FailureLimit,
    readonly maxTracked: number,
  ) {}

  blocked(key: string, now: number): AuthBlock | undefined {
    const entry = this.#entries.get(key);
    return entry && entry.blockedUntil > now ? { scope: this.scope, key, until: entry.blockedUntil } : undefined;
  }

  fail(key: string, now: number): AuthBlock | undefined {
    if (this.limit.maxFailures <= 0) return undefined;
    if (++this.#sinceSweep >= SWEEP_EVERY) this.#sweep(now);
    const entry = this.#entries.get(key) ?? { failures: [], blockedUntil: 0 };
    // Re-insert: Map order is then "least recently failed first", which eviction relies on.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.maxTracked) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    if (entry.blockedUntil > now) return undefined; // already blocked: a block is not extended
    const since = now - this.limit.windowMs;
    entry.failures = entry.failures.filter((t) => t > since);
    entry.failures.push(now);
    if (entry.failures.length < this.limit.maxFailures) return undefined;
    entry.failures = [];
    entry.blockedUntil = now + this.limit.blockForMs;
    return { scope: this.scope, key, until: entry.blockedUntil };
  }

  get size(): number {
    return this.#entries.size;
  }

  #sweep(now: number): void {
    this.#sinceSweep = 0;
    const since = now - this.limit.windowMs;
    for (const [key, entry] of this.#entries) {
      if (entry.blockedUntil <= now && entry.failures.every((t) => t <= since)) this.#entries.delete(key);
    }
  }
}

export function createAuthRateLimiter(
  options: AuthRateLimitOptions,
  clock: Clock,
  maxTracked = MAX_TRACKED,
): AuthRateLimiter & { tracked(scope: RateLimitScope): number } {
  const perIp = new FailureTracker('ip', options.perIp, maxTracked);
  const perUser = new FailureTracker('user', options.perUser, maxTracked);
  return {
    blockFor(ip, username) {
      const now = clock.now();
      return perIp.blocked(sourceKey(ip), now) ?? perUser.blocked(username, now);
    },
    failed(ip, username) {
      const now = clock.now();
      return [perIp.fail(sourceKey(ip), now), perUser.fail(username, now)].filter((b): b is AuthBlock => b !== undefined);
    },
    tracked: (scope) => (scope === 'ip' ? perIp : perUser).size,
  };
}

/** The per-address key: an IPv4 address (also when IPv4-mapped) or an IPv6 /64 prefix. */
export function sourceKey(ip: string): string {
  const bare = ip.split('%')[0] ?? ip; // a zone id (fe80::1%eth0) names the interface, not the host
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped?.[1] && isIPv4(mapped[1])) return mapped[1];
  if (!isIPv6(bare)) return bare;
  const [head = '', tail] = bare.split('::');
  const groupsOf = (part: string | undefined) => (part ? part.split(':') : []);
  // An embedded dotted IPv4 part fills two groups.
  const width = (parts: string[]) => parts.reduce((n, p) => n + (p.includes('.') ? 2 : 1), 0);
  const h = groupsOf(head);
  const t = groupsOf(tail);
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - width(h) - width(t))).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
