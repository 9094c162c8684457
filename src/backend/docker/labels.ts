import { randomBytes } from 'node:crypto';

/**
 * The labels the gateway stamps on every container. The reaper trusts them to decide what to
 * delete, so configured labels can never override them.
 */
export const LABEL = {
  managed: 'airlock.managed',
  gateway: 'airlock.gateway',
  gatewayHost: 'airlock.gateway-host',
  gatewayPid: 'airlock.gateway-pid',
  connection: 'airlock.connection',
  user: 'airlock.user',
  createdAt: 'airlock.created-at',
  deadline: 'airlock.deadline',
  channel: 'airlock.channel',
  role: 'airlock.role',
  /** `true` on warm-pool containers (see pool.ts); their `airlock.connection` is a pool key. */
  pool: 'airlock.pool',
} as const;

/**
 * What a container is for; `probe` containers are created (never started) to read /etc/passwd;
 * `pool` containers were started ahead of time by the warm pool (claimed or not); `relay` is a
 * connection's network-helper sidecar for port forwarding (relay.ts).
 */
export type ContainerRole = 'connection' | 'session' | 'probe' | 'pool' | 'relay';

export interface LabelInput {
  readonly gatewayId: string;
  readonly hostname: string;
  readonly pid: number;
  readonly connectionId: string;
  readonly username: string;
  readonly now: Date;
  readonly deadline?: Date;
  readonly role: ContainerRole;
  readonly channelId?: number;
  readonly extra?: Readonly<Record<string, string>>;
}

export function buildLabels(input: LabelInput): Record<string, string> {
  const labels: Record<string, string> = { ...input.extra };
  labels[LABEL.managed] = 'true';
  labels[LABEL.gateway] = input.gatewayId;
  labels[LABEL.gatewayHost] = input.hostname;
  labels[LABEL.gatewayPid] = String(input.pid);
  labels[LABEL.connection] = input.connectionId;
  labels[LABEL.user] = input.username;
  labels[LABEL.createdAt] = input.now.toISOString();
  labels[LABEL.role] = input.role;
  if (input.deadline) labels[LABEL.deadline] = input.deadline.toISOString();
  if (input.channelId !== undefined) labels[LABEL.channel] = String(input.channelId);
  return labels;
}

/**
 * Non-sensitive auth metadata as `airlock.meta.<key>` labels (a CI-debug session's session id,
 * commit, PR, actor), so `docker ps --filter label=airlock.meta.pr_number=42` finds its container.
 * Sensitive entries never become labels: anyone with engine access can read labels.
 */
export function metadataLabels(metadata: Readonly<Record<string, { readonly value: string; readonly sensitive: boolean }>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(metadata)) {
    if (entry.sensitive) continue;
    const name = key.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 64);
    if (name !== '') out[`airlock.meta.${name}`] = entry.value.slice(0, 256);
  }
  return out;
}

/** `airlock-<first 12 of the connection id>-<random>`; Docker names allow [a-zA-Z0-9_.-]. */
export function containerName(connectionId: string): string {
  const prefix = connectionId.slice(0, 12).replace(/[^a-zA-Z0-9_.-]/g, '-') || 'conn';
  return `airlock-${prefix}-${randomBytes(4).toString('hex')}`;
}
