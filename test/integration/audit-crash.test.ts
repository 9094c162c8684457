/**
 * `kill -9` of the gateway in the middle of a session: at the next start the partial recording
 * is sealed as incomplete (everything up to the last checkpoint is kept and verifiable) and
 * uploaded to S3; the killed gateway's container is reaped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { spawnSsh } from '../helpers/ssh.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { CRASH_REASON, parseCommandLog, parseManifest, s3Source, verifyRecording } from '../../src/audit/index.js';

describe('gateway killed mid-session', () => {
  let fx: KeyFixture;
  let s3: TestS3;
  let spool: { path: string; cleanup: () => Promise<void> };
  const gateways: TestGateway[] = [];

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    s3 = await startS3();
    spool = await tempDir('airlock-spool-');
  });
  after(async () => {
    for (const gw of gateways) await gw.stop();
    await s3?.close();
    await spool?.cleanup();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('the restarted gateway seals the partial recording as incomplete and uploads it', async () => {
    const audit = { audit: { enable: true, format: 'both', storage: 's3', s3: s3.auditConfig(spool.path) } };
    const first = await keyGateway(fx, audit);
    gateways.push(first);
    const client = await spawnSsh(first, { user: 'alice', identity: fx.alice.path, command: 'echo before-crash-marker; sleep 600' });
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const clientExit = once(client, 'exit');
    await new Promise<void>((resolve) => client.stdout!.on('data', () => out.includes('before-crash-marker') && resolve()));
    // The recorder fsyncs every second: wait for a checkpoint taken after the output was seen.
    const seen = first.logs.length;
    await first.waitForLog((l) => l.msg === 'recording checkpoint' && first.logs.indexOf(l) >= seen);
    const connectionId = String(first.logs.find((l) => l.msg === 'connection authenticated')?.['connectionId']);
    assert.equal(await first.stop('SIGKILL'), null);
    await clientExit;
    assert.ok(existsSync(join(spool.path, connectionId, 'audit.airlock.spool')));
    assert.ok(!existsSync(join(spool.path, connectionId, 'manifest.json')), 'not sealed: the gateway died');

    const second = await keyGateway(fx, audit);
    gateways.push(second);
    const stored = await second.waitForLog((l) => l.msg === 'recording stored' && l['connectionId'] === connectionId, 60_000);
    assert.equal(stored['complete'], false);
    assert.ok(second.logs.some((l) => l.msg === 'recording sealed as incomplete' && l['connectionId'] === connectionId));
    assert.deepEqual(readdirSync(spool.path).filter((n) => !n.startsWith('.')), []);

    const prefix = `${connectionId}/`;
    const manifest = parseManifest((await s3.get(prefix + 'manifest.json')).toString('utf8'), 'manifest');
    assert.equal(manifest.complete, false);
    assert.equal(manifest.incompleteReason, CRASH_REASON);
    assert.equal(manifest.identity?.username, 'alice');
    assert.deepEqual(manifest.channels.map((c) => [c.kind, c.command]), [['exec', 'echo before-crash-marker; sleep 600']]);
    const binary = gunzipSync((await s3.get(prefix + 'audit.airlock')).subarray(40), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    assert.ok(binary.includes('before-crash-marker'));
    assert.match((await s3.get(prefix + 'channel-0.cast')).toString(), /before-crash-marker/);
    assert.deepEqual(parseCommandLog((await s3.get(prefix + 'commands.jsonl')).toString()).map((c) => c.command), ['echo before-crash-marker; sleep 600']);
    const v = await verifyRecording(s3Source(s3.client, `s3://${s3.bucket}/${prefix}`), String(stored['digest']));
    assert.deepEqual(v.problems, []);
    assert.equal(v.complete, false);
    // The container of the killed gateway was reaped by the new one at start-up.
    assert.deepEqual(await first.containers(), []);
  });
});
