/**
 * Nothing lost while S3 is down: 20 sessions run normally during an outage (s3rver process
 * killed), their recordings wait sealed in the spool, and all 20 arrive complete and intact once
 * the server is back. The upload queue is kept small (2 uploading + 3 waiting), so most of them
 * wait on the spool only and are picked up again when the queue has room.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { ssh } from '../helpers/ssh.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { parseManifest, s3Source, verifyRecording } from '../../src/audit/index.js';

const SESSIONS = 20;

describe('audit while S3 is down', () => {
  let fx: KeyFixture;
  let s3: TestS3;
  let gw: TestGateway;
  let spool: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    s3 = await startS3();
    spool = await tempDir('airlock-spool-');
    gw = await keyGateway(fx, { audit: { enable: true, storage: 's3', s3: s3.auditConfig(spool.path, { parallelUploads: 2 }), uploadQueueSize: 3 } });
  });
  after(async () => {
    await gw?.stop();
    await s3?.close();
    await spool?.cleanup();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('20 sessions during the outage are all uploaded complete once S3 is back', async () => {
    await s3.stop();
    const markers = Array.from({ length: SESSIONS }, (_, i) => `outage-session-${i}`);
    // Five at a time: sessions are neither refused nor slowed while uploads fail.
    for (let i = 0; i < SESSIONS; i += 5) {
      const batch = markers.slice(i, i + 5);
      const results = await Promise.all(batch.map((m) => ssh(gw, { user: 'alice', identity: fx.alice.path, command: `echo ${m}` })));
      results.forEach((r, j) => {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.toString(), `${batch[j]}\n`);
      });
    }
    await gw.waitForLog(() => gw.logs.filter((l) => l.msg === 'recording sealed').length === SESSIONS, 30_000);
    await gw.waitForLog((l) => l['code'] === 'AUDIT_UPLOAD_FAILED');
    assert.equal(gw.logs.filter((l) => l.msg === 'recording stored').length, 0);
    // 5 of 20 fit in memory: the queue says so once, and the rest wait on the spool.
    assert.equal(gw.logs.filter((l) => l['code'] === 'AUDIT_UPLOAD_BACKLOG').length, 1);
    const waiting = readdirSync(spool.path).filter((n) => !n.startsWith('.'));
    assert.equal(waiting.length, SESSIONS);
    assert.ok(waiting.every((n) => existsSync(join(spool.path, n, 'manifest.json'))), 'every waiting recording is sealed on the spool');

    await s3.start();
    await gw.waitForLog(() => gw.logs.filter((l) => l.msg === 'recording stored').length === SESSIONS, 120_000);
    assert.deepEqual(readdirSync(spool.path).filter((n) => !n.startsWith('.')), []);
    assert.ok(gw.logs.some((l) => l.msg === 'upload queue has room again: queueing recordings left on the spool'));

    const manifests = (await s3.keys()).filter((k) => k.endsWith('/manifest.json'));
    assert.equal(manifests.length, SESSIONS);
    const seen: string[] = [];
    for (const key of manifests) {
      const manifest = parseManifest((await s3.get(key)).toString('utf8'), key);
      assert.equal(manifest.complete, true);
      seen.push(manifest.channels[0]?.command?.replace(/^echo /, '') ?? '');
      const v = await verifyRecording(s3Source(s3.client, `s3://${s3.bucket}/${key.slice(0, -'manifest.json'.length)}`), manifest.digest);
      assert.deepEqual(v.problems, [], key);
    }
    assert.deepEqual(seen.sort(), [...markers].sort());
  });
});
