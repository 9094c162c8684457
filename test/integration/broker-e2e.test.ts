/**
 * The CI-debugging flow end to end, through the front door: provision over HTTP from the API
 * embedded in `airlock serve`, then `ssh <token>@gateway` with the real OpenSSH client lands in a
 * container of the session's image with the secrets stripped; revocation, the connection limit,
 * expiry and foreign tokens all refuse the login (no container) or end the live connection.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { startGateway, assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ssh, spawnSsh } from '../helpers/ssh.js';
import { assertContainersGone, containersCreatedBetween, ensureTestImage, inspectContainer, managedContainers } from '../helpers/docker.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { tempDir } from '../helpers/tmp.js';
import { retry } from '../../src/core/retry.js';
import { provisionSession } from '../helpers/provision.js';

const KEY = randomBytes(24).toString('hex');
const PEM = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----';
const SECRETS = {
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY',
  GITHUB_TOKEN: 'ghs_0123456789abcdefghijABCDEFGHIJ012345',
  INNOCENT_SETUP: PEM,
};
const COMMIT = 'a3f5c9e1b2d4f6a8c0e2a4b6c8d0e2f4a6b8c0d2';


describe('CI-debug broker end to end (embedded in airlock serve)', () => {
  let gw: TestGateway;
  let api: string;

  before(async () => {
    await ensureTestImage();
    gw = await startGateway({
      // Warned 3 s before expiry (5 minutes by default) so the 8 s session below sees it.
      ssh: { deadlineWarning: '3s' },
      // The configured image does not exist: a session that runs at all runs the session's image.
      docker: { execution: { container: { image: 'airlock-test:no-such-image' } } },
      broker: {
        listen: '127.0.0.1:0',
        provisionKeys: [KEY],
        // A wide tolerance: a token refused soon after exp is refused by the gateway's expiry
        // check, not by jose's `exp` check (which honours the tolerance).
        tokens: { audience: 'airlock-e2e', clockTolerance: '60s' },
      },
    });
    const line = await gw.waitForLog((l) => l.msg === 'broker API listening');
    api = `http://127.0.0.1:${String(line.port)}`;
  });
  after(async () => {
    await gw?.stop();
    await assertNoGatewayLeaks();
  });

  const provision = (body: Record<string, unknown>) => provisionSession(api, KEY, { image: 'airlock-test:busybox', ...body });
  const revoke = async (id: string) => {
    const res = await fetch(`${api}/v1/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
  };
  /** Ids of the session's containers, running or not (docker ps -a by label). */
  const containersOf = (sessionId: string) => managedContainers({ gatewayId: gw.gatewayId, labels: { 'airlock.meta.session_id': sessionId } });

  it('`ssh <token>@gateway env`: the session image, GOPATH and AIRLOCK_*, no secret values', async () => {
    const s = await provision({
      commit_sha: COMMIT,
      pr_number: 42,
      actor: 'octocat',
      repository: 'acme/app',
      pipeline_run: 'run-99',
      env: { ...SECRETS, GOPATH: '/home/runner/go' },
    });
    assert.deepEqual(s.redacted_vars, ['AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN', 'INNOCENT_SETUP']);
    assert.equal(s.ssh_command, `ssh -p ${gw.port} ${s.token}@127.0.0.1`);

    const r = await ssh(gw, { user: s.token, command: 'env; cat /etc/os-release 2>/dev/null | head -1; id -un' });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.match(out, /^GOPATH=\/home\/runner\/go$/m);
    assert.match(out, new RegExp(`^AIRLOCK_SESSION_ID=${s.session_id}$`, 'm'));
    assert.match(out, /^AIRLOCK_ACTOR=octocat$/m);
    assert.match(out, new RegExp(`^AIRLOCK_COMMIT_SHA=${COMMIT}$`, 'm'));
    assert.match(out, /^AIRLOCK_PR_NUMBER=42$/m);
    assert.match(out, /^AIRLOCK_REDACTED_VARS=AWS_SECRET_ACCESS_KEY,GITHUB_TOKEN,INNOCENT_SETUP$/m);
    assert.match(out, /^airlock$/m, 'the busybox test image (USER airlock) runs, not the configured one');
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.ok(!out.includes(`${name}=`), `${name} reached the container`);
      assert.ok(!out.includes(value.split('\n')[1] ?? value), `the value of ${name} reached the container`);
    }
    assert.ok(!gw.output().includes(s.token), 'the token never reaches the gateway log');
    for (const value of Object.values(SECRETS)) assert.ok(!gw.output().includes(value.split('\n')[1] ?? value), 'no secret in the log');
    const auth = await gw.waitForLog((l) => l.msg === 'connection authenticated' && l.username === 'octocat');
    assert.match(String(auth.loginUsername), /^token:sha256:[0-9a-f]{12}$/);
  });

  it('one connection at a time; labels carry the session; revoke ends the live connection within seconds', async () => {
    const s = await provision({ commit_sha: COMMIT, pr_number: 7, actor: 'hubot', max_connections: 1 });
    const first = await spawnSsh(gw, { user: s.token, command: 'echo ready; sleep 120' });
    let out = '';
    let err = '';
    first.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    first.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    first.stdin!.end();
    const closed = once(first, 'close');
    await retry(
      async () => {
        if (!out.includes('ready')) throw new Error('not yet');
      },
      { deadline: Date.now() + 30_000, initialDelayMs: 50, maxDelayMs: 200 },
    );

    const [id] = await containersOf(s.session_id);
    assert.ok(id, 'the session container exists');
    const container = await inspectContainer(id);
    const labels = (container.Config as { Labels: Record<string, string> }).Labels;
    assert.equal(labels['airlock.meta.commit_sha'], COMMIT);
    assert.equal(labels['airlock.meta.pr_number'], '7');
    assert.equal(labels['airlock.meta.actor'], 'hubot');
    assert.equal(labels['airlock.user'], 'hubot');
    assert.ok(Object.values(labels).every((v) => !v.includes(s.token)), 'the token is not a label');

    const second = await ssh(gw, { user: s.token, command: 'true' });
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /\[SESSION_CONNECTION_LIMIT\]/);

    const revokedAt = Date.now();
    await revoke(s.session_id);
    await closed;
    assert.ok(Date.now() - revokedAt < 5_000, 'the live connection ended within seconds');
    assert.match(out + err, /revoked \[SESSION_REVOKED\]/);

    const after = await ssh(gw, { user: s.token, command: 'true' });
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /airlock: the debug session has been revoked \[SESSION_REVOKED\]/);
    assert.match(after.stderr, /Permission denied/);
    await gw.waitForIdle();
    assert.deepEqual(await containersOf(s.session_id), [], 'no container for refused logins, none left behind');
  });

  it('keyboard-interactive: `ssh ci@gateway` asks for the token (hidden) and logs in with it; a non-token answer is refused', async () => {
    const s = await provision({ actor: 'kbd-user' });
    const r = await ssh(gw, {
      user: 'ci',
      answers: { 'Debug-session token:': s.token },
      preferredAuthentications: 'keyboard-interactive',
      command: 'echo "actor=$AIRLOCK_ACTOR"',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'actor=kbd-user\n');
    assert.equal(r.prompts.length, 1);
    assert.match(r.prompts[0] ?? '', /Debug-session token: $/);
    const auth = await gw.waitForLog((l) => l.msg === 'connection authenticated' && l.username === 'kbd-user');
    assert.equal(auth.method, 'keyboard-interactive');
    assert.ok(!gw.output().includes(s.token), 'the typed token never reaches the log');
    await gw.waitForIdle();

    const wrong = await ssh(gw, { user: 'ci', answers: { 'Debug-session token:': 'hunter2' }, preferredAuthentications: 'keyboard-interactive', command: 'true' });
    assert.equal(wrong.code, 255);
    assert.match(wrong.stderr, /\[TOKEN_INVALID\]/);
    assert.match(wrong.stderr, /Permission denied/);
    assert.deepEqual(await containersOf(s.session_id), []);
    await gw.waitForIdle();
  });

  it('an interactive login is told when the session ends (login notice)', async () => {
    const s = await provision({ ttl_seconds: 600 });
    const shell = await ssh(gw, { user: s.token, input: 'echo in-shell\nexit\n' });
    assert.equal(shell.code, 0, shell.stderr);
    const out = shell.stdout.toString();
    const at = new Date(s.expires_at * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    assert.ok(out.includes(`airlock: this session ends at ${at} (in 10 minutes).\r\n`), out);
    assert.match(out, /in-shell/);
    await gw.waitForIdle();
  });

  it('a disconnect frees the slot: reconnecting works until expiry', async () => {
    const s = await provision({ max_connections: 1 });
    for (let i = 0; i < 2; i++) {
      const r = await ssh(gw, { user: s.token, command: 'echo again' });
      assert.equal(r.code, 0, r.stderr);
      await gw.waitForIdle();
    }
  });

  it('a live connection is warned, closed at expiry and its container removed; right after expiry a login is refused, no container', async () => {
    // Long enough for the container to start even on a loaded machine, short enough for a test.
    const s = await provision({ ttl_seconds: 8 });
    const live = await spawnSsh(gw, { user: s.token, command: 'echo in; sleep 120' });
    let text = '';
    let warnedAt: number | undefined;
    live.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    live.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      if (warnedAt === undefined && text.includes('this session ends in')) warnedAt = Date.now();
    });
    live.stdin!.end();
    const closed = once(live, 'close') as Promise<[number | null]>;
    await retry(
      async () => {
        if (!/^in$/m.test(text)) throw new Error('not yet');
      },
      { deadline: Date.now() + 30_000, initialDelayMs: 50, maxDelayMs: 200 },
    );
    const running = await containersOf(s.session_id);
    assert.equal(running.length, 1, 'the session container runs while connected');

    const [code] = await closed;
    assert.ok(Date.now() / 1000 >= s.expires_at - 1, 'closed at the deadline, not before');
    assert.notEqual(code, 0);
    const expiry = new Date(s.expires_at * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    assert.ok(text.includes(`airlock: this session ends in 3 seconds (access expires at ${expiry})`), text);
    assert.ok(warnedAt !== undefined && warnedAt / 1000 >= s.expires_at - 4.5 && warnedAt / 1000 < s.expires_at, 'warned about 3 s before expiry');
    assert.ok(text.indexOf('this session ends in') < text.indexOf('access has expired'), 'the warning comes first');
    assert.match(text, /access has expired/);

    // The container is removed at expiry: ask the engine until it is gone (bounded), then assert.
    await assertContainersGone({ gatewayId: gw.gatewayId, labels: { 'airlock.meta.session_id': s.session_id } });

    // Right after expiry, inside the verifier's clock tolerance (60 s here): refused all the same.
    const since = Date.now();
    const r = await ssh(gw, { user: s.token, command: 'true' });
    const until = Date.now();
    assert.ok(until < s.expires_at * 1000 + 60_000, 'refused inside the clock tolerance: by the expiry check');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /airlock: the debug-session token has expired; provision a new session \[TOKEN_EXPIRED\]/);
    assert.match(r.stderr, /Permission denied/);
    assert.deepEqual(await containersCreatedBetween(since, until, { gatewayId: gw.gatewayId }), [], 'no container for an expired token');
    await gw.waitForIdle();
  });

  it('a token from another broker (another key) is refused with no container', async () => {
    await gw.waitForIdle();
    const { privateKey } = generateKeyPairSync('ed25519');
    const now = Math.floor(Date.now() / 1000);
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: 'ed25519-AAAAAAAAAAAAAAAA', typ: 'airlock-session+jwt' })
      .setSubject(randomBytes(16).toString('hex'))
      .setAudience('airlock-e2e')
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 600)
      .setJti('abcdefghijkl')
      .sign(privateKey);
    const r = await ssh(gw, { user: foreign, command: 'true' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\[TOKEN_INVALID\]/);
    assert.deepEqual(await gw.containers(), []);
  });
});

describe('CI-debug recordings are tagged with the session (audit to S3)', () => {
  let gw: TestGateway;
  let s3: TestS3;
  let spool: { path: string; cleanup: () => Promise<void> };
  let api: string;
  before(async () => {
    await ensureTestImage();
    s3 = await startS3();
    spool = await tempDir('airlock-e2e-spool-');
    gw = await startGateway({
      broker: { listen: '127.0.0.1:0', provisionKeys: [KEY] },
      audit: {
        enable: true,
        format: 'asciinema',
        storage: 's3',
        s3: s3.auditConfig(spool.path, { keyTemplate: '{{metadata.session_id}}/{{connectionId}}/' }),
      },
    });
    api = `http://127.0.0.1:${String((await gw.waitForLog((l) => l.msg === 'broker API listening')).port)}`;
  });
  after(async () => {
    await gw?.stop();
    await s3?.close();
    await spool?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('the recording in S3 carries session, commit, PR and actor tags, and no secret', async () => {
    const s = await provisionSession(api, KEY, { image: 'airlock-test:busybox', commit_sha: COMMIT, pr_number: 42, actor: 'octocat', env: { ...SECRETS, GOPATH: '/go' } });
    const r = await ssh(gw, { user: s.token, command: 'env' });
    assert.equal(r.code, 0, r.stderr);
    const keys = await retry(
      async () => {
        const found = await s3.keys(`${s.session_id}/`);
        if (!found.some((k) => k.endsWith('/manifest.json'))) throw new Error('not uploaded yet');
        return found;
      },
      { deadline: Date.now() + 30_000, initialDelayMs: 100, maxDelayMs: 1_000 },
    );
    for (const key of keys) {
      const tags = await s3.tags(key);
      assert.equal(tags.session_id, s.session_id, key);
      assert.equal(tags.commit_sha, COMMIT);
      assert.equal(tags.pr_number, '42');
      assert.equal(tags.actor, 'octocat');
      const body = (await s3.get(key)).toString('utf8');
      assert.ok(!body.includes(s.token), `${key} contains the token`);
      for (const value of Object.values(SECRETS)) assert.ok(!body.includes(value.split('\n')[1] ?? value), `${key} contains a secret`);
    }
    const recorded = (await Promise.all(keys.map((k) => s3.get(k)))).map((b) => b.toString('utf8')).join('');
    assert.match(recorded, /GOPATH=\/go/, 'the session output itself was recorded');
  });
});
