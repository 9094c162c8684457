import type { BackendConnection } from './backend.js';

/**
 * Every member of BackendConnection, required or optional. Typed so that a member added to the
 * interface and not here is a compile error: a wrapper built with `delegateConnection` can then
 * never drop a capability silently (a wrapper that forgot `openFiles` once cost every image
 * without sftp-server its SFTP, and one that forgot `openTcp` turned forwarding into
 * FORWARDING_UNAVAILABLE).
 */
const MEMBERS: { readonly [K in keyof BackendConnection]-?: true } = {
  startProcess: true,
  close: true,
  openTcp: true,
  listenTcp: true,
  hasSubsystem: true,
  openFiles: true,
};

type Member = keyof BackendConnection;

/**
 * A BackendConnection that behaves like `conn` except for the members in `overrides`: every
 * member `conn` has is passed through, bound to `conn` (backends are classes with private
 * state); a member `conn` lacks stays absent, because absence is how an optional method says
 * "this backend cannot" (`'openTcp' in c`, `c.openFiles === undefined`). An override of a member
 * `conn` lacks is dropped for the same reason: a wrapper adds behaviour, never a capability.
 */
export function delegateConnection(conn: BackendConnection, overrides: Partial<BackendConnection> = {}): BackendConnection {
  const out: Partial<Record<Member, unknown>> = {};
  for (const key of Object.keys(MEMBERS) as Member[]) {
    const own: unknown = conn[key];
    if (own === undefined) continue;
    const override: unknown = overrides[key];
    if (override !== undefined) out[key] = override;
    else out[key] = typeof own === 'function' ? (own as (...args: unknown[]) => unknown).bind(conn) : own;
  }
  return out as BackendConnection;
}
