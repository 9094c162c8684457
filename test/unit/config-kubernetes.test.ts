/** The `kubernetes:` config section and its mapping onto the backend's options (src/cli/wiring.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { AirlockError } from '../../src/core/errors.js';
import { parseConfig } from '../../src/config/index.js';
import { kubernetesConnection, kubernetesOptions } from '../../src/cli/wiring.js';

const AUTH = { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'keys' } } };

function problems(raw: Record<string, unknown>): string[] {
  try {
    parseConfig({ ...AUTH, ...raw }, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof AirlockError);
    assert.equal(err.code, 'CONFIG_INVALID');
    return (err.details['problems'] as unknown[]).map(String);
  }
  assert.fail('expected the config to be rejected');
}

describe('kubernetes config', () => {
  test('a ContainerSSH-style section parses, with defaults where it says nothing', () => {
    const config = parseConfig(
      {
        ...AUTH,
        backend: 'kubernetes',
        kubernetes: {
          connection: { host: 'kubernetes.default.svc:443', bearerTokenFile: '/var/run/secrets/token', qps: 20, burst: 40 },
          pod: {
            metadata: { namespace: 'airlock-debug', generateName: 'debug-', labels: { team: 'ci' }, annotations: { 'example.com/x': 'y' } },
            spec: { containers: [{ name: 'shell', image: 'ghcr.io/acme/ci:1' }], nodeSelector: { pool: 'debug' } },
            mode: 'session',
            shellCommand: ['/bin/bash'],
          },
          timeouts: { podStart: '2m', http: '5s' },
          reaper: { interval: '30s' },
        },
      },
      'test',
    );
    assert.equal(config.backend, 'kubernetes');
    const k = config.kubernetes;
    assert.equal(k.connection.host, 'https://kubernetes.default.svc:443', 'a bare host means HTTPS');
    assert.equal(k.connection.qps, 20);
    assert.equal(k.pod.metadata.namespace, 'airlock-debug');
    assert.equal(k.pod.mode, 'session');
    assert.equal(k.pod.consoleContainerNumber, 0);
    assert.deepEqual(k.pod.subsystems, { sftp: '/usr/lib/openssh/sftp-server' });
    assert.deepEqual(k.timeouts, { podStart: 120_000, podStop: 60_000, commandStart: 60_000, signal: 10_000, window: 10_000, http: 5_000 });
    assert.deepEqual(k.reaper, { interval: 30_000, foreignMaxAge: 86_400_000 });

    const options = kubernetesOptions(config, 'gw', pino({ level: 'silent' }));
    assert.deepEqual(options.connection, { host: 'https://kubernetes.default.svc:443', qps: 20, burst: 40, bearerTokenFile: '/var/run/secrets/token' });
    assert.deepEqual(options.pod, {
      namespace: 'airlock-debug',
      generateName: 'debug-',
      labels: { team: 'ci' },
      annotations: { 'example.com/x': 'y' },
      spec: { containers: [{ name: 'shell', image: 'ghcr.io/acme/ci:1' }], nodeSelector: { pool: 'debug' } },
      consoleContainerNumber: 0,
    });
    assert.equal(options.mode, 'session');
    assert.deepEqual(options.shellCommand, ['/bin/bash']);
    assert.equal(options.gatewayId, 'gw');
  });

  test('without credentials the gateway uses its in-cluster ServiceAccount', () => {
    const config = parseConfig({ ...AUTH, backend: 'kubernetes' }, 'test');
    assert.deepEqual(kubernetesConnection(config), {
      host: 'https://kubernetes.default.svc',
      qps: 5,
      burst: 10,
      bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      cacert: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    });
    const explicit = parseConfig({ ...AUTH, kubernetes: { connection: { host: 'https://10.0.0.1:6443', cert: 'c.pem', key: 'k.pem' } } }, 'test');
    assert.deepEqual(kubernetesConnection(explicit), { host: 'https://10.0.0.1:6443', qps: 5, burst: 10, cert: 'c.pem', key: 'k.pem' });
  });

  test('mistakes name the key and the fix', () => {
    assert.deepEqual(
      problems({
        kubernetes: {
          connection: { host: 'ftp://x', cert: 'c.pem', bearerToken: 't', bearerTokenFile: 'f' },
          pod: {
            metadata: { namespace: 'Not_A_Namespace', labels: { 'airlock.role': 'x' } },
            spec: { restartPolicy: 'Always', containers: [{ name: 'shell' }] },
            consoleContainerNumber: 2,
            mode: 'pod',
          },
        },
      }),
      [
        'kubernetes.connection.host: must be the API server address, e.g. https://kubernetes.default.svc or 10.0.0.1:6443',
        'kubernetes.connection.key: client certificate authentication needs both kubernetes.connection.cert and kubernetes.connection.key — set both or neither',
        'kubernetes.connection.bearerTokenFile: set either bearerToken or bearerTokenFile, not both',
        'kubernetes.pod.metadata.namespace: must be a namespace name (lower-case letters, digits, "-")',
        'kubernetes.pod.metadata.labels["airlock.role"]: names starting with "airlock." are reserved for the gateway — choose another name',
        'kubernetes.pod.mode: must be one of connection, session (got "pod")',
        'kubernetes.pod.spec.containers[0].image: required — set it',
        'kubernetes.pod.consoleContainerNumber: must be an index into spec.containers (0..0)',
        "kubernetes.pod.spec.restartPolicy: the gateway's pods always use Never (a restarted container loses the session) — remove it",
      ],
    );
    assert.deepEqual(problems({ kubernetes: { pod: { spec: { nodeSelector: {} } } } }), [
      'kubernetes.pod.spec.containers: must list at least one container, e.g. [{name: shell, image: busybox:1.36}]',
    ]);
  });

  test('ContainerSSH keys Airlock does not take say why, not "check the spelling"', () => {
    assert.deepEqual(
      problems({
        kubernetes: {
          connection: { cacertFile: '/ca.pem', insecure: true },
          pod: { agentPath: '/usr/bin/containerssh-agent', exposeAuthMetadataAsLabels: { a: 'b' } },
          execution: { mode: 'session' },
        },
      }),
      [
        'kubernetes.connection.cacertFile: not supported yet by this Airlock version — use kubernetes.connection.cacert: it takes PEM text or a file path',
        'kubernetes.connection.insecure: Airlock always verifies the API server certificate — set kubernetes.connection.cacert',
        'kubernetes.pod.agentPath: not needed: Airlock runs without an agent in the image — remove it',
        'kubernetes.pod.exposeAuthMetadataAsLabels: not supported yet by this Airlock version — remove it (non-sensitive auth metadata always becomes airlock.meta.* annotations, and labels where the value fits a label)',
        'kubernetes.execution: the Kubernetes settings are under kubernetes.pod — use kubernetes.pod.mode / idleCommand / shellCommand / subsystems',
      ],
    );
  });
});
