import type { TestGateway } from '../helpers/gateway.js';

/** `ps --format` for the two fields `workloadsOf` reads (Docker's `.Labels` is a string, Podman's a map). */
export const ID_AND_POOL_FORMAT = { docker: '{{.ID}} {{.Label "airlock.pool"}}', podman: '{{.ID}} {{index .Labels "airlock.pool"}}' } as const;

/**
 * The workloads in a `ps` listing (ID_AND_POOL_FORMAT lines): a warm-pool container counts
 * only once one of the running `gateways` logged its claim — an idle pool container belongs to
 * the gateway, not to any connection. One listing, so a pool container created or removed
 * meanwhile cannot be counted wrong.
 */
export function workloadsOf(listing: string, gateways: readonly TestGateway[]): string[] {
  const claimed = new Set(gateways.flatMap((gw) => gw.logs.filter((l) => l.msg === 'pool container claimed').map((l) => String(l.containerId))));
  return listing
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter(([id, pool]) => id !== undefined && id !== '' && (pool !== 'true' || claimed.has(id)))
    .map(([id]) => id as string);
}
