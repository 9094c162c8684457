/** The network-helper sidecar's pure parts: what may reach nc's argv, and the hardened create body. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTarget, RELAY_LIMITS, relayCreateBody } from '../../src/backend/docker/relay.js';
import { connectCmdline, RELAY_DIR_NAME } from '../../src/backend/docker/relay-scripts.js';

describe('docker relay', () => {
  it('accepts host names and addresses, refuses anything nc could take as an option or the shell as syntax', () => {
    for (const host of ['localhost', '127.0.0.1', '::1', 'db.internal', 'fe80::1%eth0', 'my_service-1']) assert.doesNotThrow(() => checkTarget(host, 80), host);
    for (const host of ['-e/bin/sh', '', 'a b', 'x;id', '$(id)', 'a\nb', 'x'.repeat(256)]) {
      assert.throws(() => checkTarget(host, 80), (e: Error & { code?: string }) => e.code === 'FORWARD_TARGET_FAILED', JSON.stringify(host));
    }
    for (const port of [0, -1, 65536, 1.5]) assert.throws(() => checkTarget('localhost', port), /port/);
  });

  it('the sidecar joins the workload network namespace and nothing else, hardened', () => {
    const body = relayCreateBody({ image: 'airlock-relay:busybox', labels: { 'airlock.role': 'relay' }, workloadContainerId: 'abc123' });
    assert.equal(body['User'], '65534:65534');
    assert.deepEqual(body['Labels'], { 'airlock.role': 'relay' });
    const host = body['HostConfig'] as Record<string, unknown>;
    assert.equal(host['NetworkMode'], 'container:abc123');
    assert.deepEqual(host['CapDrop'], ['ALL']);
    assert.deepEqual(host['SecurityOpt'], ['no-new-privileges']);
    assert.equal(host['ReadonlyRootfs'], true);
    assert.deepEqual(host['LogConfig'], { Type: 'none', Config: {} });
    assert.equal(host['PidsLimit'], RELAY_LIMITS.pidsLimit);
    assert.equal(host['Memory'], RELAY_LIMITS.memory);
    assert.equal(host['AutoRemove'], false);
    assert.equal(host['PidMode'], undefined, 'own PID namespace');
  });

  it('names only what the accept script makes, and the kill check matches nc as /proc shows it', () => {
    assert.match('airlock-relay.Ab3dE9', RELAY_DIR_NAME);
    for (const bad of ['airlock-relay.Ab3dE', '../etc', 'airlock-relay.Ab3dE9/x', 'airlock-relay.Ab3d$9']) assert.doesNotMatch(bad, RELAY_DIR_NAME);
    assert.equal(connectCmdline('127.0.0.1', 8080, 60), 'nc -w 60 -- 127.0.0.1 8080 ');
  });
});
