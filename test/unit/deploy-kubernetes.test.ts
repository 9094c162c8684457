/**
 * deploy/kubernetes/: every manifest parses, validates against the upstream Kubernetes schema
 * (kubernetes-models), and the pieces fit together (names, selectors, ports, namespaces, the
 * minimal Role, the gateway config). test/integration/kubernetes-rbac.test.ts proves the Role is
 * exactly what the backend uses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { parseConfig } from '../../src/config/index.js';

const DIR = resolve(import.meta.dirname, '../../deploy/kubernetes');

type Doc = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Namespace: Namespace as never,
  ServiceAccount: ServiceAccount as never,
  ConfigMap: ConfigMap as never,
  Service: Service as never,
  Deployment: Deployment as never,
  Role: Role as never,
  RoleBinding: RoleBinding as never,
  NetworkPolicy: NetworkPolicy as never,
  PodDisruptionBudget: PodDisruptionBudget as never,
};

/**
 * YAML 1.1, as kubectl reads manifests (sigs.k8s.io/yaml over go-yaml): `0440` is octal there,
 * while YAML 1.2 (this library's default) would read it as the decimal 440.
 */
async function loadAll(): Promise<Doc[]> {
  const files = (await readdir(DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  const docs: Doc[] = [];
  for (const file of files.sort()) {
    for (const doc of parseAllDocuments(await readFile(join(DIR, file), 'utf8'), { version: '1.1' })) {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      docs.push(doc.toJSON() as Doc);
    }
  }
  return docs;
}

type SecurityContext = { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
type KeyToPath = { key: string; path: string; mode?: number };
type FileSource = { secretName?: string; name?: string; defaultMode?: number; items?: KeyToPath[] };
type PodVolume = {
  name: string;
  secret?: FileSource;
  configMap?: FileSource;
  projected?: { defaultMode?: number; sources: Array<{ secret?: FileSource; configMap?: FileSource }> };
};
type PodSpec = {
  securityContext?: SecurityContext;
  containers: Array<{ name: string; securityContext?: SecurityContext; volumeMounts?: Array<{ name: string }> }>;
  volumes?: PodVolume[];
};

/** The Kubernetes default for Secret, ConfigMap and projected volume files. */
const DEFAULT_FILE_MODE = 0o644;

/**
 * Why each file of each Secret/ConfigMap volume a container mounts cannot be read by the user the
 * container runs as ([] when all are readable). The kubelet writes these files owned by root, with
 * group fsGroup when the pod sets one (a supplementary group of every container), so the owner
 * bits never apply to a non-root user: the group bits do when fsGroup is set, the other bits always.
 * Running as root to get around it is not allowed.
 */
function unreadableMounts(pod: PodSpec): string[] {
  const problems: string[] = [];
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  for (const container of pod.containers) {
    const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
    const fsGroup = pod.securityContext?.fsGroup;
    if (uid === undefined || uid === 0) {
      problems.push(`${container.name}: runAsUser must be set and not 0 (got ${uid})`);
      continue;
    }
    const readable = (mode: number) => (mode & 0o004) !== 0 || (fsGroup !== undefined && (mode & 0o040) !== 0);
    for (const mount of container.volumeMounts ?? []) {
      const volume = volumes.get(mount.name);
      if (!volume) {
        problems.push(`${container.name}: mount ${mount.name} has no volume`);
        continue;
      }
      const sources: Array<{ what: string; source: FileSource; fallback: number }> = [];
      if (volume.secret) sources.push({ what: 'secret', source: volume.secret, fallback: DEFAULT_FILE_MODE });
      if (volume.configMap) sources.push({ what: 'configMap', source: volume.configMap, fallback: DEFAULT_FILE_MODE });
      for (const s of volume.projected?.sources ?? []) {
        const fallback = volume.projected?.defaultMode ?? DEFAULT_FILE_MODE;
        if (s.secret) sources.push({ what: 'projected secret', source: { defaultMode: fallback, ...s.secret }, fallback });
        if (s.configMap) sources.push({ what: 'projected configMap', source: { defaultMode: fallback, ...s.configMap }, fallback });
      }
      for (const { what, source, fallback } of sources) {
        const defaultMode = source.defaultMode ?? fallback;
        const modes = source.items?.length ? source.items.map((i) => ({ file: i.path, mode: i.mode ?? defaultMode })) : [{ file: '*', mode: defaultMode }];
        for (const { file, mode } of modes) {
          if (!readable(mode)) problems.push(`${container.name}: ${what} volume ${volume.name} file ${file} mode 0${mode.toString(8)} is unreadable by uid ${uid} (fsGroup ${fsGroup ?? 'unset'})`);
        }
      }
    }
  }
  return problems;
}

function one(docs: Doc[], kind: string, name?: string): Doc {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''}`);
  return found[0]!;
}

describe('deploy/kubernetes manifests', () => {
  it('every document validates against the upstream schema; no cluster-wide RBAC', async () => {
    const docs = await loadAll();
    for (const doc of docs) {
      const Model = MODELS[doc.kind];
      assert.ok(Model, `unexpected kind ${doc.kind} (${doc.metadata.name})`);
      assert.doesNotThrow(() => new Model(doc as never).validate(), `${doc.kind} ${doc.metadata.name}`);
    }
    assert.ok(!docs.some((d) => d.kind === 'ClusterRole' || d.kind === 'ClusterRoleBinding'));
    const kustomization = parse(await readFile(join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    assert.deepEqual([...kustomization.resources].sort(), files, 'kustomization lists every manifest');
  });

  it('namespaces, ServiceAccount, minimal Role and its binding fit together', async () => {
    const docs = await loadAll();
    const namespaces = docs.filter((d) => d.kind === 'Namespace').map((d) => d.metadata.name).sort();
    assert.deepEqual(namespaces, ['airlock', 'airlock-debug']);
    const sa = one(docs, 'ServiceAccount');
    assert.equal(sa.metadata.namespace, 'airlock');
    const role = one(docs, 'Role') as Doc & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    assert.equal(role.metadata.namespace, 'airlock-debug', 'the Role grants the debug namespace only');
    const grants = role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups.join(',')}/${res}:${v}`))).sort();
    assert.deepEqual(grants, ['/pods/exec:create', '/pods/exec:get', '/pods:create', '/pods:delete', '/pods:get', '/pods:list', '/pods:watch']);
    const binding = one(docs, 'RoleBinding') as Doc & { roleRef: { kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }> };
    assert.equal(binding.metadata.namespace, 'airlock-debug');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  });

  it('Deployment: 2 replicas, the ServiceAccount, hardened, probes on the operator port, config mounted', async () => {
    const docs = await loadAll();
    type Container = {
      args: string[];
      ports: Array<{ name: string; containerPort: number }>;
      readinessProbe: { httpGet: { path: string; port: string } };
      livenessProbe: { httpGet: { path: string; port: string } };
      securityContext: Record<string, unknown>;
      volumeMounts: Array<{ name: string; mountPath: string }>;
    };
    const deployment = one(docs, 'Deployment') as Doc & {
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: {
          metadata: { labels: Record<string, string> };
          spec: { serviceAccountName: string; securityContext: Record<string, unknown>; containers: Container[]; volumes: Array<{ name: string; configMap?: { name: string } }> };
        };
      };
    };
    const spec = deployment.spec;
    assert.equal(deployment.metadata.namespace, 'airlock');
    assert.equal(spec.replicas, 2);
    for (const [k, v] of Object.entries(spec.selector.matchLabels)) assert.equal(spec.template.metadata.labels[k], v, 'selector matches the pod labels');
    assert.equal(spec.template.spec.serviceAccountName, one(docs, 'ServiceAccount').metadata.name);
    assert.equal(spec.template.spec.securityContext['runAsNonRoot'], true);
    const [container] = spec.template.spec.containers;
    assert.deepEqual(container!.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const ports = Object.fromEntries(container!.ports.map((p) => [p.name, p.containerPort]));
    assert.equal(container!.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container!.livenessProbe.httpGet.path, '/healthz');
    assert.ok(ports[container!.readinessProbe.httpGet.port]);

    // The mounted config is a valid gateway config for this namespace, with in-cluster credentials.
    const configMap = one(docs, 'ConfigMap') as Doc & { data: Record<string, string> };
    const volume = spec.template.spec.volumes.find((v) => v.configMap?.name === configMap.metadata.name);
    assert.ok(volume, 'the ConfigMap is mounted');
    const mount = container!.volumeMounts.find((m) => m.name === volume.name);
    assert.equal(mount?.mountPath, container!.args[container!.args.indexOf('--config') + 1]);
    const config = parseConfig(parse(configMap.data['config.yaml']!), 'configmap');
    assert.equal(config.backend, 'kubernetes');
    assert.equal(config.kubernetes.pod.metadata.namespace, 'airlock-debug');
    assert.equal(config.kubernetes.connection.bearerToken, undefined);
    assert.equal(config.kubernetes.connection.cert, undefined);
    assert.equal(Number(config.ssh.listen.split(':')[1]), ports['ssh']);
    assert.equal(Number(config.health.listen.split(':')[1]), ports['operator']);

    // Service and PodDisruptionBudget select the gateway pods.
    const service = one(docs, 'Service') as Doc & { spec: { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string }> } };
    assert.deepEqual(service.spec.selector, spec.selector.matchLabels);
    assert.equal(service.spec.ports[0]?.port, 22);
    assert.ok(ports[service.spec.ports[0]!.targetPort], 'the Service targets the ssh port by name');
    const pdb = one(docs, 'PodDisruptionBudget') as Doc & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    assert.equal(pdb.metadata.namespace, 'airlock');
    assert.deepEqual(pdb.spec.selector.matchLabels, spec.selector.matchLabels);
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < spec.replicas);
  });

  it('Deployment: every mounted Secret/ConfigMap file is readable by the non-root user the gateway runs as', async () => {
    const docs = await loadAll();
    const deployment = one(docs, 'Deployment') as Doc & { spec: { template: { spec: PodSpec } } };
    const pod = deployment.spec.template.spec;
    assert.deepEqual(unreadableMounts(pod), []);
    // The host key stays private to the gateway's group: not world-readable.
    const hostKeys = pod.volumes?.find((v) => v.secret?.secretName === 'airlock-host-keys');
    assert.ok(hostKeys, 'the host-key Secret is mounted');
    assert.equal((hostKeys.secret?.defaultMode ?? DEFAULT_FILE_MODE) & 0o007, 0, 'the host key is not readable by other users');
    assert.equal(pod.securityContext?.fsGroup, pod.securityContext?.runAsGroup);

    // The check fails on what the manifest used to say (0400 and no fsGroup: root-owned, unreadable),
    // and on a pod that would run as root to read it.
    const withoutFsGroup: PodSpec = structuredClone(pod);
    delete withoutFsGroup.securityContext!.fsGroup;
    withoutFsGroup.volumes!.find((v) => v.name === hostKeys.name)!.secret!.defaultMode = 0o400;
    assert.match(unreadableMounts(withoutFsGroup).join('\n'), new RegExp(`volume ${hostKeys.name} file \\* mode 0400 is unreadable`));
    const groupOnlyWithoutFsGroup: PodSpec = structuredClone(pod);
    delete groupOnlyWithoutFsGroup.securityContext!.fsGroup;
    assert.match(unreadableMounts(groupOnlyWithoutFsGroup).join('\n'), /mode 0440 is unreadable/);
    const itemMode: PodSpec = structuredClone(pod);
    itemMode.volumes!.find((v) => v.name === hostKeys.name)!.secret!.items = [{ key: 'k', path: 'k', mode: 0o600 }];
    assert.match(unreadableMounts(itemMode).join('\n'), /file k mode 0600 is unreadable/);
    const asRoot: PodSpec = structuredClone(pod);
    asRoot.containers[0]!.securityContext = { ...asRoot.containers[0]!.securityContext, runAsUser: 0 };
    assert.match(unreadableMounts(asRoot).join('\n'), /runAsUser must be set and not 0/);
  });

  it('NetworkPolicy: debug pods get no ingress and no egress to private ranges (cluster API, pods, metadata)', async () => {
    const docs = await loadAll();
    const policy = one(docs, 'NetworkPolicy', 'airlock-debug-pods') as Doc & {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: unknown[];
        egress: Array<{ to: Array<{ ipBlock?: { cidr: string; except: string[] } }>; ports?: Array<{ port: number }> }>;
      };
    };
    assert.equal(policy.metadata.namespace, 'airlock-debug');
    assert.deepEqual(policy.spec.podSelector.matchLabels, { 'airlock.managed': 'true' }, 'selects what the backend labels');
    assert.deepEqual([...policy.spec.policyTypes].sort(), ['Egress', 'Ingress']);
    assert.deepEqual(policy.spec.ingress, []);
    for (const rule of policy.spec.egress) {
      for (const peer of rule.to) {
        if (!peer.ipBlock) {
          assert.deepEqual(rule.ports?.map((p) => p.port), [53, 53], 'non-CIDR peers only for DNS');
          continue;
        }
        assert.equal(peer.ipBlock.cidr, '0.0.0.0/0');
        for (const blocked of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']) assert.ok(peer.ipBlock.except.includes(blocked), blocked);
      }
    }
  });
});
