/**
 * Recordings shipped to S3 (a real s3rver child process): key from the template and the auth
 * metadata, tags and user metadata, multipart for a large recording, nothing secret anywhere,
 * and the `airlock audit` CLI reading straight from s3://. Login is by password through a
 * ContainerSSH auth webhook, whose answer carries the metadata (one value marked sensitive).
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
import { parseManifest, s3Source, verifyRecording } from '../../src/audit/index.js';
import { airlock } from '../helpers/airlock-cli.js';

const PASSWORD = 'pw-NEVER-RECORDED-7f3a';
const TOKEN = 'TOKEN-SHOULD-NOT-APPEAR-91c2';

describe('audit to S3 (s3rver)', () => {
  let s3: TestS3;
  let hook: WebhookServer;
  let gw: TestGateway;
  let spool: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    s3 = await startS3();
    spool = await tempDir('airlock-spool-');
    hook = await startWebhookServer(
      behaviours.acceptPasswords(
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
      ),
    );
    gw = await startGateway({
      auth: { password: { method: 'webhook', webhook: { url: hook.url } } },
      audit: {
        enable: true,
        format: 'both',
        storage: 's3',
        s3: s3.auditConfig(spool.path, {
          keyTemplate: '{{metadata.commit_sha}}/{{metadata.session_id}}/{{connectionId}}/',
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
});
