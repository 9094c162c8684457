import { z } from 'zod';
import { durationMs, isHttpUrl } from './value-parsers.js';

/**
 * The `kubernetes:` section (`backend: kubernetes`). Key names follow ContainerSSH 0.5:
 * `connection` (API server and credentials, client rate limit), `pod` (metadata + PodSpec template,
 * consoleContainerNumber, mode, idle/shell command, subsystems), `timeouts`; plus `reaper` as in
 * the docker section. `pod.spec` is Kubernetes' own PodSpec and is passed on as written; the
 * backend checks every key of it against the Kubernetes models at start-up (a misspelt key would
 * otherwise be dropped silently by the client library).
 */

const text = () => z.string().min(1);
const command = () => z.array(text()).min(1);

// ContainerSSH configs often say `host: kubernetes.default.svc` or `10.0.0.1:6443`: HTTPS implied.
const apiServerUrl = z.preprocess(
  (v) => (typeof v === 'string' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? `https://${v}` : v),
  z.string().refine(isHttpUrl, { message: 'must be the API server address, e.g. https://kubernetes.default.svc or 10.0.0.1:6443' }),
);

/** Where the in-cluster credentials live (a ServiceAccount's projected token and the cluster CA). */
export const IN_CLUSTER_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const IN_CLUSTER_CA_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

/** Reads a nested field of a value that may not have parsed cleanly (refinements run regardless). */
function field(value: unknown, ...keys: string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

const kubernetesConnectionSchema = z
  .strictObject({
    host: apiServerUrl.default('https://kubernetes.default.svc'),
    bearerToken: text().optional(),
    bearerTokenFile: text().optional(),
    /** PEM text or a file path. */
    cert: text().optional(),
    key: text().optional(),
    cacert: text().optional(),
    qps: z.number().positive().default(5),
    burst: z.int().min(1).default(10),
  })
  .superRefine(
    (value, ctx) => {
      const cert = field(value, 'cert');
      const key = field(value, 'key');
      if ((cert === undefined) !== (key === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [cert === undefined ? 'cert' : 'key'],
          message: 'client certificate authentication needs both kubernetes.connection.cert and kubernetes.connection.key — set both or neither',
        });
      }
      if (field(value, 'bearerToken') !== undefined && field(value, 'bearerTokenFile') !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['bearerTokenFile'], message: 'set either bearerToken or bearerTokenFile, not both' });
      }
    },
    { when: () => true },
  );

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const metadataMap = (kind: 'labels' | 'annotations') =>
  z.record(z.string(), z.string()).superRefine(
    (map, ctx) => {
      if (map === null || typeof map !== 'object') return;
      for (const [name, value] of Object.entries(map)) {
        const local = name.slice(name.lastIndexOf('/') + 1);
        if (name.startsWith('airlock.')) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'names starting with "airlock." are reserved for the gateway — choose another name' });
        } else if (local.length > 63 || !QUALIFIED_NAME.test(local)) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid Kubernetes name (letters, digits, "-", "_", "." — at most 63, optionally prefixed by a DNS name and "/")' });
        }
        if (kind === 'labels' && typeof value === 'string' && (value.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(value))) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'label values are at most 63 letters, digits, "-", "_" or "." and start and end alphanumeric' });
        }
      }
    },
    { when: () => true },
  );

const podMetadataSchema = z.strictObject({
  namespace: z.string().regex(DNS_LABEL, { message: 'must be a namespace name (lower-case letters, digits, "-")' }).default('default'),
  generateName: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*)?$/, { message: 'must be a pod name prefix (lower-case letters, digits, "-")' })
    .max(30)
    .default('airlock-'),
  labels: metadataMap('labels').default({}),
  annotations: metadataMap('annotations').default({}),
});

const DEFAULT_SPEC = { containers: [{ name: 'shell', image: 'airlock-demo:latest' }] };

const kubernetesPodSchema = z
  .strictObject({
    metadata: podMetadataSchema.prefault({}),
    /** A PodSpec (Kubernetes field names), passed on; see the module comment. */
    spec: z.record(z.string(), z.unknown()).default(DEFAULT_SPEC),
    consoleContainerNumber: z.int().min(0).default(0),
    mode: z.enum(['connection', 'session']).default('connection'),
    idleCommand: command().default(['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]),
    shellCommand: command().optional(),
    subsystems: z.record(text(), text()).default({ sftp: '/usr/lib/openssh/sftp-server' }),
  })
  .superRefine(
    (value, ctx) => {
      const containers = field(value, 'spec', 'containers');
      if (field(value, 'spec') === undefined) return;
      if (!Array.isArray(containers) || containers.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['spec', 'containers'], message: 'must list at least one container, e.g. [{name: shell, image: busybox:1.36}]' });
        return;
      }
      containers.forEach((c: unknown, i) => {
        if (typeof field(c, 'name') !== 'string' || field(c, 'name') === '') ctx.addIssue({ code: 'custom', path: ['spec', 'containers', i, 'name'], message: 'required — set it' });
        if (typeof field(c, 'image') !== 'string' || field(c, 'image') === '') ctx.addIssue({ code: 'custom', path: ['spec', 'containers', i, 'image'], message: 'required — set it' });
      });
      const n = field(value, 'consoleContainerNumber');
      if (typeof n === 'number' && n >= containers.length) {
        ctx.addIssue({ code: 'custom', path: ['consoleContainerNumber'], message: `must be an index into spec.containers (0..${containers.length - 1})` });
      }
      const restart = field(value, 'spec', 'restartPolicy');
      if (restart !== undefined && restart !== 'Never') {
        ctx.addIssue({ code: 'custom', path: ['spec', 'restartPolicy'], message: "the gateway's pods always use Never (a restarted container loses the session) — remove it" });
      }
    },
    { when: () => true },
  );

const kubernetesTimeoutsSchema = z.strictObject({
  podStart: durationMs().default(60_000),
  podStop: durationMs().default(60_000),
  commandStart: durationMs().default(60_000),
  signal: durationMs().default(10_000),
  window: durationMs().default(10_000),
  http: durationMs().default(15_000),
});

const kubernetesReaperSchema = z.strictObject({
  interval: durationMs({ zeroDisables: true, minMs: 1000 }).default(60_000),
  foreignMaxAge: durationMs({ minMs: 1000 }).default(86_400_000),
});

export const kubernetesSchema = z.strictObject({
  connection: kubernetesConnectionSchema.prefault({}),
  pod: kubernetesPodSchema.prefault({}),
  timeouts: kubernetesTimeoutsSchema.prefault({}),
  reaper: kubernetesReaperSchema.prefault({}),
});

export type KubernetesConfig = z.output<typeof kubernetesSchema>;
