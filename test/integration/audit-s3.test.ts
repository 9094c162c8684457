/**
 * Recordings shipped to S3 (a real s3rver child process): key from the template and the auth
 * metadata, tags and user metadata, multipart for a large recording, nothing secret anywhere,
 * and the `airlock audit` CLI reading straight from s3://. Login is by password through a
 * ContainerSSH auth webhook, whose answer carries the metadata (one value marked sensitive); the
 * password events (100-103) are checked for a good, a wrong and an unanswerable password.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { startGateway, assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { startWebhookServer, behaviours, type WebhookServer } from '../helpers/webhook-server.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { ssh } from '../helpers/ssh.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { AuditType, parseManifest, s3Source, scanBinary, verifyRecording } from '../../src/audit/index.js';
import type { AuditMessage } from '../../src/audit/format/binary-format.js';
import { airlock } from '../helpers/airlock-cli.js';

const PASSWORD = 'pw-NEVER-RECORDED-7f3a';
const TOKEN = 'TOKEN-SHOULD-NOT-APPEAR-91c2';
const WRONG_PASSWORD = 'wrong-pw-NEVER-RECORDED-0b5e';
const PASSWORD_EVENTS: ReadonlySet<number> = new Set([AuditType.PasswordAttempt, AuditType.PasswordSuccess, AuditType.PasswordFail, AuditType.PasswordBackendError]);

/** [type, payload] of the password events (100-103) of a recording, in order. */
const passwordEvents = (msgs: readonly AuditMessage[]) => msgs.filter((m) => PASSWORD_EVENTS.has(m.type)).map((m) => [m.type, m.payload]);

describe('audit to S3 (s3rver)', () => {
  let s3: TestS3;
  let hook: WebhookServer;
  let gw: TestGateway;
  let spool: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    s3 = await startS3();
    spool = await tempDir('airlock-spool-');
    const passwords = behaviours.acceptPasswords(
      { bob: PASSWORD },
      {
        metadata: {
          commit_sha: { value: 'c0ffee1234abcd' },
          pr_number: { value: '17' },
          actor: { value: 'octocat' },
          session_id: { value: 'sess-1' },
          deploy_token: { value: TOKEN, sensitive: true },
        },
      },
    );
    // User "broken": the webhook is down for them (a backend error, 103, after authTimeout).
    hook = await startWebhookServer((request, index) => (request.body.username === 'broken' ? behaviours.down()(request, index) : passwords(request, index)));
    gw = await startGateway({
      // Short authTimeout: the backend-error case waits for it (bob's answer takes milliseconds).
      auth: { authTimeout: '2s', password: { method: 'webhook', webhook: { url: hook.url } } },
      audit: {
        enable: true,
        format: 'both',
        storage: 's3',
        s3: s3.auditConfig(spool.path, {
          // The issue's own example, without {{connectionId}}: the gateway appends it.
          keyTemplate: '{{metadata.commit_sha}}/{{metadata.session_id}}/',
          metadata: { ip: true, username: true },
        }),
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await hook?.close();
    await s3?.close();
    await spool?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('stores every file under the templated key, tagged, multipart when large, with no secret', async () => {
    // ~7 MiB of random output: the compressed binary exceeds the 5 MiB part size.
    const r = await ssh(gw, { user: 'bob', password: PASSWORD, command: 'echo in-s3-marker; head -c 7000000 /dev/urandom' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 'in-s3-marker\n'.length + 7_000_000);
    const stored = await gw.waitForLog((l) => l.msg === 'recording stored', 60_000);
    const connectionId = String(stored['connectionId']);
    const prefix = `c0ffee1234abcd/sess-1/${connectionId}/`;
    assert.equal(stored['location'], `s3://${s3.bucket}/${prefix}`);
    assert.deepEqual(await s3.keys(), ['audit.airlock', 'channel-0.cast', 'commands.jsonl', 'manifest.json'].map((n) => prefix + n));
    assert.ok(s3.log.some((l) => /^Stored part 2 of /.test(l)), 'the large file went up in parts');

    const manifest = parseManifest((await s3.get(prefix + 'manifest.json')).toString('utf8'), 'manifest');
    assert.equal(manifest.complete, true);
    assert.equal(manifest.identity?.username, 'bob');
    assert.deepEqual(manifest.identity?.metadata, { commit_sha: 'c0ffee1234abcd', pr_number: '17', actor: 'octocat', session_id: 'sess-1' });
    const tags = await s3.tags(prefix + 'manifest.json');
    assert.deepEqual(tags, {
      'airlock-connection-id': connectionId,
      'airlock-complete': 'true',
      session_id: 'sess-1',
      commit_sha: 'c0ffee1234abcd',
      pr_number: '17',
      actor: 'octocat',
      'airlock-username': 'bob',
      'airlock-remote-ip': '127.0.0.1',
    });
    assert.deepEqual(await s3.tags(prefix + 'audit.airlock'), tags);
    const meta = await s3.metadata(prefix + 'audit.airlock');
    assert.equal(meta['airlock-digest'], manifest.digest);
    assert.equal(meta['commit-sha'], 'c0ffee1234abcd');

    const binary = await s3.get(prefix + 'audit.airlock');
    const msgs: AuditMessage[] = [];
    await scanBinary([binary], (m) => void msgs.push(m));
    // OpenSSH's "none" probe is not an offered method here: only the password attempt counts.
    assert.deepEqual(passwordEvents(msgs), [
      [AuditType.PasswordAttempt, { username: 'bob', method: 'password' }],
      [AuditType.PasswordSuccess, { username: 'bob', method: 'password' }],
    ]);
    const everything = [
      gunzipSync(binary.subarray(40), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('latin1'),
      ...(await Promise.all(['channel-0.cast', 'commands.jsonl', 'manifest.json'].map(async (n) => (await s3.get(prefix + n)).toString('utf8')))),
      JSON.stringify(await s3.metadata(prefix + 'manifest.json')),
      gw.output(),
    ].join('\n');
    assert.ok(everything.includes('in-s3-marker'));
    for (const secret of [PASSWORD, Buffer.from(PASSWORD).toString('base64'), TOKEN, 'deploy_token']) {
      assert.ok(!everything.includes(secret), `${secret} leaked into the recording, its labels or the log`);
    }
    // The spool copy is removed once S3 has every file.
    assert.deepEqual((await import('node:fs')).readdirSync(spool.path).filter((n) => !n.startsWith('.')), []);

    const verified = await verifyRecording(s3Source(s3.client, `s3://${s3.bucket}/${prefix}`), String(stored['digest']));
    assert.deepEqual(verified.problems, []);
  });

  it('airlock audit ls / verify / commands / replay read s3:// using the gateway config', async () => {
    const config = ['-c', join(gw.dir, 'config.yaml')];
    const ls = await airlock(['audit', 'ls', ...config, '--commit', 'c0ffee', '--pr', '#17', '--actor', 'octocat', '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    const found = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { location: string; connectionId: string });
    assert.equal(found.length, 1);
    const location = found[0]?.location as string;
    assert.match(location, /^s3:\/\/recordings\/c0ffee1234abcd\/sess-1\/[0-9a-f]+\/$/);
    const miss = await airlock(['audit', 'ls', `s3://${s3.bucket}/`, '--endpoint', s3.endpoint, '--commit', 'deadbeef'], { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' });
    assert.equal(miss.code, 0, miss.stderr);
    assert.match(miss.stderr, /no recordings match \(1 under s3:\/\/recordings\/\)/);

    const verify = await airlock(['audit', 'verify', location, ...config]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^OK s3:\/\/.*: intact, complete/);
    const commands = await airlock(['audit', 'commands', location, ...config]);
    assert.match(commands.stdout, /exec +echo in-s3-marker; head -c 7000000 \/dev\/urandom/);
    const replay = await airlock(['audit', 'replay', location, ...config, '--speed', '0']);
    assert.equal(replay.code, 0, replay.stderr);
    assert.ok(replay.stdout.startsWith('in-s3-marker\n'));
  });

  it('a wrong password (102) and an unanswerable webhook (103): user and method recorded, never the password', async () => {
    const wrong = await ssh(gw, { user: 'bob', password: WRONG_PASSWORD, command: 'true' });
    assert.equal(wrong.code, 255, wrong.stderr);
    const broken = await ssh(gw, { user: 'broken', password: PASSWORD, command: 'true' });
    assert.equal(broken.code, 255, broken.stderr);
    // No auth metadata: the template's placeholders render as "unknown".
    const stored = async (user: string) => {
      for (const line of gw.logs.filter((l) => l.msg === 'recording stored' && String(l['location']).includes('/unknown/unknown/'))) {
        const location = String(line['location']);
        const prefix = location.slice(`s3://${s3.bucket}/`.length);
        const msgs: AuditMessage[] = [];
        await scanBinary([await s3.get(prefix + 'audit.airlock')], (m) => void msgs.push(m));
        if (msgs.some((m) => m.type === AuditType.PasswordAttempt && m.payload['username'] === user)) return { prefix, msgs };
      }
      return undefined;
    };
    const find = async (user: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        // Counted before the scan: a line logged while it reads S3 is waited for below, not missed.
        const seen = gw.logs.length;
        const found = await stored(user);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no recording of ${user}'s login; logs:\n${gw.output().slice(-3000)}`);
            await gw.waitForLog((l) => l.msg === 'recording stored' && gw.logs.indexOf(l) >= seen, 30_000).catch(() => undefined);
      }
    };
    const bad = await find('bob');
    assert.match(bad.prefix, /^unknown\/unknown\/[0-9a-f]+\/$/);
    assert.deepEqual(passwordEvents(bad.msgs), [
      [AuditType.PasswordAttempt, { username: 'bob', method: 'password' }],
      [AuditType.PasswordFail, { username: 'bob', method: 'password', reason: 'AUTH_REJECTED' }],
    ]);
    const down = await find('broken');
    assert.deepEqual(passwordEvents(down.msgs), [
      [AuditType.PasswordAttempt, { username: 'broken', method: 'password' }],
      [AuditType.PasswordBackendError, { username: 'broken', method: 'password', reason: 'AUTH_BACKEND_ERROR' }],
    ]);
    for (const { prefix } of [bad, down]) {
      const everything = (await Promise.all((await s3.keys(prefix)).map(async (k) => (await s3.get(k)).toString('latin1')))).join('\n');
      const binary = await s3.get(prefix + 'audit.airlock');
      const plain = gunzipSync(binary.subarray(40), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('latin1');
      for (const secret of [PASSWORD, WRONG_PASSWORD, Buffer.from(PASSWORD).toString('base64'), Buffer.from(WRONG_PASSWORD).toString('base64')]) {
        assert.ok(!(everything + plain + gw.output()).includes(secret), `${secret} leaked into ${prefix} or the log`);
      }
    }
  });
});
