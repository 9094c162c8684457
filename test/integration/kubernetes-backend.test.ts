/**
 * The Kubernetes backend through its own API (Backend → BackendConnection → Process), with the
 * real @kubernetes/client-node and `ws` against the protocol-faithful FAKE API server
 * (test/fakes/fake-kube-apiserver.ts: HTTPS, watch, websocket exec, pods as local processes).
 * The SSH-level behaviour is in test/conformance/kubernetes.test.ts.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import pino from 'pino';
import type { Backend, BackendConnection, ConnectionInfo, ExitStatus, Process, ProcessRequest } from '../../src/backend/backend.js';
import { createKubernetesBackend, createKubernetesReaper, type KubernetesBackendOptions } from '../../src/backend/kubernetes/index.js';
import { AirlockError, isAirlockError, userLine, type ErrorCode } from '../../src/core/errors.js';
import { newConnectionId, newGatewayId } from '../../src/core/ids.js';
import { startFakeKubeApiServer, type FakeKubeApiServer } from '../fakes/fake-kube-apiserver.js';
import type { Json } from '../fakes/fake-kube-status.js';
import { tempDir } from '../helpers/tmp.js';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function captureLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

const gatewayId = `t${newGatewayId()}`;
const NS = 'airlock-debug';

function options(fake: FakeKubeApiServer, overrides: Partial<KubernetesBackendOptions> = {}): KubernetesBackendOptions {
  return {
    connection: { host: fake.url, bearerToken: fake.token, cacert: fake.pki!.caCert, qps: 100, burst: 100 },
    gatewayId,
    pod: {
      namespace: NS,
      generateName: 'airlock-',
      labels: { team: 'test' },
      annotations: { 'example.com/owner': 'tests' },
      spec: { containers: [{ name: 'shell', image: 'busybox:1.36', env: [{ name: 'FROM_TEMPLATE', value: 't' }] }] },
      consoleContainerNumber: 0,
    },
    mode: 'connection',
    idleCommand: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
    subsystems: { echo: '/bin/cat' },
    timeouts: { podStart: 10_000, podStop: 10_000, commandStart: 10_000, signal: 5_000, window: 5_000, http: 5_000 },
    logger: captureLogger().logger,
    ...overrides,
  };
}

function connectionInfo(overrides: Partial<ConnectionInfo> = {}): ConnectionInfo {
  return {
    connectionId: newConnectionId(),
    loginUsername: 'alice',
    username: 'alice',
    remoteAddress: '127.0.0.1:5555',
    clientVersion: 'SSH-2.0-test',
    metadata: {},
    environment: { FROM_CONNECTION: { value: 'k', sensitive: false } },
    files: {},
    ...overrides,
  };
}

function exec(command: string, extra: Partial<ProcessRequest> = {}): ProcessRequest {
  return { channelId: 0, kind: 'exec', command, env: {}, ...extra };
}

async function collect(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function finish(proc: Process, stdin?: string | Buffer): Promise<{ stdout: string; stderr: string; status: ExitStatus }> {
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  if (stdin !== undefined) proc.stdin.write(stdin);
  proc.stdin.end();
  const [o, e, status] = await Promise.all([out, err, proc.exited]);
  return { stdout: o.toString(), stderr: e.toString(), status };
}

async function waitForOutput(readable: Readable, pattern: RegExp): Promise<string> {
  let seen = '';
  for await (const chunk of readable.iterator({ destroyOnReturn: false })) {
    seen += (chunk as Buffer).toString();
    if (pattern.test(seen)) return seen;
  }
  throw new Error(`stream ended before ${pattern}: ${JSON.stringify(seen)}`);
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<AirlockError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAirlockError(err), `expected an AirlockError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

/** Pods of this test run that still exist and are not being deleted. */
function livePods(fake: FakeKubeApiServer): Json[] {
  return fake.pods(NS).filter((p) => !(p['metadata'] as Json)['deletionTimestamp']);
}

async function settled(fake: FakeKubeApiServer): Promise<void> {
  await Promise.all(fake.pods(NS).map((p) => fake.podGone(NS, String((p['metadata'] as Json)['name']))));
}

describe('Kubernetes backend (against the fake API server)', () => {
  let fake: FakeKubeApiServer;
  let backend: Backend;

  before(async () => {
    fake = await startFakeKubeApiServer({ namespaces: [NS], images: { 'nope:1': { pull: 'not-found' }, 'rooty:1': { user: '0' }, 'named:1': { user: 'app' } } });
    backend = createKubernetesBackend(options(fake));
  });

  afterEach(async () => {
    fake.setUnschedulable(undefined);
    await settled(fake);
    assert.deepEqual(fake.pods(NS), [], 'no pod may outlive its connection');
    assert.equal(await fake.liveProcesses(), 0, 'no process of a pod may survive it');
  });

  after(async () => {
    await backend?.close();
    await fake?.close();
  });

  it('connection mode: one pod with secure defaults, execs share it, close deletes it', async () => {
    const deadline = new Date(Date.now() + 3600_000);
    const info = connectionInfo({
      deadline,
      metadata: { PR: { value: '42', sensitive: false }, Title: { value: 'fix: a bug', sensitive: false }, SECRET: { value: 's3cret', sensitive: true } },
    });
    const conn = await backend.openConnection(info);
    const pods = fake.pods(NS);
    assert.equal(pods.length, 1);
    const pod = pods[0]!;
    const meta = pod['metadata'] as Json;
    const spec = pod['spec'] as Json;
    const labels = meta['labels'] as Record<string, string>;
    const annotations = meta['annotations'] as Record<string, string>;
    assert.equal(labels['airlock.managed'], 'true');
    assert.equal(labels['airlock.gateway'], gatewayId);
    assert.equal(labels['airlock.connection'], info.connectionId);
    assert.equal(labels['airlock.role'], 'connection');
    assert.equal(labels['team'], 'test');
    assert.equal(labels['airlock.meta.pr'], '42');
    assert.equal(labels['airlock.meta.title'], undefined, 'a value that is no valid label value is only an annotation');
    assert.equal(annotations['airlock.meta.title'], 'fix: a bug');
    assert.ok(!JSON.stringify(pod).includes('s3cret'), 'sensitive metadata never reaches the pod');
    assert.equal(annotations['airlock.user'], 'alice');
    assert.equal(annotations['airlock.deadline'], deadline.toISOString());
    assert.equal(annotations['example.com/owner'], 'tests');
    assert.equal(spec['restartPolicy'], 'Never');
    assert.equal(spec['automountServiceAccountToken'], false);
    const activeDeadline = Number(spec['activeDeadlineSeconds']);
    assert.ok(activeDeadline > 3600 && activeDeadline <= 3600 + 61, `activeDeadlineSeconds ${activeDeadline}`);
    assert.deepEqual((spec['securityContext'] as Json)['runAsNonRoot'], true);
    const container = (spec['containers'] as Json[])[0]!;
    assert.deepEqual(container['securityContext'], { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    assert.equal((pod['status'] as Json)['phase'], 'Running');

    const a = await finish(await conn.startProcess(exec('echo "$FROM_TEMPLATE $FROM_CONNECTION $FROM_REQUEST"; echo oops >&2; touch shared; exit 3', { env: { FROM_REQUEST: 'r w' } })));
    assert.deepEqual(a, { stdout: 't k r w\n', stderr: 'oops\n', status: { kind: 'code', code: 3 } });
    const b = await finish(await conn.startProcess(exec('ls shared')));
    assert.equal(b.stdout, 'shared\n', 'both execs see one file system');
    assert.equal(fake.pods(NS).length, 1, 'execs do not create pods');

    await conn.close('test');
    await conn.close('again'); // idempotent
    assert.deepEqual(livePods(fake), []);
  });

  it('stdin: every byte arrives and EOF (v5 close frame) ends the program', async () => {
    const conn = await backend.openConnection(connectionInfo());
    try {
      const input = Buffer.alloc(3 * 1024 * 1024 + 5, 'abc');
      const proc = await conn.startProcess(exec('cat'));
      const out = collect(proc.stdout);
      proc.stdin.end(input);
      const [data, status] = await Promise.all([out, proc.exited]);
      assert.equal(data.length, input.length);
      assert.ok(data.equals(input));
      assert.deepEqual(status, { kind: 'code', code: 0 });
    } finally {
      await conn.close('test');
    }
  });

  it('output: backpressure holds the stream while nobody reads, nothing is lost', async () => {
    const conn = await backend.openConnection(connectionInfo());
    try {
      const proc = await conn.startProcess(exec('head -c 20000000 /dev/zero'));
      proc.stdin.end();
      await new Promise((r) => setTimeout(r, 300));
      // Paused: the readable holds about one highWaterMark, not the whole output.
      assert.ok(proc.stdout.readableLength <= 1024 * 1024, `buffered ${proc.stdout.readableLength}`);
      const [data, status] = await Promise.all([collect(proc.stdout), proc.exited]);
      assert.equal(data.length, 20_000_000);
      assert.deepEqual(status, { kind: 'code', code: 0 });
    } finally {
      await conn.close('test');
    }
  });

  it('files: written before the first program, with modes', async () => {
    const scratch = await tempDir('kube-files-');
    await chmod(scratch.path, 0o1777);
    try {
      const dir = join(scratch.path, 'nested/dir');
      const conn = await backend.openConnection(
        connectionInfo({
          files: {
            [`${dir}/public.txt`]: { content: Buffer.from('hello\n'), sensitive: false },
            [`${dir}/secret.txt`]: { content: Buffer.from('s3cret\n'), sensitive: true },
            [`${dir}/empty`]: { content: Buffer.alloc(0), sensitive: false },
          },
        }),
      );
      try {
        const r = await finish(await conn.startProcess(exec(`cat ${dir}/public.txt ${dir}/secret.txt; stat -c %a ${dir}/public.txt ${dir}/secret.txt ${dir}/empty`)));
        assert.equal(r.stdout, 'hello\ns3cret\n644\n600\n644\n', r.stderr);
      } finally {
        await conn.close('test');
      }
    } finally {
      await scratch.cleanup();
    }
  });

  it('pty: TERM, initial size, resize, stderr merged', async () => {
    const conn = await backend.openConnection(connectionInfo());
    try {
      const proc = await conn.startProcess(
        exec('echo "TERM=$TERM SIZE=$(stty size)"; echo err >&2; read line; echo "NOW=$(stty size)"', { pty: { term: 'xterm-256color', cols: 100, rows: 30 } }),
      );
      const seen = await waitForOutput(proc.stdout, /SIZE=30 100/);
      assert.match(seen, /TERM=xterm-256color SIZE=30 100/);
      await proc.resize(120, 40);
      // Let the resize message reach the fake before the program looks again.
      await new Promise((r) => setTimeout(r, 200));
      proc.stdin.write('go\r');
      assert.match(await waitForOutput(proc.stdout, /NOW=\d+ \d+/), /NOW=40 120/);
      const rest = await finish(proc);
      assert.equal(rest.stderr, '', 'with a pty stderr is part of the terminal');
      assert.deepEqual(rest.status, { kind: 'code', code: 0 });
    } finally {
      await conn.close('test');
    }
  });

  it('signals: TERM is reported as exit-signal TERM; a trapped USR1 decides the code', async () => {
    const conn = await backend.openConnection(connectionInfo());
    try {
      const sleeper = await conn.startProcess(exec('echo ready; exec sleep 1000'));
      await waitForOutput(sleeper.stdout, /ready/);
      await sleeper.signal('TERM');
      assert.deepEqual((await finish(sleeper)).status, { kind: 'signal', signal: 'TERM', coreDumped: false });

      const trapper = await conn.startProcess(exec('trap "echo got-usr1; exit 4" USR1; echo ready; while :; do sleep 1; done'));
      await waitForOutput(trapper.stdout, /ready/);
      await trapper.signal('USR1');
      const r = await finish(trapper);
      assert.match(r.stdout, /got-usr1/);
      assert.deepEqual(r.status, { kind: 'code', code: 4 });

      const own = await finish(await conn.startProcess(exec('exit 143')));
      assert.deepEqual(own.status, { kind: 'code', code: 143 }, 'a code of 128+n without a delivered signal stays a code');

      const done = await conn.startProcess(exec('true'));
      await finish(done);
      await rejectsWith(done.signal('TERM'), 'SIGNAL_FAILED');
      await rejectsWith(done.signal('STOP'), 'SIGNAL_FAILED');
    } finally {
      await conn.close('test');
    }
  });

  it('kill() ends a program that ignores TERM; close() reports running programs as KILLed', async () => {
    const conn = await backend.openConnection(connectionInfo());
    const stubborn = await conn.startProcess(exec('trap "" TERM; echo ready; while :; do sleep 1; done'));
    await waitForOutput(stubborn.stdout, /ready/);
    await stubborn.kill();
    assert.deepEqual(await stubborn.exited, { kind: 'signal', signal: 'KILL', coreDumped: false });

    const running = await conn.startProcess(exec('echo ready; sleep 1000'));
    await waitForOutput(running.stdout, /ready/);
    running.stdout.resume();
    await conn.close('test');
    assert.deepEqual(await running.exited, { kind: 'signal', signal: 'KILL', coreDumped: false });
    await rejectsWith(conn.startProcess(exec('true')), 'EXEC_FAILED');
  });

  it('session mode: a pod per channel, deleted when its program ends', async () => {
    const session = createKubernetesBackend(options(fake, { mode: 'session' }));
    const conn = await session.openConnection(connectionInfo());
    try {
      assert.equal(fake.pods(NS).length, 0, 'no pod before the first channel');
      const a = await conn.startProcess(exec('echo a; exec sleep 1000', { channelId: 1 }));
      const b = await conn.startProcess(exec('echo b; exec sleep 1000', { channelId: 2 }));
      await waitForOutput(a.stdout, /a/);
      await waitForOutput(b.stdout, /b/);
      const roles = fake.pods(NS).map((p) => ((p['metadata'] as Json)['labels'] as Record<string, string>));
      assert.deepEqual(roles.map((l) => [l['airlock.role'], l['airlock.channel']]).sort(), [['session', '1'], ['session', '2']]);
      await a.signal('TERM');
      a.stdout.resume();
      await a.exited;
      await waitUntil(() => livePods(fake).length === 1);
      b.stdout.resume();
    } finally {
      await conn.close('test');
      await session.close();
    }
  });

  it('image pull failure: IMAGE_NOT_FOUND naming the image, pod deleted', async () => {
    const conn = backend.openConnection(connectionInfo({ image: 'nope:1' }));
    const err = await rejectsWith(conn, 'IMAGE_NOT_FOUND');
    assert.match(userLine(err), /the container image "docker\.io\/library\/nope:1" does not exist \[IMAGE_NOT_FOUND\]/);
    assert.match(err.message, /ErrImagePull/);
  });

  it('runAsNonRoot against a root or named-user image: CONTAINER_START_FAILED with the fix', async () => {
    for (const image of ['rooty:1', 'named:1']) {
      const err = await rejectsWith(backend.openConnection(connectionInfo({ image })), 'CONTAINER_START_FAILED');
      assert.match(err.message, /CreateContainerConfigError/);
      assert.match(err.message, /runAsUser/);
    }
    // The template can allow root explicitly (the image then runs as its own user).
    const rooted = createKubernetesBackend(
      options(fake, {
        pod: { ...options(fake).pod, spec: { securityContext: { runAsNonRoot: false }, containers: [{ name: 'shell', image: 'busybox:1.36' }] } },
      }),
    );
    const conn = await rooted.openConnection(connectionInfo({ image: 'rooty:1' }));
    try {
      const r = await finish(await conn.startProcess(exec('id -u')));
      assert.equal(r.stdout.trim(), process.getuid?.() === 0 ? '0' : String(process.getuid?.()));
    } finally {
      await conn.close('test');
    }
  });

  it('unschedulable: POD_UNSCHEDULABLE with the scheduler message after podStart', async () => {
    fake.setUnschedulable('0/3 nodes are available: 3 Insufficient cpu.');
    const quick = createKubernetesBackend(options(fake, { timeouts: { ...options(fake).timeouts, podStart: 1500 } }));
    const started = Date.now();
    const err = await rejectsWith(quick.openConnection(connectionInfo()), 'POD_UNSCHEDULABLE');
    assert.ok(Date.now() - started >= 1400);
    assert.match(err.message, /Insufficient cpu/);
  });

  it('an aborted open (client gone while the pod starts) deletes the pod', async () => {
    fake.setUnschedulable('waiting forever');
    const abort = new AbortController();
    const opening = backend.openConnection(connectionInfo(), abort.signal);
    await waitUntil(() => fake.pods(NS).length === 1);
    abort.abort();
    await assert.rejects(opening);
  });

  it('a pod deleted under a running program ends it (KILL-like status, no hang)', async () => {
    const conn = await backend.openConnection(connectionInfo());
    try {
      const proc = await conn.startProcess(exec('echo ready; sleep 1000'));
      await waitForOutput(proc.stdout, /ready/);
      proc.stdout.resume();
      const name = String((fake.pods(NS)[0]!['metadata'] as Json)['name']);
      await fake.kubeConfig().makeApiClient((await import('@kubernetes/client-node')).CoreV1Api).deleteNamespacedPod({ namespace: NS, name });
      const status = await proc.exited;
      // The runtime reports the killed exec as 137 (no signal was delivered by the gateway).
      assert.deepEqual(status, { kind: 'code', code: 137 });
    } finally {
      await conn.close('test');
    }
  });

  it('subsystems run the configured binary; unknown ones are POLICY_DENIED', async () => {
    const conn = await backend.openConnection(connectionInfo());
    try {
      const r = await finish(await conn.startProcess({ channelId: 0, kind: 'subsystem', command: 'echo', env: {} }), 'through\n');
      assert.equal(r.stdout, 'through\n');
      await rejectsWith(conn.startProcess({ channelId: 1, kind: 'subsystem', command: 'nope', env: {} }), 'POLICY_DENIED');
    } finally {
      await conn.close('test');
    }
  });
});

describe('Kubernetes backend: connection, credentials, protocol and errors', () => {
  it('ping and openConnection: unreachable → BACKEND_UNAVAILABLE, wrong token → BACKEND_FORBIDDEN, RBAC → BACKEND_FORBIDDEN', async () => {
    const fake = await startFakeKubeApiServer({ namespaces: [NS], authorize: (a) => !(a.verb === 'create' && a.resource === 'pods') });
    try {
      const down = createKubernetesBackend(options(fake, { connection: { host: 'https://127.0.0.1:1', bearerToken: 'x', cacert: fake.pki!.caCert, qps: 5, burst: 10 } }));
      await rejectsWith(down.ping(), 'BACKEND_UNAVAILABLE');
      const wrong = createKubernetesBackend(options(fake, { connection: { ...options(fake).connection, bearerToken: 'wrong' } }));
      const unauthorized = await rejectsWith(wrong.ping(), 'BACKEND_FORBIDDEN');
      assert.match(unauthorized.message, /401/);
      const ok = createKubernetesBackend(options(fake));
      await ok.ping();
      const forbidden = await rejectsWith(ok.openConnection(connectionInfo()), 'BACKEND_FORBIDDEN');
      assert.match(forbidden.message, /cannot create resource "pods"/);
      const untrusted = createKubernetesBackend(options(fake, { connection: { host: fake.url, bearerToken: fake.token, qps: 5, burst: 10 } }));
      await rejectsWith(untrusted.ping(), 'BACKEND_UNAVAILABLE');
    } finally {
      await fake.close();
    }
  });

  it('client certificate + CA file path, and bearerTokenFile', async () => {
    const fake = await startFakeKubeApiServer({ namespaces: [NS] });
    const dir = await tempDir('kube-creds-');
    try {
      const pki = fake.pki!;
      await writeFile(join(dir.path, 'ca.crt'), pki.caCert);
      await writeFile(join(dir.path, 'client.key'), pki.clientKey);
      await writeFile(join(dir.path, 'token'), fake.token);
      // PEM text for cert, a path for key and CA.
      const byCert = createKubernetesBackend(
        options(fake, { connection: { host: fake.url, cert: pki.clientCert, key: join(dir.path, 'client.key'), cacert: join(dir.path, 'ca.crt'), qps: 5, burst: 10 } }),
      );
      await byCert.ping();
      const byFile = createKubernetesBackend(options(fake, { connection: { host: fake.url, bearerTokenFile: join(dir.path, 'token'), cacert: pki.caCert, qps: 5, burst: 10 } }));
      const conn = await byFile.openConnection(connectionInfo());
      try {
        const r = await finish(await conn.startProcess(exec('echo via-token-file')));
        assert.equal(r.stdout, 'via-token-file\n');
      } finally {
        await conn.close('test');
      }
    } finally {
      await dir.cleanup();
      await fake.close();
    }
  });

  it('v4.channel.k8s.io (older API servers): files, output, exit codes and signals work without a stdin close', async () => {
    const fake = await startFakeKubeApiServer({ namespaces: [NS], protocols: ['v4.channel.k8s.io'] });
    const backend = createKubernetesBackend(options(fake));
    const scratch = await tempDir('kube-v4-');
    await chmod(scratch.path, 0o1777);
    try {
      const conn = await backend.openConnection(connectionInfo({ files: { [`${scratch.path}/d/f`]: { content: Buffer.from('via v4'), sensitive: false } } }));
      try {
        const file = await finish(await conn.startProcess(exec(`cat ${scratch.path}/d/f`)));
        assert.equal(file.stdout, 'via v4', 'files are written with head -c, no EOF needed');
        const r = await finish(await conn.startProcess(exec('echo out; echo err >&2; exit 5')));
        assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', status: { kind: 'code', code: 5 } });
        const reader = await conn.startProcess(exec('head -c 5'));
        reader.stdin.write('12345');
        reader.stdin.end();
        assert.equal((await collect(reader.stdout)).toString(), '12345');
        const sleeper = await conn.startProcess(exec('echo ready; exec sleep 1000'));
        await waitForOutput(sleeper.stdout, /ready/);
        await sleeper.signal('TERM');
        sleeper.stdout.resume();
        assert.deepEqual(await sleeper.exited, { kind: 'signal', signal: 'TERM', coreDumped: false });
      } finally {
        await conn.close('test');
      }
    } finally {
      await backend.close();
      await fake.close();
      await scratch.cleanup();
    }
  });

  it('the first decisive watch event wins (ErrImagePull, even when ImagePullBackOff follows in the same burst)', async () => {
    // No delay between lifecycle steps: the watch delivers ErrImagePull and ImagePullBackOff together.
    const fake = await startFakeKubeApiServer({ namespaces: [NS], stepDelayMs: 0, images: { 'nope:2': { pull: 'not-found' } } });
    try {
      const backend = createKubernetesBackend(options(fake));
      for (let i = 0; i < 5; i++) {
        const err = await rejectsWith(backend.openConnection(connectionInfo({ image: 'nope:2' })), 'IMAGE_NOT_FOUND');
        assert.match(err.message, /ErrImagePull/);
      }
      await settled(fake);
      assert.deepEqual(fake.pods(NS), []);
    } finally {
      await fake.close();
    }
  });

  it('qps/burst: API calls beyond the burst are spaced at qps', async () => {
    const fake = await startFakeKubeApiServer({ namespaces: [NS] });
    try {
      const slow = createKubernetesBackend(options(fake, { connection: { ...options(fake).connection, qps: 4, burst: 2 } }));
      const started = Date.now();
      await Promise.all([slow.ping(), slow.ping(), slow.ping(), slow.ping(), slow.ping(), slow.ping()]);
      // 2 at once, then 4 more at 4/s.
      assert.ok(Date.now() - started >= 900, `took ${Date.now() - started}ms`);
      const times = fake.requests.map((r) => r.at);
      assert.equal(times.length, 6);
      assert.ok(times[5]! - times[0]! >= 900);
    } finally {
      await fake.close();
    }
  });
});

describe('Kubernetes reaper', () => {
  it('deletes pods past their deadline, of gone connections and dead gateways; keeps the rest', async () => {
    const fake = await startFakeKubeApiServer({ namespaces: [NS] });
    const { logger, lines } = captureLogger();
    try {
      const core = fake.kubeConfig().makeApiClient((await import('@kubernetes/client-node')).CoreV1Api);
      const now = Date.now();
      const old = new Date(now - 3600_000).toISOString();
      const make = async (name: string, labels: Record<string, string>, annotations: Record<string, string>) => {
        await core.createNamespacedPod({
          namespace: NS,
          body: {
            metadata: { name, labels: { 'airlock.managed': 'true', ...labels }, annotations: { 'airlock.created-at': old, ...annotations } },
            spec: { containers: [{ name: 'shell', image: 'busybox' }], restartPolicy: 'Never' },
          },
        });
      };
      await make('past-deadline', { 'airlock.gateway': 'other', 'airlock.connection': 'c1' }, { 'airlock.deadline': new Date(now - 1000).toISOString() });
      await make('ours-gone', { 'airlock.gateway': gatewayId, 'airlock.connection': 'gone' }, {});
      await make('ours-live', { 'airlock.gateway': gatewayId, 'airlock.connection': 'live' }, {});
      await make('dead-gateway', { 'airlock.gateway': 'other', 'airlock.connection': 'c2' }, { 'airlock.gateway-host': 'gw-host', 'airlock.gateway-pid': '4242' });
      await make('restarted-gateway', { 'airlock.gateway': 'other', 'airlock.connection': 'c3' }, { 'airlock.gateway-host': 'gw-host', 'airlock.gateway-pid': '1' });
      await make('foreign-young', { 'airlock.gateway': 'other', 'airlock.connection': 'c4' }, { 'airlock.gateway-host': 'elsewhere', 'airlock.created-at': new Date(now).toISOString() });
      await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'not-ours' }, spec: { containers: [{ name: 'shell', image: 'busybox' }] } } });
      const reaper = createKubernetesReaper({
        connection: options(fake).connection,
        namespace: NS,
        gatewayId,
        liveConnections: () => ['live'],
        foreignMaxAgeMs: 86_400_000,
        logger,
        hostname: 'gw-host',
        pid: 1,
        isProcessAlive: (pid) => pid !== 4242,
      });
      assert.equal(await reaper.runOnce(), 4);
      const reasons = Object.fromEntries(lines.filter((l) => l.msg === 'reaped pod').map((l) => [l['pod'], l['reason']]));
      assert.deepEqual(reasons, {
        'past-deadline': 'deadline passed',
        'ours-gone': 'connection gone',
        'dead-gateway': 'gateway process gone',
        'restarted-gateway': 'gateway restarted',
      });
      await Promise.all(Object.keys(reasons).map((name) => fake.podGone(NS, name)));
      const left = fake.pods(NS).map((p) => String((p['metadata'] as Json)['name'])).sort();
      assert.deepEqual(left, ['foreign-young', 'not-ours', 'ours-live']);
      await reaper.stop();
    } finally {
      await fake.close();
    }
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
