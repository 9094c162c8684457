import type { AcquireResult } from '../../auth/index.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import type { SessionRecord, SessionState, SessionStore } from './session-store.js';

interface Entry {
  readonly record: SessionRecord;
  readonly retainUntil: number;
  revokedAt?: number;
  /** connectionId → lease expiry (epoch ms). */
  readonly leases: Map<string, number>;
}

/**
 * One process's sessions in a Map: the default for `airlock serve` with an embedded broker.
 * Expiry is lazy (checked on access, swept on create), so the store owns no timers.
 */
export function createMemorySessionStore(deps: { clock?: Clock } = {}): SessionStore {
  const clock = deps.clock ?? systemClock;
  const entries = new Map<string, Entry>();
  const listeners = new Set<(id: string) => void>();

  const live = (id: string): Entry | undefined => {
    const e = entries.get(id);
    if (e && e.retainUntil <= clock.now()) {
      entries.delete(id);
      return undefined;
    }
    return e;
  };
  const pruneLeases = (e: Entry) => {
    const now = clock.now();
    for (const [conn, until] of e.leases) if (until <= now) e.leases.delete(conn);
  };

  return {
    kind: 'memory',
    async create(record, retainUntil) {
      const now = clock.now();
      for (const [id, e] of entries) if (e.retainUntil <= now) entries.delete(id);
      entries.set(record.id, { record, retainUntil, leases: new Map() });
    },
    async get(id) {
      const e = live(id);
      if (!e) return undefined;
      pruneLeases(e);
      const state: SessionState = {
        record: e.record,
        revoked: e.revokedAt !== undefined,
        activeConnections: e.leases.size,
        ...(e.revokedAt !== undefined ? { revokedAt: e.revokedAt } : {}),
      };
      return state;
    },
    async revoke(id) {
      const e = live(id);
      if (!e) return false;
      e.revokedAt ??= clock.now();
      for (const l of listeners) l(id);
      return true;
    },
    onRevoked(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async acquire(id, connectionId, leaseMs): Promise<AcquireResult> {
      const e = live(id);
      if (!e) return { outcome: 'unknown' };
      if (e.revokedAt !== undefined) return { outcome: 'revoked' };
      pruneLeases(e);
      if (e.leases.size >= e.record.maxConnections) return { outcome: 'full' };
      e.leases.set(connectionId, clock.now() + leaseMs);
      return { outcome: 'ok', session: e.record };
    },
    async renew(id, connectionId, leaseMs) {
      const e = live(id);
      if (!e) return 'unknown';
      if (e.revokedAt !== undefined) return 'revoked';
      e.leases.set(connectionId, clock.now() + leaseMs);
      return 'ok';
    },
    async release(id, connectionId) {
      entries.get(id)?.leases.delete(connectionId);
    },
    async ping() {},
    async close() {
      listeners.clear();
    },
  };
}
