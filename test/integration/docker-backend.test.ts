/**
 * The Docker backend through its own API (Backend → BackendConnection → Process) against the
 * real dockerd, in both modes. The SSH-level behaviour is tested in gateway-*.test.ts.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import type { Backend, BackendConnection, ConnectionInfo, ExitStatus, Process, ProcessRequest } from '../../src/backend/backend.js';
import { createDockerBackend, type DockerBackendOptions } from '../../src/backend/docker/index.js';
import { AirlockError, isAirlockError, type ErrorCode } from '../../src/core/errors.js';
import { newConnectionId, newGatewayId } from '../../src/core/ids.js';
import { assertNoLeakedContainers, ensureTestImage, inspectContainer, managedContainers, TEST_IMAGE, TEST_IMAGE_NOUSER } from '../helpers/docker.js';

const run = promisify(execFile);

type Mode = 'connection' | 'session';

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

const gatewayId = `test-${newGatewayId()}`;

function backendOptions(mode: Mode, overrides: Partial<DockerBackendOptions> = {}): DockerBackendOptions {
  return {
    host: 'unix:///var/run/docker.sock',
    gatewayId,
    container: { image: TEST_IMAGE, env: { FROM_CONTAINER: 'c', SHARED: 'container' }, labels: { team: 'test' }, extra: {} },
    hostConfig: { extra: {} },
    mode,
    idleCommand: ['/bin/sh', '-c', 'while :; do sleep 3600; done'],
    subsystems: { echo: '/bin/cat' },
    imagePullPolicy: 'Never',
    timeouts: { containerStart: 30_000, containerStop: 10_000, commandStart: 30_000, signal: 5_000, window: 5_000, http: 10_000 },
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
    environment: { FROM_CONNECTION: { value: 'k', sensitive: false }, SHARED: { value: 'connection', sensitive: false } },
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

interface Outcome {
  stdout: string;
  stderr: string;
  status: ExitStatus;
  raw: Buffer;
}

/** Runs a process to its end; stdin is ended at once unless `keepStdin`. */
async function finish(proc: Process, options: { stdin?: Buffer | string; keepStdin?: boolean } = {}): Promise<Outcome> {
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  if (options.stdin !== undefined) proc.stdin.write(options.stdin);
  if (!options.keepStdin) proc.stdin.end();
  const [raw, errBuf, status] = await Promise.all([out, err, proc.exited]);
  return { stdout: raw.toString(), stderr: errBuf.toString(), status, raw };
}

/** Reads stdout until `pattern` matches what has arrived so far (the stream stays usable). */
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

describe('Docker backend', () => {
  let baseline: string[];
  const backends: Backend[] = [];
  const connections: BackendConnection[] = [];

  function backend(mode: Mode, overrides: Partial<DockerBackendOptions> = {}): Backend {
    const b = createDockerBackend(backendOptions(mode, overrides));
    backends.push(b);
    return b;
  }

  async function open(mode: Mode, info: Partial<ConnectionInfo> = {}, overrides: Partial<DockerBackendOptions> = {}): Promise<BackendConnection> {
    const conn = await backend(mode, overrides).openConnection(connectionInfo(info));
    connections.push(conn);
    return conn;
  }

  before(async () => {
    await ensureTestImage();
    await ensureTestImage('nouser');
  });
  beforeEach(async () => {
    baseline = await managedContainers({ gatewayId });
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((c) => c.close('test end')));
    await Promise.all(backends.splice(0).map((b) => b.close()));
    // Only this file's gateway id: other suites may share the dockerd.
    await assertNoLeakedContainers(baseline, { gatewayId });
  });

  for (const mode of ['connection', 'session'] as const) {
    describe(`${mode} mode`, () => {
      it('runs a command: stdout, stderr kept apart without a pty, exit code 7', async () => {
        const conn = await open(mode);
        const r = await finish(await conn.startProcess(exec('echo out; echo err >&2; exit 7')));
        assert.equal(r.stdout, 'out\n');
        assert.equal(r.stderr, 'err\n');
        assert.deepEqual(r.status, { kind: 'code', code: 7 });
      });

      it('runs several processes of one connection, concurrently', async () => {
        const conn = await open(mode);
        const results = await Promise.all([1, 2, 3].map(async (n) => finish(await conn.startProcess(exec(`echo ${n}; exit ${n}`, { channelId: n })))));
        assert.deepEqual(results.map((r) => [r.stdout, r.status]), [1, 2, 3].map((n) => [`${n}\n`, { kind: 'code', code: n }]));
      });

      it('with a pty: the requested size, TERM, a resize that takes effect, merged output', async () => {
        const conn = await open(mode);
        const proc = await conn.startProcess(
          exec('echo "term=$TERM"; stty size; echo err >&2; IFS= read -r _; stty size', { pty: { term: 'xterm-256color', cols: 111, rows: 33 } }),
        );
        const stderr = collect(proc.stderr);
        const first = await waitForOutput(proc.stdout, /err\r\n/);
        assert.equal(first, 'term=xterm-256color\r\n33 111\r\nerr\r\n', 'stderr arrives on the terminal');
        await proc.resize(100, 40);
        proc.stdin.write('\n');
        // With a pty, EOF is not forwarded (as in OpenSSH): the output must keep flowing.
        proc.stdin.end();
        const rest = await waitForOutput(proc.stdout, /40 100\r\n/);
        assert.equal(rest, '\r\n40 100\r\n', 'the echoed newline, then the new size');
        assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
        assert.equal((await stderr).length, 0, 'stderr stream is empty with a pty');
      });

      it('stdin EOF reaches the program while its output keeps flowing', async () => {
        const conn = await open(mode);
        const proc = await conn.startProcess(exec('cat; echo "after eof"'));
        const data = Buffer.alloc(200_000, 'x');
        const r = await finish(proc, { stdin: data });
        assert.deepEqual(r.status, { kind: 'code', code: 0 });
        assert.equal(r.stdout, `${data.toString()}after eof\n`);
      });

      it('environment: container, then connection, then request (later wins)', async () => {
        const conn = await open(mode);
        const r = await finish(
          await conn.startProcess(exec('echo "$FROM_CONTAINER $FROM_CONNECTION $FROM_REQUEST $SHARED"', { env: { FROM_REQUEST: 'r', SHARED: 'request' } })),
        );
        assert.equal(r.stdout, 'c k r request\n');
        const r2 = await finish(await conn.startProcess(exec('echo "$SHARED"')));
        assert.equal(r2.stdout, 'connection\n');
      });

      it('a TERM signal ends `sleep 100` and the exit status says TERM', async () => {
        const conn = await open(mode);
        for (const pty of [undefined, { term: 'xterm', cols: 80, rows: 24 }]) {
          const proc = await conn.startProcess(exec('echo ready; exec sleep 100', pty ? { pty } : {}));
          const stdout = waitForOutput(proc.stdout, /ready/);
          proc.stderr.resume();
          await stdout;
          proc.stdout.resume();
          await proc.signal('TERM');
          assert.deepEqual(await proc.exited, { kind: 'signal', signal: 'TERM', coreDumped: false }, `pty: ${pty !== undefined}`);
        }
      });

      it('refuses signal names outside the RFC 4254 list', async () => {
        const conn = await open(mode);
        const proc = await conn.startProcess(exec('echo ready; exec sleep 100'));
        proc.stderr.resume();
        await waitForOutput(proc.stdout, /ready/);
        proc.stdout.resume();
        await rejectsWith(proc.signal('STOP; rm -rf /'), 'SIGNAL_FAILED');
        await proc.kill();
        assert.deepEqual(await proc.exited, { kind: 'signal', signal: 'KILL', coreDumped: false });
      });

      it('kill() ends a running program and reports KILL', async () => {
        const conn = await open(mode);
        const proc = await conn.startProcess(exec('echo ready; sleep 100; echo never'));
        proc.stderr.resume();
        await waitForOutput(proc.stdout, /ready/);
        proc.stdout.resume();
        await proc.kill();
        await proc.kill(); // idempotent
        assert.deepEqual(await proc.exited, { kind: 'signal', signal: 'KILL', coreDumped: false });
      });

      it('writes the connection files (content, mode, owner, parent dirs) before the first command', async () => {
        const conn = await open(mode, {
          files: {
            '/home/airlock/.config/airlock/token': { content: Buffer.from('s3cret\n'), sensitive: true },
            '/home/airlock/notes.txt': { content: Buffer.from([0, 1, 2, 255]), sensitive: false },
          },
        });
        const r = await finish(
          await conn.startProcess(
            exec('stat -c "%a %u:%g %n" .config .config/airlock .config/airlock/token notes.txt /home/airlock; cat .config/airlock/token; od -An -tx1 notes.txt'),
          ),
        );
        assert.equal(r.stderr, '');
        assert.equal(
          r.stdout,
          [
            '755 1000:1000 .config',
            '755 1000:1000 .config/airlock',
            '600 1000:1000 .config/airlock/token',
            '644 1000:1000 notes.txt',
            '755 1000:1000 /home/airlock',
            's3cret',
            ' 00 01 02 ff',
            '',
          ].join('\n'),
        );
      });

      it('read-only root fs: files on a tmpfs /tmp are written after start, before the program', async () => {
        const conn = await open(
          mode,
          { files: { '/tmp/airlock/cred': { content: Buffer.from('on tmpfs'), sensitive: true } } },
          { hostConfig: { readonlyRootfs: true, tmpfs: { '/tmp': 'mode=1777' }, extra: {} } },
        );
        for (const pty of [undefined, { term: 'xterm', cols: 80, rows: 24 }]) {
          const r = await finish(
            await conn.startProcess(exec('cat /tmp/airlock/cred; echo; stat -c "%a %U" /tmp/airlock/cred; touch /home/airlock/x 2>/dev/null || echo read-only', pty ? { pty } : {})),
            { keepStdin: pty !== undefined },
          );
          const text = r.stdout.replace(/\r\n/g, '\n');
          assert.equal(text, 'on tmpfs\n600 airlock\nread-only\n', `pty: ${pty !== undefined}`);
          assert.deepEqual(r.status, { kind: 'code', code: 0 });
        }
      });

      it('read-only root fs: a file outside any tmpfs fails with CONTAINER_FILES_FAILED and leaves nothing', async () => {
        const options = { hostConfig: { readonlyRootfs: true, extra: {} } };
        const info = { files: { '/home/airlock/x': { content: Buffer.from('x'), sensitive: false } } };
        if (mode === 'connection') {
          await rejectsWith(backend(mode, options).openConnection(connectionInfo(info)), 'CONTAINER_FILES_FAILED');
        } else {
          const conn = await open(mode, info, options);
          await rejectsWith(conn.startProcess(exec('true')), 'CONTAINER_FILES_FAILED');
        }
      });

      it('1 MiB of binary output arrives intact', async () => {
        const conn = await open(mode);
        const r = await finish(await conn.startProcess(exec('head -c 1048576 /dev/urandom > /tmp/r && sha256sum /tmp/r >&2 && cat /tmp/r')));
        assert.equal(r.raw.length, 1048576);
        assert.equal(r.stderr.split(' ')[0], createHash('sha256').update(r.raw).digest('hex'));
      });

      it('detects the user: the image USER, else the first uid ≥ 1000 of /etc/passwd; the configured user wins', async () => {
        const withUser = await open(mode);
        assert.equal((await finish(await withUser.startProcess(exec('id -un')))).stdout, 'airlock\n');
        // The nouser image has ENTRYPOINT /bin/false: running at all proves it is overridden.
        const noUser = await open(mode, {}, { container: { image: TEST_IMAGE_NOUSER, env: {}, labels: {}, extra: {} } });
        assert.equal((await finish(await noUser.startProcess(exec('id -un')))).stdout, 'airlock\n');
        const configured = await open(mode, {}, { container: { image: TEST_IMAGE_NOUSER, user: 'nobody', env: {}, labels: {}, extra: {} } });
        assert.equal((await finish(await configured.startProcess(exec('id -un')))).stdout, 'nobody\n');
      });

      it('uses the image chosen at authentication (ConnectionInfo.image) instead of the configured one', async () => {
        const info = connectionInfo({ image: TEST_IMAGE_NOUSER });
        const conn = await backend(mode, { container: { image: 'airlock-test:configured-but-missing', env: {}, labels: {}, extra: {} } }).openConnection(info);
        connections.push(conn);
        const proc = await conn.startProcess(exec('echo ready; sleep 100'));
        proc.stderr.resume();
        await waitForOutput(proc.stdout, /ready/);
        proc.stdout.resume();
        const [id] = await managedContainers({ connectionId: info.connectionId });
        assert.ok(id);
        assert.equal(((await inspectContainer(id)) as { Config: { Image: string } }).Config.Image, TEST_IMAGE_NOUSER);
        await proc.kill();
      });

      it('a user missing from the image fails with CONTAINER_START_FAILED and leaves no container', async () => {
        const options = { container: { image: TEST_IMAGE, user: 'nosuchuser', env: {}, labels: {}, extra: {} } };
        if (mode === 'connection') {
          await rejectsWith(backend(mode, options).openConnection(connectionInfo()), 'CONTAINER_START_FAILED');
        } else {
          const conn = await open(mode, {}, options);
          await rejectsWith(conn.startProcess(exec('true')), 'CONTAINER_START_FAILED');
        }
      });

      it('runs configured subsystems and refuses unknown ones', async () => {
        const conn = await open(mode);
        const r = await finish(await conn.startProcess({ channelId: 1, kind: 'subsystem', command: 'echo', env: {} }), { stdin: 'ping' });
        assert.equal(r.stdout, 'ping');
        await rejectsWith(conn.startProcess({ channelId: 2, kind: 'subsystem', command: 'nope', env: {} }), 'POLICY_DENIED');
      });

      it('runs the shell (sh, busybox has no bash) for `shell` requests', async () => {
        const conn = await open(mode);
        const r = await finish(await conn.startProcess({ channelId: 0, kind: 'shell', command: '', env: {} }), { stdin: 'echo "shell $0"; exit 3\n' });
        assert.equal(r.stdout, 'shell /bin/sh\n');
        assert.deepEqual(r.status, { kind: 'code', code: 3 });
      });

      it('close() while startProcess is in flight leaves no container, at any moment', async () => {
        for (const delayMs of [0, 1, 5, 20, 60, 150]) {
          const info = connectionInfo();
          const conn = await backend(mode).openConnection(info);
          const started = conn.startProcess(exec('echo hi; sleep 100'));
          started.catch(() => undefined);
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          await Promise.all([conn.close('racing'), conn.close('twice')]);
          // Either startProcess lost the race (a coded error) or it won and its process ended with
          // the container (KILL, or 126 when the exec could not start in a dying container).
          const outcome = await started.then(
            async (proc) => JSON.stringify(await proc.exited),
            (err: unknown) => (isAirlockError(err) ? err.code : String(err)),
          );
          assert.match(outcome, /^(EXEC_FAILED|CONTAINER_START_FAILED|\{"kind":"signal","signal":"KILL".*|\{"kind":"code","code":126\})$/, `delay ${delayMs}`);
          assert.deepEqual(await managedContainers({ connectionId: info.connectionId }), [], `delay ${delayMs}`);
          await rejectsWith(conn.startProcess(exec('true')), 'EXEC_FAILED');
        }
      });

      it('close() kills running programs (exit status KILL) and removes the containers', async () => {
        const info = connectionInfo();
        const conn = await backend(mode).openConnection(info);
        const proc = await conn.startProcess(exec('echo ready; sleep 100'));
        proc.stderr.resume();
        await waitForOutput(proc.stdout, /ready/);
        proc.stdout.resume();
        assert.ok((await managedContainers({ connectionId: info.connectionId })).length >= 1);
        await conn.close('bye');
        assert.deepEqual(await proc.exited, { kind: 'signal', signal: 'KILL', coreDumped: false });
        assert.deepEqual(await managedContainers({ connectionId: info.connectionId }), []);
      });

      it('creates containers with the secure defaults and the airlock labels', async () => {
        const info = connectionInfo({
          deadline: new Date(Date.now() + 3_600_000),
          metadata: { pr_number: { value: '42', sensitive: false }, api_token: { value: 'secret', sensitive: true } },
        });
        const conn = await backend(mode).openConnection(info);
        connections.push(conn);
        const proc = await conn.startProcess(exec('echo ready; sleep 100'));
        proc.stderr.resume();
        await waitForOutput(proc.stdout, /ready/);
        proc.stdout.resume();
        const [id] = await managedContainers({ connectionId: info.connectionId });
        assert.ok(id);
        const c = (await inspectContainer(id)) as {
          Name: string;
          HostConfig: Record<string, unknown>;
          Config: { Labels: Record<string, string>; User: string; Entrypoint: string[] };
        };
        assert.deepEqual(c.HostConfig['CapDrop'], ['ALL']);
        assert.deepEqual(c.HostConfig['SecurityOpt'], ['no-new-privileges']);
        assert.equal(c.HostConfig['PidsLimit'], 512);
        assert.equal(c.HostConfig['Memory'], 1024 ** 3);
        assert.equal(c.HostConfig['NanoCpus'], 1e9);
        assert.equal(c.HostConfig['Init'], true);
        assert.equal(c.HostConfig['AutoRemove'], false);
        assert.deepEqual(c.HostConfig['LogConfig'], { Type: 'none', Config: {} });
        assert.equal(c.Config.User, 'airlock');
        assert.match(c.Name, new RegExp(`^/airlock-${info.connectionId.slice(0, 12)}-[0-9a-f]{8}$`));
        const labels = c.Config.Labels;
        assert.equal(labels['airlock.managed'], 'true');
        assert.equal(labels['airlock.gateway'], gatewayId);
        assert.equal(labels['airlock.gateway-pid'], String(process.pid));
        assert.equal(labels['airlock.connection'], info.connectionId);
        assert.equal(labels['airlock.user'], 'alice');
        assert.equal(labels['airlock.deadline'], info.deadline!.toISOString());
        assert.ok(Math.abs(Date.parse(labels['airlock.created-at'] ?? '') - Date.now()) < 60_000);
        assert.equal(labels['team'], 'test');
        assert.equal(labels['airlock.meta.pr_number'], '42');
        assert.ok(!JSON.stringify(labels).includes('secret'), 'sensitive metadata never becomes a label');
        // connection: the idle command; session: the program (exec → /bin/sh -c) — never the image's.
        assert.deepEqual(c.Config.Entrypoint.slice(0, 2), ['/bin/sh', '-c']);
        await proc.kill();
      });
    });
  }

  describe('engine and image failures', () => {
    it('Never: a missing image fails with IMAGE_NOT_FOUND naming the image', async () => {
      const err = await rejectsWith(
        backend('connection', { container: { image: 'airlock-test:does-not-exist', env: {}, labels: {}, extra: {} } }).openConnection(connectionInfo()),
        'IMAGE_NOT_FOUND',
      );
      assert.match(err.userMessage, /airlock-test:does-not-exist/);
    });

    it('IfNotPresent and Always: the pull fails (no registry here) with a clear code and message', async () => {
      for (const [policy, image] of [
        ['IfNotPresent', 'airlock-test/does-not-exist:1'],
        ['Always', TEST_IMAGE],
      ] as const) {
        const b = backend('session', { imagePullPolicy: policy, container: { image, env: {}, labels: {}, extra: {} } });
        try {
          await b.openConnection(connectionInfo());
          assert.fail(`${policy} should fail`);
        } catch (err) {
          assert.ok(isAirlockError(err));
          assert.ok(['IMAGE_PULL_FAILED', 'IMAGE_NOT_FOUND'].includes(err.code), `${policy}: ${err.code} ${err.message}`);
          assert.ok(err.userMessage.includes(image), err.userMessage);
        }
      }
    });

    it('an unreachable engine fails with BACKEND_UNAVAILABLE and creates nothing', async () => {
      const b = backend('connection', { host: 'unix:///nonexistent.sock' });
      await rejectsWith(b.ping(), 'BACKEND_UNAVAILABLE');
      await rejectsWith(b.openConnection(connectionInfo()), 'BACKEND_UNAVAILABLE');
      const tcp = backend('session', { host: 'tcp://127.0.0.1:1' });
      await rejectsWith(tcp.openConnection(connectionInfo()), 'BACKEND_UNAVAILABLE');
    });

    it('ping() answers when the engine is up', async () => {
      await backend('connection').ping();
    });

    it('a bad idle command fails with CONTAINER_START_FAILED and the container is removed', async () => {
      // Without docker-init the Engine refuses to start it.
      await rejectsWith(
        backend('connection', { idleCommand: ['/nonexistent'], hostConfig: { extra: { init: false } } }).openConnection(connectionInfo()),
        'CONTAINER_START_FAILED',
      );
      // With docker-init (the default) it "starts" and exits at once: open says so when the exit
      // was quick enough, otherwise the first exec after it does.
      const info = connectionInfo();
      let conn: BackendConnection;
      try {
        conn = await backend('connection', { idleCommand: ['/nonexistent'] }).openConnection(info);
      } catch (err) {
        assert.ok(isAirlockError(err) && err.code === 'CONTAINER_START_FAILED', String(err));
        return;
      }
      connections.push(conn);
      const [id] = await managedContainers({ connectionId: info.connectionId });
      assert.ok(id);
      await run('docker', ['wait', id]);
      await rejectsWith(conn.startProcess(exec('true')), 'CONTAINER_START_FAILED');
    });
  });
});
