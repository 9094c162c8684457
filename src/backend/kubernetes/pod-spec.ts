import { randomBytes } from 'node:crypto';
import type { V1Container, V1EnvVar, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { ConnectionInfo, MetadataMap } from '../backend.js';
import { LABEL } from '../docker/labels.js';
import type { KubernetesPodOptions } from './options.js';
import { isLabelValue } from './pod-template.js';

/**
 * Builds the Pod object for a connection (connection mode) or a session channel (session mode)
 * from the configured template. Pure: the same input gives the same pod (validated against the
 * upstream schema in test/unit/kubernetes-pod-spec.test.ts).
 *
 * The console container runs `idleCommand` (replacing the image's entrypoint and command; programs
 * are execs), with the connection's environment added to its `env` and the connection's image
 * when auth chose one. Defaults, applied only where the template says nothing:
 * `automountServiceAccountToken: false`, `enableServiceLinks: false`, pod securityContext
 * `runAsNonRoot: true` + seccomp `RuntimeDefault`, every container's (init containers included)
 * securityContext `allowPrivilegeEscalation: false` + `capabilities.drop: [ALL]`, console resources (requests
 * 100m/128Mi, limits 1 CPU/1Gi), `terminationGracePeriodSeconds: 5`. Always set (the backend's
 * mechanics): `restartPolicy: Never`, the `airlock.*` labels and annotations, and
 * `activeDeadlineSeconds` from the connection's deadline (plus a minute, so the gateway's own
 * orderly close comes first; the smaller of that and the template's).
 *
 * Labels (selectable, values label-safe): airlock.managed, airlock.gateway, airlock.connection,
 * airlock.role, airlock.channel; annotations (free text): airlock.user, airlock.gateway-host,
 * airlock.gateway-pid, airlock.created-at, airlock.deadline. Non-sensitive auth metadata becomes
 * annotations `airlock.meta.<key>` and, when the value is a valid label value, labels too.
 */
export interface PodBuildInput {
  readonly name: string;
  readonly pod: KubernetesPodOptions;
  readonly idleCommand: readonly string[];
  readonly info: ConnectionInfo;
  readonly gatewayId: string;
  readonly hostname: string;
  readonly pid: number;
  readonly role: 'connection' | 'session';
  readonly channelId?: number;
  readonly now: Date;
}

export const DEADLINE_SLACK_SECONDS = 60;
const DEFAULT_RESOURCES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } };

export function buildPod(input: PodBuildInput): V1Pod {
  const template = input.pod;
  const spec = structuredClone(template.spec) as V1PodSpec & Record<string, unknown>;
  const containers = spec.containers.map((c, i) => withContainerDefaults(c, i === template.consoleContainerNumber));
  const console = containers[template.consoleContainerNumber]!;
  console.command = [...input.idleCommand];
  delete console.args;
  if (input.info.image) console.image = input.info.image;
  console.env = mergeEnv(console.env, input.info.environment);
  spec.containers = containers;
  // Init containers (native sidecars included) get the same per-container defaults: the
  // `restricted` Pod Security level checks them like any other container.
  if (spec.initContainers) spec.initContainers = spec.initContainers.map((c) => withContainerDefaults(c, false));
  spec.restartPolicy = 'Never';
  spec.automountServiceAccountToken ??= false;
  spec.enableServiceLinks ??= false;
  spec.terminationGracePeriodSeconds ??= 5;
  spec.securityContext = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, ...spec.securityContext };
  if (input.info.deadline) {
    const remaining = Math.max(1, Math.ceil((input.info.deadline.getTime() - input.now.getTime()) / 1000) + DEADLINE_SLACK_SECONDS);
    spec.activeDeadlineSeconds = Math.min(remaining, spec.activeDeadlineSeconds ?? Number.MAX_SAFE_INTEGER);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: template.namespace,
      labels: { ...template.labels, ...metadataLabels(input.info.metadata), ...airlockLabels(input) },
      annotations: { ...template.annotations, ...metadataAnnotations(input.info.metadata), ...airlockAnnotations(input) },
    },
    spec,
  };
}

function withContainerDefaults(c: V1Container, isConsole: boolean): V1Container {
  const container: V1Container = { ...c };
  container.securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, ...container.securityContext };
  if (isConsole && container.resources === undefined) container.resources = structuredClone(DEFAULT_RESOURCES);
  return container;
}

/** The template's env with the connection's environment on top (same name: the connection wins). */
function mergeEnv(env: readonly V1EnvVar[] | undefined, connection: MetadataMap): V1EnvVar[] {
  const out = (env ?? []).filter((e) => !Object.hasOwn(connection, e.name));
  for (const [name, entry] of Object.entries(connection)) {
    if (name === '' || name.includes('=')) continue;
    out.push({ name, value: entry.value });
  }
  return out;
}

function airlockLabels(input: PodBuildInput): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL.managed]: 'true',
    [LABEL.gateway]: input.gatewayId,
    [LABEL.connection]: input.info.connectionId,
    [LABEL.role]: input.role,
  };
  if (input.channelId !== undefined) labels[LABEL.channel] = String(input.channelId);
  // Ids are hex today; never emit a label value the API server would refuse.
  for (const [key, value] of Object.entries(labels)) if (!isLabelValue(value)) labels[key] = value.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63);
  return labels;
}

function airlockAnnotations(input: PodBuildInput): Record<string, string> {
  return {
    [LABEL.user]: input.info.username,
    [LABEL.gatewayHost]: input.hostname,
    [LABEL.gatewayPid]: String(input.pid),
    [LABEL.createdAt]: input.now.toISOString(),
    ...(input.info.deadline ? { [LABEL.deadline]: input.info.deadline.toISOString() } : {}),
  };
}

/** `airlock.meta.<key>`: lower-case, [a-z0-9._-], at most 63 characters in all, alphanumeric at the end. */
function metaKey(key: string): string | undefined {
  const name = `airlock.meta.${key.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}`.slice(0, 63).replace(/[^a-z0-9]+$/, '');
  return name.length > 'airlock.meta.'.length ? name : undefined;
}

/** Non-sensitive metadata as annotations (anyone who can read pods can read them). */
function metadataAnnotations(metadata: MetadataMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(metadata)) {
    const name = metaKey(key);
    if (!entry.sensitive && name) out[name] = entry.value.slice(0, 4096);
  }
  return out;
}

/** ... and as labels when the value fits a label (so `kubectl get pods -l airlock.meta.pr=42` works). */
function metadataLabels(metadata: MetadataMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(metadata)) {
    const name = metaKey(key);
    if (!entry.sensitive && name && isLabelValue(entry.value)) out[name] = entry.value;
  }
  return out;
}

/** `<generateName><first 12 of the connection id>-<random>`: known before create, so close() can delete it even when create's answer was lost. */
export function podName(generateName: string, connectionId: string): string {
  const id = connectionId.toLowerCase().replace(/[^a-z0-9-]/g, '').slice(0, 12) || 'conn';
  return `${generateName}${id}-${randomBytes(3).toString('hex')}`;
}
