/**
 * The warm pool (docker.pool): containers started ahead of time, claimed by a login, given the
 * connection's network, env and files at claim, removed after use, refilled in the background,
 * removed at shutdown, and never taken by the reaper while the gateway owns them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import Docker from 'dockerode';
import { createDockerBackend, createReaper, type DockerBackend, type DockerBackendOptions } from '../../src/backend/docker/index.js';
import { poolNetworkPlan } from '../../src/backend/docker/pool.js';
import type { ConnectionInfo } from '../../src/backend/backend.js';
import { assertNoGatewayLeaks, startGateway, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { assertNoLeakedContainers, ensureTestImage, inspectContainer, managedContainers, TEST_IMAGE } from '../helpers/docker.js';
import { keyFixture, type KeyFixture } from '../helpers/fixture.js';
import { ensurePodmanService, ensurePodmanTestImage, podmanContainers } from '../helpers/podman.js';
import { ssh } from '../helpers/ssh.js';
import { behaviours, startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';

const run = promisify(execFile);

/** Pool containers of one gateway: id → labels, running or not. */
async function poolContainers(gatewayId: string): Promise<Map<string, Record<string, string>>> {
  const ids = (await managedContainers({ gatewayId })).filter(Boolean);
  const out = new Map<string, Record<string, string>>();
  for (const id of ids) {
    const info = (await inspectContainer(id)) as { Config: { Labels: Record<string, string> } };
    if (info.Config.Labels['airlock.pool'] === 'true') out.set(id, info.Config.Labels);
  }
  return out;
}

const count = (gw: TestGateway, msg: string) => gw.logs.filter((l) => l.msg === msg).length;

/** The next launcher hand-over after `seen` earlier ones. */
async function launcherUse(gw: TestGateway, seen: number): Promise<LogLine> {
  const msg = 'program handed to a pool launcher';
  await gw.waitForLog(() => count(gw, msg) > seen);
  return gw.logs.filter((l) => l.msg === msg)[seen] as LogLine;
}

/** Waits until the pool holds `size` idle containers (ready − claimed, from the log). */
function poolFull(gw: TestGateway, size: number): Promise<LogLine> {
  return gw.waitForLog(() => count(gw, 'pool container ready') - count(gw, 'pool container claimed') >= size, 30_000);
}

describe('pool network plan', () => {
  it('joinable networks are attached at claim (Podman: detached once running first); host, container:… and none are used from the start', () => {
    assert.deepEqual(poolNetworkPlan(undefined), { createMode: 'none', detach: 'none', attach: 'bridge' });
    assert.deepEqual(poolNetworkPlan('default'), { createMode: 'none', detach: 'none', attach: 'bridge' });
    assert.deepEqual(poolNetworkPlan('ci-net'), { createMode: 'none', detach: 'none', attach: 'ci-net' });
    // Podman cannot connect a network to a container created with `none`.
    assert.deepEqual(poolNetworkPlan('bridge', 'podman'), { createMode: 'bridge', detach: 'bridge', attach: 'bridge' });
    assert.deepEqual(poolNetworkPlan('none', 'podman'), { createMode: 'none' });
    assert.deepEqual(poolNetworkPlan('none'), { createMode: 'none' });
    assert.deepEqual(poolNetworkPlan('host'), { createMode: 'host' });
    assert.deepEqual(poolNetworkPlan('container:abc'), { createMode: 'container:abc' });
  });
});

/**
 * Every byte a shell could trip over: quotes, backslashes, `$(...)`, a newline, a CR, a tab,
 * Ctrl-C (which a cooked terminal turns into SIGINT), DEL, and UTF-8. It travels through the
 * launcher's request (launcher.ts) as a quoted word.
 */
const TRICKY = `it's "quoted" \\ $(id) \`uname\` $HOME\nline2\r\ttab \x03 \x7f ü→ end`;

describe('warm pool through the gateway', () => {
  let fx: KeyFixture;
  let hook: WebhookServer;
  let gw: TestGateway;
  const SIZE = 2;

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    const greeting = Buffer.from('hello from the webhook\n').toString('base64');
    hook = await startWebhookServer(
      behaviours.acceptPublicKeys(
        { alice: [fx.alice.publicLine] },
        {
          environment: { BUILD_ID: { value: '42' }, TRICKY: { value: TRICKY } },
          files: { '/home/airlock/.greeting': { value: greeting } },
        },
      ),
    );
    gw = await startGateway({
      auth: { publicKey: { method: 'webhook', webhook: { url: hook.url } } },
      docker: { pool: { size: SIZE }, reaper: { interval: '1s' } },
      metrics: { enable: true, listen: '127.0.0.1:0' },
      log: { level: 'debug' },
    });
  });
  after(async () => {
    await gw?.stop();
    await hook?.close();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('keeps `size` idle containers: idle command, pool labels, no network, nothing of any user', async () => {
    await poolFull(gw, SIZE);
    const pool = await poolContainers(gw.gatewayId);
    assert.equal(pool.size, SIZE);
    for (const [id, labels] of pool) {
      assert.equal(labels['airlock.role'], 'pool');
      assert.equal(labels['airlock.gateway'], gw.gatewayId);
      assert.match(labels['airlock.connection'] ?? '', /^pool-[0-9a-f]{12}$/);
      assert.equal(labels['airlock.user'], '');
      const info = (await inspectContainer(id)) as {
        State: { Running: boolean };
        Config: { Env: string[] };
        NetworkSettings: { Networks: Record<string, unknown> };
      };
      assert.equal(info.State.Running, true);
      assert.deepEqual(Object.keys(info.NetworkSettings.Networks), [], 'an idle pool container has no network');
      assert.ok(!info.Config.Env.some((e) => e.startsWith('BUILD_ID=')));
    }
    // The pool gauge follows the pool itself (read at scrape time).
    const operator = await gw.waitForLog((l) => l.msg === 'operator listener started');
    const text = await (await fetch(`http://127.0.0.1:${Number(operator.metricsPort)}/metrics`)).text();
    assert.match(text, new RegExp(`^airlock_pool_ready_containers\\{image="${TEST_IMAGE}"\\} ${SIZE}$`, 'm'));
  });

  it('a login claims one: network, env and files applied at claim; removed after use; the pool refills', async () => {
    await poolFull(gw, SIZE);
    const before = await poolContainers(gw.gatewayId);
    const claimedBefore = count(gw, 'pool container claimed');
    const r = await ssh(gw, {
      user: 'alice',
      identity: fx.alice.path,
      command: 'echo "BUILD_ID=$BUILD_ID"; cat /home/airlock/.greeting; cat /etc/hostname; ip -4 -o addr show eth0 | wc -l',
    });
    assert.equal(r.code, 0, r.stderr);
    const [env, greeting, host, eth0] = r.stdout.toString().split('\n');
    assert.equal(env, 'BUILD_ID=42');
    assert.equal(greeting, 'hello from the webhook');
    assert.equal(eth0, '1', 'the claimed container got its network');
    const used = [...before.keys()].find((id) => id.startsWith(host ?? '-'));
    assert.ok(used, `the session ran in one of the pooled containers (hostname ${host})`);
    const claim = await gw.waitForLog((l) => l.msg === 'pool container claimed' && count(gw, 'pool container claimed') > claimedBefore);
    assert.equal(claim.containerId, used);
    const started = await gw.waitForLog((l) => l.msg === 'container started' && l.containerId === used);
    assert.equal(started.pooled, true);

    await gw.waitForIdle();
    await poolFull(gw, SIZE);
    const afterwards = await poolContainers(gw.gatewayId);
    assert.equal(afterwards.size, SIZE, 'refilled to size');
    assert.ok(!afterwards.has(used), 'the used container was removed, not returned to the pool');
  });

  it("a claim's first program starts in the pool's pre-started launcher: argv and env byte for byte, stdin intact, exit status", async () => {
    await poolFull(gw, SIZE);
    const handed = count(gw, 'program handed to a pool launcher');
    const input = randomBytes(256 * 1024);
    const r = await ssh(gw, {
      user: 'alice',
      identity: fx.alice.path,
      command: `printf '%s|' "$TRICKY" 'it'"'"'s' "a  b"; cat; exit 3`,
      input,
    });
    assert.equal(r.code, 3, r.stderr);
    const expected = Buffer.concat([Buffer.from(`${TRICKY}|it's|a  b|`), input]);
    assert.ok(r.stdout.equals(expected), `stdout differs: ${JSON.stringify(r.stdout.subarray(0, 120).toString())}`);
    const used = await launcherUse(gw, handed);
    assert.equal(used.tty, false);
  });

  it("with a terminal the launcher hands over a cooked terminal: TERM, echo, signals, the env's bytes", async () => {
    await poolFull(gw, SIZE);
    const handed = count(gw, 'program handed to a pool launcher');
    const r = await ssh(gw, {
      user: 'alice',
      identity: fx.alice.path,
      args: ['-tt'],
      command: 'echo "TERM=$TERM"; stty -a; printf %s "$TRICKY" | wc -c; exit 4',
    });
    assert.equal(r.code, 4, r.stderr);
    const out = r.stdout.toString();
    assert.doesNotMatch(out, /airlock-(pid|end|launcher)/, 'nothing of the launcher reaches the user');
    assert.match(out, /^TERM=\S+\r?$/m, 'the pty request\'s TERM is exported');
    // The raw mode the request crossed the pty in is gone again.
    for (const setting of ['icanon', 'isig', 'echo', 'opost', 'icrnl']) assert.match(out, new RegExp(`(^|\\s)${setting}(\\s|$)`, 'm'), `${setting} is on`);
    assert.match(out, new RegExp(`^${Buffer.byteLength(TRICKY)}\\r?$`, 'm'), 'the env value arrived whole');
    const used = await launcherUse(gw, handed);
    assert.equal(used.tty, true);
  });

  it("the gateway's reaper leaves its pool alone (while it removes an orphan of the same gateway)", async () => {
    await poolFull(gw, SIZE);
    const pool = await poolContainers(gw.gatewayId);
    // The reaper spares anything younger than 10 s: wait (on the clock — there is no event)
    // until the pool containers are older than that, so only ownership can protect them.
    const newest = Math.max(...[...pool.values()].map((l) => Date.parse(l['airlock.created-at'] ?? '')));
    const wait = newest + 10_500 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // A decoy "ours, connection gone" container: once it is reaped, a sweep has run that saw
    // the pool containers past their minimum age.
    const { stdout } = await run('docker', [
      'create',
      '--label', 'airlock.managed=true',
      '--label', `airlock.gateway=${gw.gatewayId}`,
      '--label', 'airlock.connection=gone',
      '--label', `airlock.created-at=${new Date(Date.now() - 60_000).toISOString()}`,
      TEST_IMAGE, 'true',
    ]);
    const decoy = stdout.trim();
    await gw.waitForLog((l) => l.msg === 'reaped container' && l.containerId === decoy, 30_000);
    const still = await poolContainers(gw.gatewayId);
    for (const id of pool.keys()) assert.ok(still.has(id), `pool container ${id.slice(0, 12)} survived the sweep`);
    assert.ok(!gw.logs.some((l) => l.msg === 'reaped container' && pool.has(String(l.containerId))));
  });

  it('every container the pool started is gone after shutdown', async () => {
    await poolFull(gw, SIZE);
    assert.equal((await poolContainers(gw.gatewayId)).size, SIZE);
    const code = await gw.stop();
    assert.equal(code, 0);
    assert.deepEqual(await managedContainers({ gatewayId: gw.gatewayId }), []);
    assert.ok(gw.logs.some((l) => l.msg === 'pool closed' && l.removed === SIZE));
  });
});

/** A pino logger whose lines tests can wait for. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      for (const w of waiters) w();
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  const waitFor = (predicate: () => boolean, timeoutMs = 30_000): Promise<void> =>
    new Promise((resolve, reject) => {
      if (predicate()) return resolve();
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`condition not met; log: ${JSON.stringify(lines.slice(-5))}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });
  const n = (msg: string) => lines.filter((l) => l.msg === msg).length;
  return { logger, lines, waitFor, n };
}

function info(connectionId: string): ConnectionInfo {
  return {
    connectionId,
    loginUsername: 'alice',
    username: 'alice',
    remoteAddress: '127.0.0.1:1',
    clientVersion: 'SSH-2.0-test',
    metadata: {},
    environment: {},
    files: {},
  };
}

describe('warm pool and the reaper (in-process backend)', () => {
  const gatewayId = `pooltest${process.pid}`;
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  let backend: DockerBackend | undefined;
  const log = capturingLogger();

  function options(): DockerBackendOptions {
    return {
      host: 'unix:///var/run/docker.sock',
      gatewayId,
      container: { image: TEST_IMAGE, env: {}, labels: {}, extra: {} },
      hostConfig: { extra: {} },
      mode: 'connection',
      idleCommand: ['/bin/sh', '-c', 'while :; do sleep 3600; done'],
      subsystems: {},
      imagePullPolicy: 'Never',
      timeouts: { containerStart: 30_000, containerStop: 10_000, commandStart: 30_000, signal: 5_000, window: 5_000, http: 10_000 },
      pool: { size: 1 },
      logger: log.logger,
    };
  }
  const idle = () => log.n('pool container ready') - log.n('pool container claimed');

  before(async () => {
    await ensureTestImage();
    backend = createDockerBackend(options());
  });
  after(async () => {
    await backend?.close();
    await assertNoLeakedContainers([], { gatewayId });
  });

  it('the reaper keeps idle and claimed pool containers, and takes them once the pool lets go', async () => {
    await log.waitFor(() => idle() >= 1);
    const live = () => backend!.poolOwnerIds();
    // minAgeMs 0: only ownership protects the containers here.
    const reaper = createReaper({ docker, gatewayId, liveConnections: live, foreignMaxAgeMs: 3_600_000, minAgeMs: 0, logger: log.logger });
    assert.equal(await reaper.runOnce(), 0, 'an idle pool container is live');
    const [idleId] = await managedContainers({ gatewayId });
    assert.ok(idleId);

    const conn = await backend!.openConnection(info('c1'));
    assert.equal(backend!.poolStatus()?.size, 1);
    assert.equal(await reaper.runOnce(), 0, 'a claimed pool container is live while its connection holds it');
    assert.ok((await managedContainers({ gatewayId })).includes(idleId), 'the claimed container is still there');
    await conn.close('test done');
    assert.ok(!(await managedContainers({ gatewayId })).includes(idleId), 'removed with its connection');
    assert.ok(!backend!.poolOwnerIds().some((k) => k === 'c1'));

    // Control: a reaper that is not told about the pool removes the (refilled) idle container,
    // so the assertions above could have failed.
    await log.waitFor(() => idle() >= 1);
    const blind = createReaper({ docker, gatewayId, liveConnections: () => [], foreignMaxAgeMs: 3_600_000, minAgeMs: 0, logger: log.logger });
    assert.equal(await blind.runOnce(), 1);
    await reaper.stop();
    await blind.stop();
  });

  it('a pool container that died is not handed out: the login gets a fresh container', async () => {
    await log.waitFor(() => idle() >= 1);
    for (const id of await managedContainers({ gatewayId })) await run('docker', ['rm', '-f', id]);
    const conn = await backend!.openConnection(info('c2'));
    try {
      const proc = await conn.startProcess({ channelId: 0, kind: 'exec', command: 'echo alive', env: {} });
      proc.stdin.end();
      const chunks: Buffer[] = [];
      proc.stdout.on('data', (d: Buffer) => chunks.push(d));
      proc.stderr.resume();
      assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
      assert.equal(Buffer.concat(chunks).toString(), 'alive\n');
      assert.ok(log.lines.some((l) => l.msg === 'pool container could not be used; starting a fresh one'));
    } finally {
      await conn.close('test done');
    }
  });

  it('env and files (also on a tmpfs, written by exec) are applied at claim', async () => {
    const tmpfsLog = capturingLogger();
    const withTmpfs = createDockerBackend({ ...options(), gatewayId: `${gatewayId}t`, hostConfig: { tmpfs: { '/scratch': 'rw,size=1m,mode=1777' }, extra: {} }, logger: tmpfsLog.logger });
    try {
      await tmpfsLog.waitFor(() => tmpfsLog.n('pool container ready') >= 1);
      const conn = await withTmpfs.openConnection({
        ...info('c3'),
        environment: { FOO: { value: 'bar', sensitive: false } },
        files: {
          '/scratch/token': { content: Buffer.from('t0k3n'), sensitive: true },
          '/home/airlock/notes/readme': { content: Buffer.from('read me'), sensitive: false },
        },
      });
      try {
        const proc = await conn.startProcess({ channelId: 0, kind: 'exec', command: 'echo "$FOO"; cat /scratch/token; echo; stat -c %a /scratch/token; cat /home/airlock/notes/readme', env: {} });
        proc.stdin.end();
        const chunks: Buffer[] = [];
        proc.stdout.on('data', (d: Buffer) => chunks.push(d));
        proc.stderr.resume();
        assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
        assert.equal(Buffer.concat(chunks).toString(), 'bar\nt0k3n\n600\nread me');
        assert.ok(tmpfsLog.lines.some((l) => l.msg === 'container started' && l.connectionId === 'c3' && l.pooled === true), 'served from the pool');
      } finally {
        await conn.close('test done');
      }
    } finally {
      await withTmpfs.close();
      await assertNoLeakedContainers([], { gatewayId: `${gatewayId}t` });
    }
  });

  it('close() removes the idle containers and leaves nothing behind', async () => {
    await log.waitFor(() => idle() >= 1);
    assert.ok((await managedContainers({ gatewayId })).length >= 1);
    await backend!.close();
    backend = undefined;
    assert.deepEqual(await managedContainers({ gatewayId }), []);
  });
});

describe('warm pool on Podman (Docker-compatible API)', () => {
  let fx: KeyFixture;
  let gw: TestGateway;

  before(async () => {
    await ensurePodmanService();
    await ensurePodmanTestImage();
    fx = await keyFixture();
    gw = await startGateway({
      auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: fx.authorizedKeys } },
      backend: 'podman',
      docker: { pool: { size: 1 } },
      log: { level: 'debug' },
    });
  });
  after(async () => {
    await gw?.stop();
    await fx?.cleanup();
    assert.deepEqual(await podmanContainers(`airlock.gateway=${gw.gatewayId}`), [], 'nothing of this gateway left on Podman');
  });

  it('fills (idle with no network) and a login claims its container: network at claim, first program through a launcher', async () => {
    await poolFull(gw, 1);
    assert.ok(!gw.logs.some((l) => l.msg === 'pool container could not be started; connections start fresh containers meanwhile'), 'every pool container started');
    const [idle] = await podmanContainers(`airlock.gateway=${gw.gatewayId}`);
    const { stdout } = await run('podman', ['inspect', String(idle)]);
    const [info] = JSON.parse(stdout) as Array<{ NetworkSettings: { Networks?: Record<string, unknown> } }>;
    assert.deepEqual(Object.keys(info?.NetworkSettings.Networks ?? {}), [], 'an idle pool container has no network');
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'ip -4 -o addr | grep -vc " lo "' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), '1', 'one interface besides lo: the network connected at claim');
    await gw.waitForLog((l) => l.msg === 'pool container claimed');
    await launcherUse(gw, 0);
  });
});
