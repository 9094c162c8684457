/**
 * Every Pod the Kubernetes backend generates is validated against the upstream Kubernetes schema
 * (npm kubernetes-models: the OpenAPI definitions of core/v1 Pod) and against the API server's
 * own name/label rules (the fake API server's validatePod); plus the template check, the status
 * verdicts and the pure helpers of src/backend/kubernetes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { Pod } from 'kubernetes-models/v1/Pod';
import type { ConnectionInfo } from '../../src/backend/backend.js';
import { fileWriteCommand, planKubeCommand } from '../../src/backend/kubernetes/command.js';
import { execPath, parseExecStatus } from '../../src/backend/kubernetes/exec-stream.js';
import { certainlyNotApplied, isTransient, mapKubeError } from '../../src/backend/kubernetes/kube-errors.js';
import type { KubernetesPodOptions } from '../../src/backend/kubernetes/options.js';
import { DEFAULT_IDLE_COMMAND } from '../../src/backend/kubernetes/options.js';
import { buildPod, podName, type PodBuildInput } from '../../src/backend/kubernetes/pod-spec.js';
import { podVerdict, startTimeoutError } from '../../src/backend/kubernetes/pod-status.js';
import { checkPodTemplate, isLabelValue, unknownFields } from '../../src/backend/kubernetes/pod-template.js';
import { RateLimiter } from '../../src/backend/kubernetes/rate-limiter.js';
import { podReapReason, type PodCandidate, type PodReapPolicy } from '../../src/backend/kubernetes/reaper.js';
import { validatePod } from '../fakes/fake-kube-apiserver.js';

const TEMPLATE: KubernetesPodOptions = {
  namespace: 'airlock-debug',
  generateName: 'airlock-',
  labels: { team: 'ci' },
  annotations: { 'example.com/owner': 'platform' },
  spec: { containers: [{ name: 'shell', image: 'busybox:1.36' }] },
  consoleContainerNumber: 0,
};

function info(overrides: Partial<ConnectionInfo> = {}): ConnectionInfo {
  return {
    connectionId: '0123456789abcdef0123456789abcdef',
    loginUsername: 'eyJhbGciOi.token.sig',
    username: 'Alice Example <alice@example.com>',
    remoteAddress: '10.0.0.9:51000',
    clientVersion: 'SSH-2.0-OpenSSH_9.6',
    metadata: {},
    environment: {},
    files: {},
    ...overrides,
  };
}

function input(overrides: Partial<PodBuildInput> = {}): PodBuildInput {
  return {
    name: podName('airlock-', '0123456789abcdef0123456789abcdef'),
    pod: TEMPLATE,
    idleCommand: [...DEFAULT_IDLE_COMMAND],
    info: info(),
    gatewayId: '8f3e2a1b9c0d4e5f',
    hostname: 'airlock-7d9f8b6c5-x2k4p',
    pid: 1,
    role: 'connection',
    now: new Date('2026-11-01T12:00:00.000Z'),
    ...overrides,
  };
}

/** Upstream schema + API server rules; fails the test with every problem listed. */
function assertValidPod(pod: V1Pod): void {
  const json = JSON.parse(JSON.stringify(pod)) as Record<string, unknown>;
  assert.doesNotThrow(() => new Pod(json as ConstructorParameters<typeof Pod>[0]).validate(), 'kubernetes-models Pod schema');
  assert.deepEqual(validatePod(json), [], 'API server name/label/container rules');
}

const VARIANTS: Array<[string, PodBuildInput]> = [
  ['connection mode, plain template', input()],
  ['session mode with a channel', input({ role: 'session', channelId: 7 })],
  [
    'deadline, metadata of every shape, environment, image override',
    input({
      info: info({
        deadline: new Date('2026-11-01T12:30:00.000Z'),
        image: 'ghcr.io/acme/ci-image:sha-1234',
        metadata: {
          pr_number: { value: '42', sensitive: false },
          'Commit SHA': { value: 'a'.repeat(40), sensitive: false },
          title: { value: 'fix: spaces & symbols — ünïcode', sensitive: false },
          long: { value: 'x'.repeat(100), sensitive: false },
          ['very-long-key-'.repeat(10)]: { value: 'v', sensitive: false },
          '!!!': { value: 'dropped key', sensitive: false },
          token: { value: 'secret-value', sensitive: true },
        },
        environment: { CI: { value: 'true', sensitive: false }, API_TOKEN: { value: 'tkn', sensitive: true } },
      }),
    }),
  ],
  [
    'template with sidecar, resources, security overrides, env, volumes',
    input({
      pod: {
        ...TEMPLATE,
        spec: {
          securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
          volumes: [{ name: 'work', emptyDir: { sizeLimit: '1Gi' } }],
          activeDeadlineSeconds: 600,
          containers: [
            { name: 'proxy', image: 'envoyproxy/envoy:v1.31.0', args: ['--config-path', '/etc/envoy.yaml'] },
            {
              name: 'shell',
              image: 'busybox:1.36',
              command: ['/bin/false'],
              args: ['ignored'],
              env: [{ name: 'FROM_TEMPLATE', value: '1' }, { name: 'CI', value: 'template' }],
              resources: { limits: { cpu: '2', memory: '2Gi' } },
              securityContext: { readOnlyRootFilesystem: true },
              volumeMounts: [{ name: 'work', mountPath: '/work' }],
            },
          ],
        },
        consoleContainerNumber: 1,
      },
      info: info({ deadline: new Date('2026-11-01T14:00:00.000Z'), environment: { CI: { value: 'true', sensitive: false } } }),
    }),
  ],
  [
    'template with init containers and a native sidecar',
    input({
      pod: {
        ...TEMPLATE,
        spec: {
          securityContext: { runAsUser: 1000 },
          initContainers: [
            { name: 'fetch', image: 'busybox:1.36', command: ['wget', '-O', '/work/tool', 'https://example.com/tool'] },
            { name: 'log-shipper', image: 'fluent/fluent-bit:3.1', restartPolicy: 'Always', securityContext: { readOnlyRootFilesystem: true } },
            { name: 'needs-chown', image: 'busybox:1.36', securityContext: { capabilities: { add: ['CHOWN'], drop: ['ALL'] } } },
          ],
          containers: [{ name: 'shell', image: 'busybox:1.36' }],
        },
      },
    }),
  ],
];

/**
 * The per-container checks of the `restricted` Pod Security Standard that the defaults are meant
 * to meet (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted): the
 * admission controller applies them to containers, init containers and ephemeral containers alike.
 */
function restrictedViolations(pod: V1Pod): string[] {
  const spec = pod.spec!;
  const out: string[] = [];
  if (spec.securityContext?.runAsNonRoot !== true) out.push('pod: runAsNonRoot');
  if (spec.securityContext?.seccompProfile?.type !== 'RuntimeDefault') out.push('pod: seccompProfile');
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    if (c.securityContext?.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation`);
    if (!c.securityContext?.capabilities?.drop?.includes('ALL')) out.push(`${c.name}: capabilities.drop ALL`);
    const added = (c.securityContext?.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
    if (added.length > 0) out.push(`${c.name}: capabilities.add ${added.join(',')}`);
  }
  return out;
}

describe('generated pods', () => {
  for (const [name, variant] of VARIANTS) {
    it(`validate against the upstream schema: ${name}`, () => {
      const pod = buildPod(variant);
      assertValidPod(pod);
      for (const [key, value] of Object.entries(pod.metadata?.labels ?? {})) assert.ok(isLabelValue(value), `label ${key}=${value}`);
    });
  }

  it('init containers and native sidecars get the same securityContext defaults (restricted Pod Security)', () => {
    const variant = VARIANTS.find(([name]) => name.includes('init containers'))![1];
    const pod = buildPod(variant);
    const [fetch, shipper, chown] = pod.spec!.initContainers!;
    assert.deepEqual(fetch!.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    assert.deepEqual(fetch!.command, ['wget', '-O', '/work/tool', 'https://example.com/tool'], 'init containers keep their command');
    assert.equal(fetch!.resources, undefined, 'default resources only for the console container');
    assert.deepEqual(shipper!.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true });
    assert.equal(shipper!.restartPolicy, 'Always');
    // An explicit template value wins, as for containers; the checker sees what the operator asked for.
    assert.deepEqual(chown!.securityContext, { allowPrivilegeEscalation: false, capabilities: { add: ['CHOWN'], drop: ['ALL'] } });
    assert.deepEqual(restrictedViolations(pod), ['needs-chown: capabilities.add CHOWN']);
    // The template itself is untouched (shared by every connection).
    assert.equal((variant.pod.spec['initContainers'] as Array<Record<string, unknown>>)[0]!['securityContext'], undefined);
    // Without the defaults the checker would have refused every init container: it can fail.
    const bare = structuredClone(pod);
    for (const c of bare.spec!.initContainers!) delete c.securityContext;
    assert.deepEqual(restrictedViolations(bare), ['fetch: allowPrivilegeEscalation', 'fetch: capabilities.drop ALL', 'log-shipper: allowPrivilegeEscalation', 'log-shipper: capabilities.drop ALL', 'needs-chown: allowPrivilegeEscalation', 'needs-chown: capabilities.drop ALL']);
  });

  it('every variant without explicit exceptions meets the restricted Pod Security checks', () => {
    for (const [name, variant] of VARIANTS) {
      const violations = restrictedViolations(buildPod(variant)).filter((v) => !v.startsWith('needs-chown:'));
      assert.deepEqual(violations, [], name);
    }
  });

  it('sets the mechanics and secure defaults', () => {
    const pod = buildPod(input({ info: info({ deadline: new Date('2026-11-01T12:30:00.000Z') }) }));
    const spec = pod.spec!;
    assert.equal(spec.restartPolicy, 'Never');
    assert.equal(spec.automountServiceAccountToken, false);
    assert.equal(spec.enableServiceLinks, false);
    assert.equal(spec.terminationGracePeriodSeconds, 5);
    assert.deepEqual(spec.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    assert.equal(spec.activeDeadlineSeconds, 30 * 60 + 60);
    const shell = spec.containers[0]!;
    assert.deepEqual(shell.command, [...DEFAULT_IDLE_COMMAND]);
    assert.deepEqual(shell.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    assert.deepEqual(shell.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } });
    assert.deepEqual(pod.metadata?.labels, {
      team: 'ci',
      'airlock.managed': 'true',
      'airlock.gateway': '8f3e2a1b9c0d4e5f',
      'airlock.connection': '0123456789abcdef0123456789abcdef',
      'airlock.role': 'connection',
    });
    assert.deepEqual(pod.metadata?.annotations, {
      'example.com/owner': 'platform',
      'airlock.user': 'Alice Example <alice@example.com>',
      'airlock.gateway-host': 'airlock-7d9f8b6c5-x2k4p',
      'airlock.gateway-pid': '1',
      'airlock.created-at': '2026-11-01T12:00:00.000Z',
      'airlock.deadline': '2026-11-01T12:30:00.000Z',
    });
    assert.equal(pod.metadata?.namespace, 'airlock-debug');
    assert.match(pod.metadata?.name ?? '', /^airlock-0123456789ab-[0-9a-f]{6}$/);
  });

  it('explicit template values win over defaults; the console container is chosen by number', () => {
    const [, variant] = VARIANTS[3]!;
    const pod = buildPod(variant);
    const spec = pod.spec!;
    assert.deepEqual(spec.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 });
    assert.equal(spec.activeDeadlineSeconds, 600, 'the smaller of the template and the connection deadline');
    const [proxy, shell] = spec.containers;
    assert.deepEqual(proxy!.args, ['--config-path', '/etc/envoy.yaml'], 'other containers keep their command');
    assert.equal(proxy!.resources, undefined, 'default resources only for the console container');
    assert.deepEqual(proxy!.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    assert.deepEqual(shell!.command, [...DEFAULT_IDLE_COMMAND]);
    assert.equal(shell!.args, undefined);
    assert.deepEqual(shell!.resources, { limits: { cpu: '2', memory: '2Gi' } });
    assert.deepEqual(shell!.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true });
    assert.deepEqual(shell!.env, [{ name: 'FROM_TEMPLATE', value: '1' }, { name: 'CI', value: 'true' }], 'the connection environment wins');
    // The template object itself is untouched (it is shared by every connection).
    assert.deepEqual((TEMPLATE.spec['containers'] as unknown[]).length, 1);
    assert.equal(((variant.pod.spec['containers'] as Array<Record<string, unknown>>)[1]!)['args'] !== undefined, true);
  });

  it('auth metadata: annotations for every non-sensitive key, labels only for label-safe values, never secrets', () => {
    const [, variant] = VARIANTS[2]!;
    const pod = buildPod(variant);
    const labels = pod.metadata?.labels ?? {};
    const annotations = pod.metadata?.annotations ?? {};
    assert.equal(labels['airlock.meta.pr_number'], '42');
    assert.equal(labels['airlock.meta.commit-sha'], 'a'.repeat(40));
    assert.equal(labels['airlock.meta.title'], undefined);
    assert.equal(annotations['airlock.meta.title'], 'fix: spaces & symbols — ünïcode');
    assert.equal(labels['airlock.meta.long'], undefined, 'over 63 characters');
    assert.equal(annotations['airlock.meta.long'], 'x'.repeat(100));
    assert.ok(Object.keys(annotations).every((k) => k.length <= 63));
    const text = JSON.stringify(pod);
    assert.ok(!text.includes('secret-value'), 'sensitive metadata is not in the pod');
    assert.equal(pod.spec?.containers[0]?.image, 'ghcr.io/acme/ci-image:sha-1234');
    // Sensitive environment still reaches the program (it is the program's environment).
    assert.deepEqual(pod.spec?.containers[0]?.env, [{ name: 'CI', value: 'true' }, { name: 'API_TOKEN', value: 'tkn' }]);
  });
});

describe('pod template check', () => {
  it('finds misspelt keys anywhere in the PodSpec (client-node would drop them)', () => {
    const spec = {
      containers: [{ name: 'shell', image: 'x', securityContxt: {}, resources: { limit: { cpu: '1' } }, env: [{ name: 'A', valu: 'b' }] }],
      volumes: [{ name: 'v', emptyDir: { sizeLimt: '1Gi' } }],
      nodeSelectr: {},
      nodeSelector: { 'any/key': 'ok' },
    };
    assert.deepEqual(unknownFields(spec, 'V1PodSpec', 'spec').sort(), [
      'spec.containers[0].env[0].valu',
      'spec.containers[0].resources.limit',
      'spec.containers[0].securityContxt',
      'spec.nodeSelectr',
      'spec.volumes[0].emptyDir.sizeLimt',
    ]);
    assert.deepEqual(unknownFields({ containers: [{ name: 's', image: 'x', ports: [{ containerPort: 80 }] }] }, 'V1PodSpec', 'spec'), []);
  });

  it('refuses what the backend cannot work with, one line each', () => {
    const problems = checkPodTemplate({
      ...TEMPLATE,
      generateName: 'Airlock_',
      labels: { 'airlock.role': 'x', ok: 'has space' },
      annotations: { 'bad key!': 'v' },
      spec: { restartPolicy: 'Always', containers: [{ name: 'shell' }] },
      consoleContainerNumber: 3,
    });
    assert.deepEqual(problems, [
      'kubernetes.pod.consoleContainerNumber: must be an index into spec.containers (0..0)',
      'kubernetes.pod.spec.containers[0].image: required',
      "kubernetes.pod.spec.restartPolicy: the gateway's pods always use Never (a restarted container loses the session) — remove it",
      'kubernetes.pod.metadata.labels.airlock.role: names starting with "airlock." are reserved for the gateway',
      'kubernetes.pod.metadata.labels.ok: label values are at most 63 letters, digits, "-", "_" or "." (starting and ending alphanumeric)',
      'kubernetes.pod.metadata.annotations.bad key!: not a valid Kubernetes annotation name',
      'kubernetes.pod.metadata.generateName: must be lower-case letters, digits and "-" (a pod name prefix)',
    ]);
    assert.deepEqual(checkPodTemplate(TEMPLATE), []);
  });
});

function pod(status: V1Pod['status'], metadata: V1Pod['metadata'] = {}): V1Pod {
  return { metadata: { name: 'p', namespace: 'ns', ...metadata }, spec: { containers: [{ name: 'shell', image: 'img' }] }, status };
}

describe('pod status verdicts', () => {
  it('running only when the pod runs and the console container does', () => {
    assert.deepEqual(podVerdict(pod({ phase: 'Running', containerStatuses: [{ name: 'shell', image: 'img', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] }), 'shell'), {
      state: 'running',
    });
    const creating = podVerdict(
      pod({ phase: 'Pending', containerStatuses: [{ name: 'shell', image: 'img', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] }),
      'shell',
    );
    assert.deepEqual(creating, { state: 'pending', detail: 'ContainerCreating', unschedulable: undefined });
  });

  it('image errors fail fast: not found vs other pull failures', () => {
    const waiting = (reason: string, message?: string) =>
      podVerdict(
        pod({ phase: 'Pending', containerStatuses: [{ name: 'shell', image: 'docker.io/library/nope:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, ...(message ? { message } : {}) } } }] }),
        'shell',
      );
    const notFound = waiting('ErrImagePull', 'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nope:1": not found');
    assert.equal(notFound.state, 'failed');
    assert.equal(notFound.state === 'failed' && notFound.error.code, 'IMAGE_NOT_FOUND');
    assert.equal(notFound.state === 'failed' && notFound.error.userMessage, 'the container image "docker.io/library/nope:1" does not exist');
    const denied = waiting('ErrImagePull', 'failed to authorize: 401 Unauthorized');
    assert.equal(denied.state === 'failed' && denied.error.code, 'IMAGE_PULL_FAILED');
    assert.equal(waiting('ImagePullBackOff', 'Back-off pulling image "nope:1"').state === 'failed', true);
    const invalid = waiting('InvalidImageName', 'Failed to apply default image tag "UPPER": couldn\'t parse image reference');
    assert.equal(invalid.state === 'failed' && invalid.error.code, 'IMAGE_NOT_FOUND');
    const config = waiting('CreateContainerConfigError', 'container has runAsNonRoot and image will run as root');
    assert.equal(config.state === 'failed' && config.error.code, 'CONTAINER_START_FAILED');
    assert.match(config.state === 'failed' ? config.error.message : '', /runAsUser to a non-zero uid, or runAsNonRoot: false/);
  });

  it('a sidecar that cannot pull also fails the pod', () => {
    const v = podVerdict(
      pod({
        phase: 'Pending',
        containerStatuses: [
          { name: 'proxy', image: 'bad', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull', message: 'manifest unknown' } } },
          { name: 'shell', image: 'img', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } },
        ],
      }),
      'shell',
    );
    assert.equal(v.state === 'failed' && v.error.code, 'IMAGE_NOT_FOUND');
  });

  it('ended pods, exited console containers and deletions fail; unschedulable waits', () => {
    const ended = podVerdict(pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' }), 'shell');
    assert.equal(ended.state === 'failed' && ended.error.code, 'CONTAINER_START_FAILED');
    assert.match(ended.state === 'failed' ? ended.error.message : '', /DeadlineExceeded/);
    const exited = podVerdict(
      pod({ phase: 'Running', containerStatuses: [{ name: 'shell', image: 'img', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 127, reason: 'Error' } } }] }),
      'shell',
    );
    assert.match(exited.state === 'failed' ? exited.error.message : '', /exit code 127/);
    const deleting = podVerdict(pod({ phase: 'Running' }, { deletionTimestamp: new Date() }), 'shell');
    assert.equal(deleting.state, 'failed');
    const unschedulable = podVerdict(
      pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' }] }),
      'shell',
    );
    assert.deepEqual(unschedulable, {
      state: 'pending',
      detail: 'Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.',
      unschedulable: '0/3 nodes are available: 3 Insufficient cpu.',
    });
    assert.equal(startTimeoutError(unschedulable, 60, {}).code, 'POD_UNSCHEDULABLE');
    const timeout = startTimeoutError({ state: 'pending', detail: 'ContainerCreating', unschedulable: undefined }, 60, {});
    assert.equal(timeout.code, 'TIMEOUT');
    assert.match(timeout.message, /did not start within 60s \(last state: ContainerCreating\)/);
  });
});

describe('exec protocol helpers', () => {
  it('reads the status channel: success, exit codes, runtime errors', () => {
    assert.deepEqual(parseExecStatus('{"metadata":{},"status":"Success"}'), { kind: 'exit', code: 0 });
    assert.deepEqual(
      parseExecStatus(
        '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
      ),
      { kind: 'exit', code: 3 },
    );
    assert.deepEqual(parseExecStatus('{"status":"Failure","message":"OCI runtime exec failed","reason":"InternalError"}'), { kind: 'error', message: 'OCI runtime exec failed' });
    assert.deepEqual(parseExecStatus('not json'), { kind: 'error', message: 'not json' });
  });

  it('builds the exec URL the API server expects (repeated command, no stderr with a tty)', () => {
    const path = execPath({ namespace: 'ns', pod: 'p 1', container: 'shell', command: ['/bin/sh', '-c', 'echo a&b'], tty: true, stdin: true });
    const url = new URL(`https://x${path}`);
    assert.equal(url.pathname, '/api/v1/namespaces/ns/pods/p%201/exec');
    assert.deepEqual(url.searchParams.getAll('command'), ['/bin/sh', '-c', 'echo a&b']);
    assert.equal(url.searchParams.get('stderr'), 'false');
    assert.equal(url.searchParams.get('tty'), 'true');
  });

  it('environment travels as arguments: exported, never interpreted, PID marker intact', () => {
    const argv = planKubeCommand({
      request: { channelId: 0, kind: 'exec', command: 'echo "$A|$B|${BAD_NAME-unset}"', env: { A: '$(touch /tmp/pwned) ; `x`', B: 'two\nlines', 'BAD-NAME': 'x' } },
      shellCommand: undefined,
      subsystems: {},
      markerNonce: 'n0nce',
    });
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^airlock-pid n0nce \d+ 0\n/);
    assert.equal(r.stdout.split('\n').slice(1).join('\n'), '$(touch /tmp/pwned) ; `x`|two\nlines|unset\n');
    const plain = planKubeCommand({ request: { channelId: 0, kind: 'exec', command: 'true', env: {} }, shellCommand: undefined, subsystems: {}, markerNonce: 'n' });
    assert.equal(plain[0], '/bin/sh');
    assert.ok(!plain.includes('airlock-env'), 'no prologue without environment');
    const pty = planKubeCommand({
      request: { channelId: 0, kind: 'shell', command: '', env: {}, pty: { term: 'xterm', cols: 80, rows: 24 } },
      shellCommand: ['/bin/sh'],
      subsystems: {},
      markerNonce: 'n',
    });
    assert.ok(pty.includes('TERM=xterm'));
  });

  it('file writes read exactly size bytes (no EOF needed), create parents, set the mode', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-file-'));
    try {
      const path = join(dir, 'a/b/secret');
      const argv = fileWriteCommand(path, 5, 0o600);
      const r = spawnSync(argv[0]!, argv.slice(1), { input: 'helloEXTRA' });
      assert.equal(r.status, 0, String(r.stderr));
      assert.equal(readFileSync(path, 'utf8'), 'hello');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const empty = fileWriteCommand(join(dir, 'empty'), 0, 0o644);
      assert.equal(spawnSync(empty[0]!, empty.slice(1), { input: '' }).status, 0);
      assert.equal(statSync(join(dir, 'empty')).size, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rate limiter (kubernetes.connection.qps / burst)', () => {
  it('lets a burst through at once, then spaces calls at qps', async () => {
    const limiter = new RateLimiter(20, 3);
    const start = Date.now();
    const times: number[] = [];
    await Promise.all(Array.from({ length: 7 }, () => limiter.take().then(() => times.push(Date.now() - start))));
    times.sort((a, b) => a - b);
    assert.ok(times[2]! < 40, `burst of 3 at once: ${times}`);
    assert.ok(times[6]! >= 180, `4 more at 20/s take about 200ms: ${times}`);
  });

  it('an aborted wait gives up', async () => {
    const limiter = new RateLimiter(1, 1);
    await limiter.take();
    const abort = new AbortController();
    const waiting = limiter.take(abort.signal);
    abort.abort();
    await assert.rejects(waiting);
  });
});

describe('pod reaper policy', () => {
  const policy: PodReapPolicy = {
    gatewayId: 'me',
    hostname: 'gw-1',
    pid: 1,
    live: new Set(['live']),
    now: Date.parse('2026-11-01T12:00:00Z'),
    minAgeMs: 10_000,
    foreignMaxAgeMs: 86_400_000,
    isProcessAlive: (pid) => pid === 77,
  };
  const candidate = (labels: Record<string, string>, annotations: Record<string, string> = {}, ageMs = 60_000, phase = 'Running'): PodCandidate => ({
    labels,
    annotations,
    createdMs: policy.now - ageMs,
    phase,
  });
  const cases: Array<[string, PodCandidate, string | undefined]> = [
    ['deadline passed (any gateway)', candidate({ 'airlock.gateway': 'other' }, { 'airlock.deadline': '2026-11-01T11:59:00Z' }), 'deadline passed'],
    ['ours, connection live', candidate({ 'airlock.gateway': 'me', 'airlock.connection': 'live' }), undefined],
    ['ours, connection gone', candidate({ 'airlock.gateway': 'me', 'airlock.connection': 'gone' }), 'connection gone'],
    ['ours, too young', candidate({ 'airlock.gateway': 'me', 'airlock.connection': 'opening' }, {}, 1000), undefined],
    ['foreign and ended', candidate({ 'airlock.gateway': 'other' }, {}, 60_000, 'Succeeded'), 'pod ended'],
    ['same host, gateway pid gone', candidate({ 'airlock.gateway': 'other' }, { 'airlock.gateway-host': 'gw-1', 'airlock.gateway-pid': '55' }), 'gateway process gone'],
    ['same host, pid alive', candidate({ 'airlock.gateway': 'other' }, { 'airlock.gateway-host': 'gw-1', 'airlock.gateway-pid': '77' }), undefined],
    ['same host, our own pid (restarted container)', candidate({ 'airlock.gateway': 'other' }, { 'airlock.gateway-host': 'gw-1', 'airlock.gateway-pid': '1' }), 'gateway restarted'],
    ['other host, young', candidate({ 'airlock.gateway': 'other' }, { 'airlock.gateway-host': 'gw-2', 'airlock.gateway-pid': '1' }), undefined],
    ['other host, older than foreignMaxAge', candidate({ 'airlock.gateway': 'other' }, {}, 90_000_000), 'older than foreignMaxAge'],
  ];
  for (const [name, c, expected] of cases) {
    it(name, () => assert.equal(podReapReason(c, policy), expected));
  }
});

describe('API errors → codes', () => {
  const status = (code: number, reason: string, message: string) =>
    new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }), {});
  const refused = Object.assign(new Error('request to https://10.0.0.1:6443/api failed, reason: connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

  it('maps Status answers and network failures to codes with the server message', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [status(403, 'Forbidden', 'pods is forbidden: User "system:serviceaccount:airlock:airlock" cannot create resource "pods"'), 'BACKEND_FORBIDDEN', /cannot create resource "pods".*check the gateway's Role/],
      [new ApiException(401, 'Unauthorized', undefined, {}), 'BACKEND_FORBIDDEN', /rejected the gateway's credentials \(401/],
      [status(422, 'Invalid', 'Pod "x" is invalid: spec.containers[0].image: Required value'), 'CONTAINER_START_FAILED', /refused the pod: Pod "x" is invalid/],
      [status(500, 'InternalError', 'etcdserver: request timed out'), 'BACKEND_UNAVAILABLE', /etcdserver/],
      [status(429, 'TooManyRequests', 'slow down'), 'BACKEND_UNAVAILABLE', /slow down/],
      [status(404, 'NotFound', 'namespaces "nope" not found'), 'CONTAINER_START_FAILED', /namespaces "nope" not found/],
      [refused, 'BACKEND_UNAVAILABLE', /not reachable \(ECONNREFUSED\)/],
      [Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }), 'TIMEOUT', /timed out/],
    ];
    for (const [err, code, message] of cases) {
      const mapped = mapKubeError(err, 'CONTAINER_START_FAILED', 'creating the pod');
      assert.equal(mapped.code, code, mapped.message);
      assert.match(mapped.message, message);
      assert.equal(mapped.cause, err);
    }
  });

  it('knows when a create certainly did not happen (so there is nothing to delete)', () => {
    assert.equal(certainlyNotApplied(refused), true);
    assert.equal(certainlyNotApplied(mapKubeError(refused, 'CONTAINER_START_FAILED', 'x')), true, 'looks through the AirlockError');
    assert.equal(certainlyNotApplied(status(403, 'Forbidden', 'no')), true);
    assert.equal(certainlyNotApplied(status(500, 'InternalError', 'maybe')), false);
    assert.equal(certainlyNotApplied(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), false);
    assert.equal(certainlyNotApplied(Object.assign(new Error('aborted'), { name: 'AbortError' })), false);
    assert.equal(isTransient(refused), true);
    assert.equal(isTransient(status(409, 'AlreadyExists', 'x')), false);
  });
});
