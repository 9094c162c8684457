import type { TestGateway } from '../helpers/gateway.js';

/**
 * The workloads among `all` container ids: a warm-pool container (in `pooled`, labelled
 * airlock.pool=true) counts only once one of the running `gateways` logged its claim — an idle
 * pool container belongs to the gateway, not to any connection.
 */
export function withoutIdlePool(all: readonly string[], pooled: readonly string[], gateways: readonly TestGateway[]): string[] {
  const claimed = new Set(gateways.flatMap((gw) => gw.logs.filter((l) => l.msg === 'pool container claimed').map((l) => String(l.containerId))));
  const idle = new Set(pooled.filter((id) => !claimed.has(id)));
  return all.filter((id) => !idle.has(id));
}
