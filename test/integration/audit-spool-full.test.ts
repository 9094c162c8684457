/**
 * Spool disk full (a small tmpfs mounted by the test): with the default `audit.onFailure: deny`
 * new sessions are refused with one clear line and no container; a session that fills the disk
 * mid-way keeps running, and its recording is sealed as incomplete once space is back;
 * with `allow` sessions continue unrecorded, loudly logged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/ssh.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { localSource, parseManifest, verifyRecording } from '../../src/audit/index.js';

const run = promisify(execFile);
const REFUSED_LINE = 'airlock: sessions cannot be recorded right now, so none are allowed; try again later [AUDIT_UNAVAILABLE]';

const free = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Fills the file system of `dir` completely with one file. */
async function fill(path: string): Promise<void> {
  try {
    await writeFile(path, Buffer.alloc(free(join(path, '..')) + 65536));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
}

describe('spool disk full', () => {
  let fx: KeyFixture;
  let mount: { path: string; cleanup: () => Promise<void> };
  const gateways: TestGateway[] = [];

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    mount = await tempDir('airlock-tmpfs-');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount.path]);
  });
  after(async () => {
    for (const gw of gateways) await gw.stop();
    await run('umount', [mount.path]).catch(() => undefined);
    await mount?.cleanup();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('deny (default): refused with the reason, no container; a session that fills the disk keeps running', async () => {
    const storage = join(mount.path, 'deny');
    await mkdir(storage);
    const gw = await keyGateway(fx, { audit: { enable: true, storage: 'file', file: { directory: storage } } });
    gateways.push(gw);

    const filler = join(mount.path, 'filler');
    await fill(filler);
    const refused = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo should-not-run' });
    assert.equal(refused.code, 255);
    assert.equal(refused.stdout.toString(), '');
    assert.ok(refused.stderr.includes(REFUSED_LINE), refused.stderr);
    const logged = await gw.waitForLog((l) => l['code'] === 'AUDIT_UNAVAILABLE');
    assert.equal(logged.msg, 'recording cannot start');
    assert.match(JSON.stringify(logged['err']), /the spool .*\.spool is full \(\d+ bytes free\)/);
    assert.deepEqual(await gw.containers(), [], 'no workload for an unrecordable connection');

    // Space is back: sessions are recorded again.
    await rm(filler);
    const ok = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo recorded-again' });
    assert.equal(ok.code, 0, ok.stderr);
    await gw.waitForLog((l) => l.msg === 'recording stored');

    // A session whose output fills the disk: it is never slowed or cut; the recording stops.
    const ballast = join(mount.path, 'ballast');
    // The ballast stands for space an operator frees later: it must exceed what the recording
    // wrote before the disk filled, since sealing compresses that into a new file.
    await writeFile(ballast, Buffer.alloc(5 * 1024 * 1024));
    const big = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo filling; head -c 8000000 /dev/urandom' });
    assert.equal(big.code, 0, big.stderr);
    assert.equal(big.stdout.length, 'filling\n'.length + 8_000_000);
    const failed = await gw.waitForLog((l) => l['code'] === 'AUDIT_SPOOL_WRITE_FAILED' && l['errno'] === 'ENOSPC');
    const connectionId = String(failed['connectionId']);
    const after = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'true' });
    assert.ok(after.stderr.includes(REFUSED_LINE), 'the disk is full again: new sessions are refused');

    await rm(ballast);
    await gw.stop();
    const manifest = parseManifest(await readFile(join(storage, connectionId, 'manifest.json'), 'utf8'), 'manifest');
    assert.equal(manifest.complete, false);
    assert.match(manifest.incompleteReason ?? '', /ENOSPC/);
    assert.ok(gw.logs.some((l) => l.msg === 'recording stored' && l['connectionId'] === connectionId));
    const v = await verifyRecording(localSource(join(storage, connectionId)), manifest.digest);
    assert.deepEqual(v.problems, []);
    assert.equal(v.complete, false);
    await rm(storage, { recursive: true });
  });

  it('allow: the session runs unrecorded and the gateway says so', async () => {
    const storage = join(mount.path, 'allow');
    await mkdir(storage);
    const gw = await keyGateway(fx, { audit: { enable: true, storage: 'file', file: { directory: storage }, onFailure: 'allow' } });
    gateways.push(gw);
    const filler = join(mount.path, 'filler2');
    await fill(filler);
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo runs-unrecorded' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'runs-unrecorded\n');
    const logged = await gw.waitForLog((l) => l['code'] === 'AUDIT_UNAVAILABLE');
    assert.equal(logged.level, 'error');
    assert.equal(logged.msg, 'recording impossible; audit.onFailure is allow, so the connection continues UNRECORDED');
    assert.equal(gw.logs.filter((l) => l.msg === 'recording sealed').length, 0);
    await rm(filler);
  });
});
