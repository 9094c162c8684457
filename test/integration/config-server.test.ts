/**
 * ContainerSSH config server compatibility: a config server written only from the reference
 * shapes (shared/reference/containerssh-protocol.md, "Config webhook") — request = the
 * authenticated connection's facts, answer = `{"config": {...}, "metadata"?, "environment"?,
 * "files"?}` — drives the real gateway; the real OpenSSH client logs in through a ContainerSSH
 * auth webhook and the workload runs on the real Docker engine (or, switched per connection, on a
 * real upstream sshd).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { assertNoGatewayLeaks, startGateway, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { startWebhookServer, type RecordedRequest, type WebhookReply, type WebhookServer } from '../helpers/webhook-server.js';
import { keyFixture, type KeyFixture } from '../helpers/fixture.js';
import { sftpBatch, spawnSsh, ssh, startSshMaster } from '../helpers/ssh.js';
import { exchange, freePort } from '../helpers/net.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { ensureRelayImage, ensureTestImage, inspectContainer, TEST_IMAGE, TEST_IMAGE_NOUSER } from '../helpers/docker.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const line = (code: string) => new RegExp(`^airlock: .+ \\[${code}\\]\\r?$`, 'm');

describe('config server (ContainerSSH protocol) through the gateway', () => {
  let fx: KeyFixture;
  let authHook: WebhookServer;
  let configHook: WebhookServer;
  let sshd: TestSshd;
  let gw: TestGateway;
  /** Config requests per connection id (the retry tests count them). */
  const attempts = new Map<string, number>();
  /** Called when a config request for "slow" arrives. */
  let onSlowRequest: (() => void) | undefined;

  // The config server: one answer per authenticated user name, as a real one would decide.
  const configAnswer = (body: Record<string, unknown>): WebhookReply => {
    const user = String(body.authenticatedUsername);
    const connectionId = String(body.connectionId);
    const attempt = (attempts.get(connectionId) ?? 0) + 1;
    attempts.set(connectionId, attempt);
    switch (user) {
      case 'tenant':
        return { json: { config: { docker: { execution: { container: { image: TEST_IMAGE_NOUSER, env: { GREETING: 'hello from the config server' } } } } } } };
      case 'otherengine':
        // The same dockerd under another socket path: an engine address of its own (own client).
        return { json: { config: { docker: { connection: { host: 'unix:///run/docker.sock' }, execution: { container: { env: { GREETING: 'other engine' } } } } } } };
      case 'filer':
        // Another image without sftp-server (so SFTP is the gateway's, over the backend's file
        // API), writable, with port forwarding: everything a per-connection backend must keep.
        return {
          json: {
            config: {
              docker: { execution: { container: { image: TEST_IMAGE_NOUSER }, host: { readonlyRootfs: false } } },
              security: { forwarding: { forwardingMode: 'enable' } },
            },
          },
        };
      case 'restricted':
        return { json: { config: { security: { command: { mode: 'filter', allow: ['echo allowed'] } } } } };
      case 'writer':
        // Explicit false and an explicit empty list: ContainerSSH's merge would drop both.
        return { json: { config: { docker: { execution: { host: { readonlyRootfs: false } } }, security: { env: { allow: [] } } } } };
      case 'merger':
        return {
          json: {
            config: { docker: { execution: { host: { readonlyRootfs: false } } } },
            metadata: { team: { value: 'config-team' }, tier: { value: 'gold', sensitive: false } },
            environment: { FROM_CONFIG: { value: 'config' }, SHARED: { value: 'from-config' } },
            files: { '/tmp/config.txt': { value: b64('config file\n') }, '/tmp/shared.txt': { value: b64('shared from config\n') } },
          },
        };
      case 'proxied':
        return {
          json: {
            config: {
              backend: 'sshproxy',
              sshproxy: {
                server: '127.0.0.1',
                port: sshd.port,
                username: sshd.user,
                privateKey: sshd.clientKey.path,
                allowedHostKeyFingerprints: [sshd.hostKeyFingerprint],
              },
            },
          },
        };
      case 'badkey':
        return {
          json: {
            config: {
              backend: 'sshproxy',
              sshproxy: { server: '127.0.0.1', port: sshd.port, username: sshd.user, privateKey: '/nonexistent/airlock-key', allowedHostKeyFingerprints: [sshd.hostKeyFingerprint] },
            },
          },
        };
      case 'quiet':
        return { json: { config: { log: { level: 'info' } } } };
      case 'garbage':
        return { raw: '<html>not json</html>' };
      case 'failing':
        return { status: 500, raw: 'internal error' };
      case 'invalid':
        return { json: { config: { docker: { execution: { mode: 'sometimes' } } } } };
      case 'outside':
        return { json: { config: { auth: { publicKey: { method: 'none' } } } } };
      case 'noimage':
        return { json: { config: { docker: { execution: { container: { image: 'airlock-test:no-such-tag' } } } } } };
      case 'slow':
        onSlowRequest?.();
        return { json: { config: {} }, delayMs: 5_000 };
      case 'flaky':
        return attempt === 1 ? { json: { config: {} }, delayMs: 5_000 } : { json: { config: { docker: { execution: { container: { env: { ATTEMPT: String(attempt) } } } } } } };
      default:
        return { json: { config: {} } };
    }
  };

  before(async () => {
    await ensureTestImage();
    await ensureTestImage('nouser');
    await ensureRelayImage();
    fx = await keyFixture();
    sshd = await startSshd();
    // A ContainerSSH auth webhook: alice's key for any user name; `merger` also gets maps.
    authHook = await startWebhookServer(({ path, body }) => {
      const key = String(body.publicKey ?? '').split(' ').slice(0, 2).join(' ');
      if (path !== '/pubkey' || key !== fx.alice.publicLine.split(' ').slice(0, 2).join(' ')) return { json: { success: false } };
      const extras =
        body.username === 'merger'
          ? {
              metadata: { team: { value: 'auth-team' }, origin: { value: 'auth' }, secret: { value: 'meta-s3cr3t', sensitive: true } },
              environment: { FROM_AUTH: { value: 'auth' }, SHARED: { value: 'from-auth' } },
              files: { '/tmp/auth.txt': { value: b64('auth file\n') }, '/tmp/shared.txt': { value: b64('shared from auth\n') } },
            }
          : {};
      return { json: { success: true, authenticatedUsername: body.username, ...extras } };
    });
    configHook = await startWebhookServer(({ body }) => configAnswer(body));
    gw = await startGateway({
      auth: { publicKey: { method: 'webhook', webhook: { url: authHook.url } } },
      configserver: { url: `${configHook.url}/config`, timeout: '300ms', totalTimeout: '1500ms' },
      docker: { execution: { container: { env: { STATIC_VAR: 'static' } }, host: { readonlyRootfs: true } } },
      metrics: { enable: true, listen: '127.0.0.1:0' },
    });
  });
  afterEach(async () => {
    await gw.waitForIdle();
    assert.deepEqual(await gw.containers(), [], 'no container may outlive its connection');
    assert.deepEqual(await sshd.userProcesses(), [], 'nothing may keep running upstream');
  });
  after(async () => {
    await gw?.stop();
    await configHook?.close();
    await authHook?.close();
    await sshd?.stop();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  const login = (user: string, command: string, args: string[] = []) => ssh(gw, { user, identity: fx.alice.path, command, args });
  const configRequests = (user: string): RecordedRequest[] => configHook.requests.filter((r) => r.body.authenticatedUsername === user);
  const lastConnectionId = (user: string): string => String(configRequests(user).at(-1)?.body.connectionId);
  const connectionLogs = (connectionId: string): LogLine[] => gw.logs.filter((l) => l.connectionId === connectionId);

  /** Runs `echo ready; cat` as `user`, calls `inspect` with its container while it runs, then ends it. */
  async function whileRunning<T>(user: string, inspect: (container: Record<string, unknown>) => Promise<T> | T): Promise<T> {
    const child = await spawnSsh(gw, { user, identity: fx.alice.path, command: 'echo ready; cat' });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const closed = once(child, 'close');
    try {
      while (!out.includes('ready')) {
        await Promise.race([once(child.stdout!, 'data'), closed.then(() => assert.fail(`ssh ended before the session ran: ${err}`))]);
      }
      const ids = await gw.containers();
      assert.equal(ids.length, 1, 'one container for the connection');
      return await inspect(await inspectContainer(ids[0]!));
    } finally {
      child.stdin!.end();
      await closed;
    }
  }

  it('sends the authenticated connection to the URL exactly as configured, sensitive values held back', async () => {
    const r = await login('merger', 'true');
    assert.equal(r.code, 0, r.stderr);
    const [req, ...more] = configRequests('merger');
    assert.ok(req);
    assert.equal(more.length, 0, 'called once per connection');
    assert.equal(req.path, '/config');
    assert.equal(req.body.username, 'merger');
    assert.equal(req.body.authenticatedUsername, 'merger');
    assert.match(String(req.body.connectionId), /^[0-9a-f]{32}$/);
    assert.match(String(req.body.remoteAddress), /^127\.0\.0\.1:\d+$/);
    assert.match(String(req.body.clientVersion), /^SSH-2\.0-OpenSSH/);
    // What auth collected, without the sensitive entry.
    assert.deepEqual(req.body.metadata, { team: { value: 'auth-team', sensitive: false }, origin: { value: 'auth', sensitive: false } });
    assert.deepEqual(req.body.environment, { FROM_AUTH: { value: 'auth', sensitive: false }, SHARED: { value: 'from-auth', sensitive: false } });
    assert.deepEqual(Object.keys(req.body.files as object).sort(), ['/tmp/auth.txt', '/tmp/shared.txt']);
    assert.doesNotMatch(gw.output(), /meta-s3cr3t/, 'sensitive metadata never reaches the log');
  });

  it('(a) changes the image and environment for one user only', async () => {
    const tenant = await login('tenant', 'echo "greeting=$GREETING static=$STATIC_VAR"');
    assert.equal(tenant.code, 0, tenant.stderr);
    assert.equal(tenant.stdout.toString(), 'greeting=hello from the config server static=static\n', 'env maps merge key by key');
    const alice = await login('alice', 'echo "greeting=$GREETING static=$STATIC_VAR"');
    assert.equal(alice.code, 0, alice.stderr);
    assert.equal(alice.stdout.toString(), 'greeting= static=static\n');

    assert.equal(await whileRunning('tenant', (c) => (c.Config as { Image: string }).Image), TEST_IMAGE_NOUSER);
    assert.equal(await whileRunning('alice', (c) => (c.Config as { Image: string }).Image), TEST_IMAGE);
    // tenant's docker settings differ: a backend of its own, closed with the connection.
    const id = lastConnectionId('tenant');
    await gw.waitForLog((l) => l.connectionId === id && l.msg === 'per-connection backend closed');
    assert.ok(connectionLogs(id).some((l) => l.msg === 'connection gets its own backend (config server)'));
    assert.ok(!connectionLogs(lastConnectionId('alice')).some((l) => l.msg === 'connection gets its own backend (config server)'), 'unchanged settings use the gateway backend');

    const other = await login('otherengine', 'echo "greeting=$GREETING"');
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout.toString(), 'greeting=other engine\n');
    const otherId = lastConnectionId('otherengine');
    await gw.waitForLog((l) => l.connectionId === otherId && l.msg === 'per-connection backend closed');
  });

  it('(a) a config server that changes the image keeps gateway-side sftp and port forwarding (the per-connection backend passes every capability through)', async () => {
    // alice: the gateway's backend (behind the metrics wrapper); filer: a backend of its own.
    // Neither image has sftp-server: sftp works only through the backend's file API.
    const aliceSftp = await sftpBatch(gw, { user: 'alice', identity: fx.alice.path }, [`get /etc/passwd ${join(gw.dir, 'alice-passwd')}`]);
    assert.equal(aliceSftp.code, 0, aliceSftp.stderr);
    assert.match(await readFile(join(gw.dir, 'alice-passwd'), 'utf8'), /^root:/m);
    const aliceId = lastConnectionId('alice');
    assert.ok(connectionLogs(aliceId).some((l) => l.msg === 'session program started' && l['servedBy'] === 'gateway'), 'alice: sftp served by the gateway');

    const upload = join(gw.dir, 'filer-upload.txt');
    const content = `uploaded through a per-connection backend ${Date.now()}\n`;
    await writeFile(upload, content);
    const filerSftp = await sftpBatch(gw, { user: 'filer', identity: fx.alice.path }, [`put ${upload} /tmp/up.txt`, `get /tmp/up.txt ${upload}.back`, 'ls -l /tmp/up.txt']);
    assert.equal(filerSftp.code, 0, filerSftp.stderr);
    assert.equal(await readFile(`${upload}.back`, 'utf8'), content, 'the file made the round trip');
    const filerId = lastConnectionId('filer');
    assert.ok(connectionLogs(filerId).some((l) => l.msg === 'connection gets its own backend (config server)'), 'filer has a backend of its own');
    assert.ok(connectionLogs(filerId).some((l) => l.msg === 'session program started' && l['servedBy'] === 'gateway'), 'filer: sftp served by the gateway');
    assert.ok(!connectionLogs(filerId).some((l) => l.code === 'FORWARDING_UNAVAILABLE'));
    await gw.waitForLog((l) => l.connectionId === filerId && l.msg === 'per-connection backend closed');

    // ssh -L, enabled by the answer: dials from inside filer's container (through the relay).
    const inside = 23456;
    const local = await freePort();
    const master = await startSshMaster(gw, { user: 'filer', identity: fx.alice.path, args: ['-L', `127.0.0.1:${local}:127.0.0.1:${inside}`] });
    try {
      const started = await master.run(`mkdir -p /tmp/www && echo from-filer > /tmp/www/index.html && httpd -p 127.0.0.1:${inside} -h /tmp/www && echo started`);
      assert.equal(started.code, 0, started.stderr);
      const answer = (await exchange(local, 'GET /index.html HTTP/1.0\r\n\r\n')).toString();
      assert.match(answer, /^HTTP\/1\.[01] 200 OK[\s\S]*from-filer/);
      const id = lastConnectionId('filer');
      await gw.waitForLog((l) => l.connectionId === id && l.msg === 'port forwarding channel open' && l.port === inside);
    } finally {
      await master.stop();
    }
  });

  it('(b) a per-connection security policy refuses a command with the POLICY_DENIED line', async () => {
    const denied = await login('restricted', 'id');
    assert.equal(denied.code, 255);
    assert.equal(denied.stdout.length, 0);
    assert.match(denied.stderr, /airlock: command "id" is not allowed by the gateway policy \[POLICY_DENIED\]/);
    const allowed = await login('restricted', 'echo allowed');
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.stdout.toString(), 'allowed\n');
    const alice = await login('alice', 'id -u');
    assert.equal(alice.code, 0, 'the policy is for that connection only: ' + alice.stderr);
  });

  for (const [user, code] of [
    ['garbage', 'CONFIG_SERVER_BAD_RESPONSE'],
    ['failing', 'CONFIG_SERVER_ERROR'],
    ['invalid', 'CONFIG_SERVER_INVALID'],
    ['outside', 'CONFIG_SERVER_INVALID'],
  ] as const) {
    it(`(c) a config server answering as "${user}" refuses the connection: one line, ${code}, no container`, async () => {
      const r = await login(user, 'echo should-not-run');
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, line(code));
      const id = lastConnectionId(user);
      const refused = await gw.waitForLog((l) => l.connectionId === id && l.msg === 'connection configuration failed: connection refused');
      assert.equal(refused.code, code);
      await gw.waitForIdle();
      assert.ok(!connectionLogs(id).some((l) => l.msg === 'container started'), 'no container was started');
    });
  }

  it('(c) the invalid answer is logged with every problem and its key path', async () => {
    const id = lastConnectionId('invalid');
    const refused = gw.logs.find((l) => l.connectionId === id && l.code === 'CONFIG_SERVER_INVALID');
    assert.match(JSON.stringify(refused), /docker\.execution\.mode: must be one of connection, session \(got \\"sometimes\\"\)/);
    const outside = gw.logs.find((l) => l.connectionId === lastConnectionId('outside') && l.code === 'CONFIG_SERVER_INVALID');
    assert.match(JSON.stringify(outside), /auth: cannot be set per connection/);
  });

  it('(c) a refused connection without a session (ssh -N) is closed too', async () => {
    const r = await ssh(gw, { user: 'garbage', identity: fx.alice.path, args: ['-N'], timeoutMs: 20_000 });
    assert.equal(r.signal, null, 'ssh ended by itself');
    assert.equal(r.code, 255);
  });

  it('(c) a per-connection backend that cannot start its workload is closed again', async () => {
    const r = await login('noimage', 'true');
    assert.equal(r.code, 255);
    assert.match(r.stderr, line('IMAGE_NOT_FOUND'));
    const id = lastConnectionId('noimage');
    await gw.waitForLog((l) => l.connectionId === id && l.msg === 'per-connection backend closed');
  });

  it('(d) a config server that does not answer in time is retried, then the connection is refused', async () => {
    const started = Date.now();
    const r = await login('slow', 'echo should-not-run');
    assert.equal(r.code, 255);
    assert.match(r.stderr, line('CONFIG_SERVER_ERROR'));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1_400, `gave up after configserver.totalTimeout (1.5 s), not before (${elapsed} ms)`);
    const id = lastConnectionId('slow');
    assert.ok(attempts.get(id)! >= 2, `retried (${attempts.get(id)} requests)`);
    assert.ok(connectionLogs(id).some((l) => l.msg === 'config server request failed, retrying'));
    const refused = gw.logs.find((l) => l.connectionId === id && l.msg === 'connection configuration failed: connection refused');
    const err = refused?.err as { message?: string; details?: { attempts?: number } } | undefined;
    assert.match(String(err?.message), /did not answer within \d+ ms/);
    assert.equal(err?.details?.attempts, attempts.get(id), 'the log line counts the attempts');

    const flaky = await login('flaky', 'echo "attempt=$ATTEMPT"');
    assert.equal(flaky.code, 0, flaky.stderr);
    assert.equal(flaky.stdout.toString(), 'attempt=2\n', 'the second request answered and its config applies');
  });

  it('(d) a client that leaves while the config server is slow: the call is abandoned, nothing started', async () => {
    const arrived = new Promise<void>((resolve) => (onSlowRequest = resolve));
    const child = await spawnSsh(gw, { user: 'slow', identity: fx.alice.path, command: 'echo should-not-run' });
    const closed = once(child, 'close');
    await arrived;
    onSlowRequest = undefined;
    child.kill('SIGKILL');
    await closed;
    const id = lastConnectionId('slow');
    await gw.waitForLog((l) => l.connectionId === id && l.msg === 'connection closed');
    const lines = connectionLogs(id);
    assert.ok(!lines.some((l) => l.msg === 'container started'), 'no container');
    assert.ok(!lines.some((l) => l.msg === 'connection configuration failed: connection refused'), 'a client leaving is not a config server failure');
  });

  it('(e) metadata, environment and files merge with the auth webhook ones key by key', async () => {
    const r = await login('merger', 'echo "$FROM_AUTH $FROM_CONFIG $SHARED"; cat /tmp/auth.txt /tmp/config.txt /tmp/shared.txt');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'auth config from-config\nauth file\nconfig file\nshared from config\n');
    const labels = await whileRunning('merger', (c) => (c.Config as { Labels: Record<string, string> }).Labels);
    assert.equal(labels['airlock.meta.team'], 'config-team', 'same key: the config server wins');
    assert.equal(labels['airlock.meta.origin'], 'auth', 'auth-only key kept');
    assert.equal(labels['airlock.meta.tier'], 'gold', 'config-only key added');
    assert.equal(labels['airlock.meta.secret'], undefined, 'sensitive metadata never becomes a label');
  });

  it('(f) explicit false and empty values override the static config', async () => {
    const script = 'touch /tmp/probe && echo wrote; echo "lang=$LANG"';
    const alice = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: script, args: ['-o', 'SetEnv=LANG=C.UTF-8'] });
    assert.match(alice.stderr, /Read-only file system/, 'static readonlyRootfs: true');
    assert.equal(alice.stdout.toString(), 'lang=C.UTF-8\n', 'static security.env.allow lists LANG');
    const writer = await ssh(gw, { user: 'writer', identity: fx.alice.path, command: script, args: ['-o', 'SetEnv=LANG=C.UTF-8'] });
    assert.equal(writer.code, 0, writer.stderr);
    assert.equal(writer.stdout.toString(), 'wrote\nlang=\n', 'readonlyRootfs: false and security.env.allow: [] applied');
  });

  it('switches backend: per connection (docker → sshproxy to a real sshd)', async () => {
    const r = await login('proxied', 'id -un');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `${sshd.user}\n`);
    const id = lastConnectionId('proxied');
    assert.ok(!connectionLogs(id).some((l) => l.msg === 'container started'), 'no container for a proxied connection');
    await gw.waitForLog((l) => l.connectionId === id && l.msg === 'per-connection backend closed' && l.backend === 'sshproxy');
  });

  it('a per-connection backend that cannot be built (unreadable key file) refuses the connection', async () => {
    const r = await login('badkey', 'echo should-not-run');
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, line('CONFIG_SERVER_INVALID'));
    const id = lastConnectionId('badkey');
    const failed = await gw.waitForLog((l) => l.connectionId === id && l.code === 'CONFIG_SERVER_INVALID');
    assert.match(String((failed.err as { message?: string } | undefined)?.message), /sshproxy\.privateKey: cannot read the key file/);
  });

  it('log.level applies to that connection only', async () => {
    const args = ['-o', 'SetEnv=LANG=C.UTF-8'];
    assert.equal((await ssh(gw, { user: 'quiet', identity: fx.alice.path, command: 'true', args })).code, 0);
    assert.equal((await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'true', args })).code, 0);
    await gw.waitForIdle();
    const envDebug = (id: string) => connectionLogs(id).some((l) => l.msg === 'env request accepted' && l.level === 'debug');
    assert.ok(envDebug(lastConnectionId('alice')), 'debug lines at the gateway level (debug)');
    const quiet = lastConnectionId('quiet');
    assert.ok(!envDebug(quiet), 'no debug lines for the connection at info');
    assert.ok(connectionLogs(quiet).some((l) => l.msg === 'connection closed'), 'info lines still written');
  });

  it('counts config server calls and failures in containerssh_config_server_*', async () => {
    const line = await gw.waitForLog((l) => l.msg === 'operator listener started');
    const url = `http://127.0.0.1:${Number(line.metricsPort)}/metrics`;
    const sample = async (name: string) => {
      const text = await (await fetch(url)).text();
      const found = text.split('\n').find((l) => l.startsWith(`${name} `));
      return Number(found?.split(' ')[1]);
    };
    const requests = await sample('containerssh_config_server_requests_total');
    const failures = await sample('containerssh_config_server_failures_total');
    assert.equal((await login('alice', 'true')).code, 0);
    assert.equal((await login('invalid', 'true')).code, 255);
    await gw.waitForIdle();
    assert.equal(await sample('containerssh_config_server_requests_total'), requests + 2);
    assert.equal(await sample('containerssh_config_server_failures_total'), failures + 1);
  });
});
