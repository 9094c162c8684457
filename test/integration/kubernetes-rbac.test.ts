/**
 * The Role in deploy/kubernetes/rbac.yaml is exactly what the backend needs: the fake API server
 * authorizes every request against that Role (as the real RBAC authorizer would, including the
 * `get` + `create` on pods/exec for a websocket exec), the whole lifecycle runs — ping, both modes,
 * files, signals, resize, close, the per-connection sweep and the reaper — without a 403, and
 * every granted verb is used.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import pino from 'pino';
import { parseAllDocuments } from 'yaml';
import type { ConnectionInfo } from '../../src/backend/backend.js';
import { createKubernetesBackend, createKubernetesReaper, type KubernetesBackendOptions } from '../../src/backend/kubernetes/index.js';
import { newConnectionId } from '../../src/core/ids.js';
import { startFakeKubeApiServer, type FakeKubeApiServer, type RequestAttributes } from '../fakes/fake-kube-apiserver.js';
import { tempDir } from '../helpers/tmp.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

async function loadRole(): Promise<{ namespace: string; rules: Rule[] }> {
  const text = await readFile(resolve(import.meta.dirname, '../../deploy/kubernetes/rbac.yaml'), 'utf8');
  const role = parseAllDocuments(text)
    .map((d) => d.toJSON() as { kind: string; metadata: { namespace: string }; rules: Rule[] })
    .find((d) => d.kind === 'Role');
  assert.ok(role);
  return { namespace: role.metadata.namespace, rules: role.rules };
}

async function drain(readable: Readable): Promise<string> {
  let text = '';
  for await (const chunk of readable) text += (chunk as Buffer).toString();
  return text;
}

function options(fake: FakeKubeApiServer, namespace: string, mode: 'connection' | 'session'): KubernetesBackendOptions {
  return {
    connection: { host: fake.url, bearerToken: fake.token, cacert: fake.pki!.caCert, qps: 100, burst: 100 },
    gatewayId: 'rbac0test0gateway',
    pod: { namespace, generateName: 'airlock-', labels: {}, annotations: {}, spec: { containers: [{ name: 'shell', image: 'busybox:1.36' }] }, consoleContainerNumber: 0 },
    mode,
    idleCommand: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
    subsystems: {},
    timeouts: { podStart: 10_000, podStop: 10_000, commandStart: 10_000, signal: 5_000, window: 5_000, http: 5_000 },
    logger: pino({ level: 'silent' }),
  };
}

describe('deploy/kubernetes Role vs. the backend', () => {
  it('the Role allows the whole lifecycle and grants nothing unused', async () => {
    const role = await loadRole();
    const denied: RequestAttributes[] = [];
    const fake = await startFakeKubeApiServer({
      namespaces: [role.namespace, 'elsewhere'],
      // Watches end early, so the backend also takes its re-GET path (pods:get).
      maxWatchMs: 5,
      stepDelayMs: 30,
      authorize: (a) => {
        const ok = a.namespace === role.namespace && role.rules.some((r) => r.apiGroups.includes('') && r.resources.includes(a.resource) && r.verbs.includes(a.verb));
        if (!ok) denied.push(a);
        return ok;
      },
    });
    const scratch = await tempDir('kube-rbac-');
    await chmod(scratch.path, 0o1777);
    try {
      for (const mode of ['connection', 'session'] as const) {
        const backend = createKubernetesBackend(options(fake, role.namespace, mode));
        await backend.ping();
        const info: ConnectionInfo = {
          connectionId: newConnectionId(),
          loginUsername: 'u',
          username: 'u',
          remoteAddress: '127.0.0.1:1',
          clientVersion: 'SSH-2.0-test',
          metadata: {},
          environment: {},
          files: { [`${scratch.path}/${mode}/f`]: { content: Buffer.from('x'), sensitive: false } },
        };
        const conn = await backend.openConnection(info);
        const proc = await conn.startProcess({ channelId: 0, kind: 'exec', command: 'echo ready; exec sleep 100', env: {}, pty: { term: 'xterm', cols: 80, rows: 24 } });
        const out = drain(proc.stdout);
        await proc.resize(100, 30);
        await new Promise((r) => setTimeout(r, 100));
        await proc.signal('TERM');
        assert.deepEqual(await proc.exited, { kind: 'signal', signal: 'TERM', coreDumped: false });
        assert.match(await out, /ready/);
        await conn.close('test');
        await backend.close();
      }
      const reaper = createKubernetesReaper({
        connection: options(fake, role.namespace, 'connection').connection,
        namespace: role.namespace,
        gatewayId: 'rbac0test0gateway',
        liveConnections: () => [],
        foreignMaxAgeMs: 1000,
        logger: pino({ level: 'silent' }),
      });
      await reaper.runOnce();
      await reaper.stop();

      assert.deepEqual(denied, [], 'no request was refused');
      const used = new Set(fake.requests.map((r) => `${r.resource}:${r.verb}`));
      const granted = new Set(role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${res}:${v}`))));
      assert.deepEqual([...granted].filter((g) => !used.has(g)), [], 'every granted verb is needed');
      assert.ok(fake.requests.every((r) => r.namespace === role.namespace), 'the gateway only touches its namespace');

      // And a namespace the Role does not cover is refused with a clear code.
      const outside = createKubernetesBackend(options(fake, 'elsewhere', 'connection'));
      await assert.rejects(outside.ping(), (err: unknown) => (err as { code?: string }).code === 'BACKEND_FORBIDDEN');
    } finally {
      await Promise.all(fake.pods().map((p) => fake.podGone(String((p['metadata'] as Record<string, unknown>)['namespace']), String((p['metadata'] as Record<string, unknown>)['name']))));
      assert.equal(await fake.liveProcesses(), 0);
      await fake.close();
      await scratch.cleanup();
    }
  });
});
