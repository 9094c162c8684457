/**
 * SFTP and scp through the gateway with the real OpenSSH `sftp` and `scp` (which speaks SFTP
 * since OpenSSH 9), against real Docker:
 * - images without sftp-server (busybox; Debian with the configured binary missing): the gateway
 *   serves SFTP itself over exec'd POSIX tools, as the session's user;
 * - the Debian demo image with openssh-sftp-server: the subsystem runs inside the container.
 * Both modes; a 64 MiB round trip with sha256 both ways, with sftp and with scp (the MB/s are
 * printed as diagnostics);
 * permission errors reach the client as errors, not hangs; read-only root fs with a tmpfs;
 * file operations in the audit recording; no container left behind.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { ensureDemoImage, DEMO_IMAGE } from '../helpers/docker.js';
import { remotePath, scp, sftpBatch, ssh, startSshMaster } from '../helpers/ssh.js';
import type { TestGateway } from '../helpers/gateway.js';
import { AuditType, parseManifest, scanBinary } from '../../src/audit/index.js';
import type { AuditMessage } from '../../src/audit/format/binary-format.js';

const MiB = 1024 * 1024;

/** A local scratch directory for the files sent and received. */
function scratch(): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'airlock-sftp-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

async function randomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let left = size; left > 0; left -= MiB) {
      const chunk = randomBytes(Math.min(MiB, left));
      hash.update(chunk);
      await fh.write(chunk);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

const user = (suite: { fx: { alice: { path: string } } }) => ({ user: 'alice', identity: suite.fx.alice.path });

/** A 64 MiB file up and back down through one connection, timed each way. */
async function roundTrip64(t: TestContext, gw: TestGateway, who: { user: string; identity: string }, dir: string, remote: string): Promise<void> {
  const local = join(dir, 'big.bin');
  const back = join(dir, 'big.back');
  const digest = await randomFile(local, 64 * MiB);
  const master = await startSshMaster(gw, who);
  try {
    const through = { ...who, args: master.muxArgs };
    const upStart = performance.now();
    const up = await sftpBatch(gw, through, [`put ${local} ${remote}`]);
    const upMs = performance.now() - upStart;
    assert.equal(up.code, 0, up.stderr);
    const downStart = performance.now();
    const down = await sftpBatch(gw, through, [`get ${remote} ${back}`]);
    const downMs = performance.now() - downStart;
    assert.equal(down.code, 0, down.stderr);
    // The copy in the container is checked by the container's own sha256sum too.
    const inside = await ssh(gw, { ...through, command: `sha256sum ${remote}` });
    assert.equal(inside.stdout.toString().split(' ')[0], digest, inside.stderr);
    assert.equal(await sha256(back), digest);
    t.diagnostic(`64 MiB up ${(64 / (upMs / 1000)).toFixed(1)} MiB/s, down ${(64 / (downMs / 1000)).toFixed(1)} MiB/s (each including one sftp start)`);
  } finally {
    await master.stop();
  }
}

async function auditMessages(dir: string): Promise<AuditMessage[]> {
  const out: AuditMessage[] = [];
  await scanBinary([await readFile(join(dir, 'audit.airlock'))], (m) => {
    out.push(m);
  });
  return out;
}

describe('sftp on busybox (no sftp-server): the gateway serves SFTP, connection mode', () => {
  const storage = scratch();
  const suite = keyGatewaySuite({ audit: { enable: true, format: 'binary', storage: 'file', file: { directory: storage.path } } });
  const local = scratch();
  after(() => {
    local.cleanup();
    storage.cleanup();
  });

  it('ls, put, get, mkdir, rename, chmod, ln -s, rm and rmdir with the real sftp client', async () => {
    const src = join(local.path, 'notes.txt');
    await writeFile(src, 'hello from the laptop\n'.repeat(1000));
    await utimes(src, 1_000_000_000, 1_000_000_000); // 2001-09-09, for `put -p`
    const r = await sftpBatch(suite.gw, user(suite), [
      'pwd',
      'mkdir work',
      `put -p ${src} work/notes.txt`,
      'chmod 640 work/notes.txt',
      'ls -l work',
      'rename work/notes.txt work/renamed.txt',
      'ln -s renamed.txt work/link',
      `get work/link ${join(local.path, 'via-link.txt')}`,
      'ls -la work',
      'rm work/renamed.txt',
      'rm work/link',
      'rmdir work',
      'ls -a',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.match(out, /Remote working directory: \/home\/airlock/);
    // put -p kept the time (set after the last write landed), chmod the mode.
    assert.match(out, /-rw-r-----\s+1 airlock\s+airlock\s+22000 Sep  9  2001 notes\.txt/);
    assert.match(out, /lrwxrwxrwx .* link\n/);
    assert.match(out, /-rw-r-----.* renamed\.txt/);
    // The final `ls -a` shows no leftovers in the home directory.
    assert.deepEqual(out.slice(out.lastIndexOf('sftp> ls -a')).split(/\s+/).slice(3).filter(Boolean), ['.', '..']);
    assert.equal(await readFile(join(local.path, 'via-link.txt'), 'utf8'), 'hello from the laptop\n'.repeat(1000));
    assert.ok(suite.gw.logs.some((l) => l.msg === 'session program started' && l['servedBy'] === 'gateway'));
  });

  it('a 64 MiB file round trip keeps its sha256', async (t) => {
    await roundTrip64(t, suite.gw, user(suite), local.path, '/home/airlock/big.bin');
  });

  it('writing where the user may not gives the client an error, not a hang; files belong to the user', async () => {
    const src = join(local.path, 'small.txt');
    await writeFile(src, 'x');
    const put = await sftpBatch(suite.gw, { ...user(suite), timeoutMs: 30_000 }, [`put ${src} /denied.txt`]);
    assert.equal(put.code, 1, put.stderr);
    assert.match(put.stderr, /dest open "\/denied\.txt": Permission denied/);
    const mk = await sftpBatch(suite.gw, { ...user(suite), timeoutMs: 30_000 }, ['mkdir /etc/denied']);
    assert.equal(mk.code, 1);
    assert.match(mk.stderr, /Permission denied/);
    const get = await sftpBatch(suite.gw, { ...user(suite), timeoutMs: 30_000 }, [`get /root/anything ${join(local.path, 'nothing')}`]);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /Permission denied|not found/);
    // What the client creates belongs to the session's user (uid 1000), as what a shell creates.
    const master = await startSshMaster(suite.gw, user(suite));
    try {
      const through = { ...user(suite), args: master.muxArgs };
      const setup = await ssh(suite.gw, { ...through, command: 'echo secret > mine.txt && chmod 600 mine.txt && ls -ln mine.txt' });
      assert.match(setup.stdout.toString(), / 1000 +1000 /);
      const upload = await sftpBatch(suite.gw, through, [`put ${src} uploaded.txt`]);
      assert.equal(upload.code, 0, upload.stderr);
      const owner = await ssh(suite.gw, { ...through, command: 'stat -c "%u:%g %a" uploaded.txt' });
      assert.equal(owner.stdout.toString().trim(), '1000:1000 644');
    } finally {
      await master.stop();
    }
  });

  it('a client that does not speak SFTP gets the channel closed, and the gateway carries on', async () => {
    const garbage = await ssh(suite.gw, { ...user(suite), command: 'sftp', args: ['-s'], input: Buffer.from('this is not an SFTP packet\n'), timeoutMs: 30_000 });
    assert.notEqual(garbage.code, null, 'the channel was closed');
    await suite.gw.waitForLog((l) => l.msg === 'sftp protocol error; channel closed');
    const after = await sftpBatch(suite.gw, user(suite), ['pwd']);
    assert.equal(after.code, 0, after.stderr);
  });

  it('scp: a 64 MiB round trip through one connection keeps its sha256 (OpenSSH scp speaks SFTP)', async (t) => {
    const src = join(local.path, 'scp.bin');
    // Not a multiple of any buffer size: the last partial block must arrive too.
    const size = 64 * MiB + 17;
    const digest = await randomFile(src, size);
    const master = await startSshMaster(suite.gw, user(suite));
    try {
      const through = { ...user(suite), args: master.muxArgs };
      let started = Date.now();
      const up = await scp(suite.gw, through, [src, remotePath('alice', 'copied.bin')]);
      const upMs = Date.now() - started;
      assert.equal(up.code, 0, up.stderr);
      const inside = await ssh(suite.gw, { ...through, command: 'sha256sum copied.bin' });
      assert.equal(inside.stdout.toString().split(' ')[0], digest);
      const back = join(local.path, 'scp.back');
      started = Date.now();
      const down = await scp(suite.gw, through, [remotePath('alice', '/home/airlock/copied.bin'), back]);
      const downMs = Date.now() - started;
      assert.equal(down.code, 0, down.stderr);
      assert.equal((await stat(back)).size, size);
      assert.equal(await sha256(back), digest);
      t.diagnostic(`scp 64 MiB up ${(64 / (upMs / 1000)).toFixed(1)} MiB/s, down ${(64 / (downMs / 1000)).toFixed(1)} MiB/s`);
      await ssh(suite.gw, { ...through, command: 'rm copied.bin' });
      const denied = await scp(suite.gw, through, [src, remotePath('alice', '/copied.bin')]);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /Permission denied/);
    } finally {
      await master.stop();
    }
  });

  it('records the file operations in the audit recording (no contents)', async () => {
    const src = join(local.path, 'audited.txt');
    await writeFile(src, 'abcdef');
    const r = await sftpBatch(suite.gw, user(suite), ['mkdir audit-dir', `put ${src} audit-dir/a.txt`, 'rename audit-dir/a.txt audit-dir/b.txt', 'ls audit-dir', 'rm audit-dir/b.txt', 'rmdir audit-dir']);
    assert.equal(r.code, 0, r.stderr);
    // The recording is stored once the connection has closed.
    let ops: Array<Record<string, unknown>> = [];
    const deadline = Date.now() + 30_000;
    while (ops.length === 0 && Date.now() < deadline) {
      for (const line of suite.gw.logs.filter((l) => l.msg === 'recording stored')) {
        const dir = String(line['location']);
        const manifest = parseManifest(await readFile(join(dir, 'manifest.json'), 'utf8'), dir);
        if (!manifest.channels.some((c) => c.kind === 'subsystem')) continue;
        const found = (await auditMessages(dir)).filter((m) => m.type === AuditType.FileOperation).map((m) => m.payload);
        if (found.some((p) => p['path'] === '/home/airlock/audit-dir')) ops = found;
      }
      if (ops.length === 0) {
        const seen = suite.gw.logs.length;
        await suite.gw.waitForLog((l) => l.msg === 'recording stored' && suite.gw.logs.indexOf(l) >= seen, 10_000).catch(() => undefined);
      }
    }
    assert.deepEqual(
      ops.map((p) => [p['op'], p['path']]),
      [
        ['mkdir', '/home/airlock/audit-dir'],
        ['open', '/home/airlock/audit-dir/a.txt'],
        ['close', '/home/airlock/audit-dir/a.txt'],
        ['rename', '/home/airlock/audit-dir/a.txt'],
        ['opendir', '/home/airlock/audit-dir'],
        ['remove', '/home/airlock/audit-dir/b.txt'],
        ['rmdir', '/home/airlock/audit-dir'],
      ],
    );
    assert.equal(ops[2]?.['bytesWritten'], 6);
    assert.equal(ops[3]?.['to'], '/home/airlock/audit-dir/b.txt');
    assert.ok(!JSON.stringify(ops).includes('abcdef'), 'file contents are not recorded');
  });
});

describe('sftp on busybox, session mode (a container per channel)', () => {
  const suite = keyGatewaySuite({ docker: { execution: { mode: 'session' } } });
  const local = scratch();
  after(() => local.cleanup());

  it('one sftp session: mkdir, put, ls, get, rm in its own container, removed when it ends', async () => {
    const src = join(local.path, 'file.bin');
    const digest = await randomFile(src, 5 * MiB);
    const back = join(local.path, 'file.back');
    const r = await sftpBatch(suite.gw, user(suite), ['mkdir d', `put ${src} d/file.bin`, 'ls -l d', `get d/file.bin ${back}`, 'rm d/file.bin', 'rmdir d']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /airlock\s+airlock\s+5242880 .* file\.bin/);
    assert.equal(await sha256(back), digest);
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
    assert.ok(suite.gw.logs.some((l) => l.msg === 'file access container started'));
  });

  it('scp uploads (SFTP) and a permission error is reported', async () => {
    const src = join(local.path, 'up.txt');
    await writeFile(src, 'up');
    const up = await scp(suite.gw, user(suite), [src, remotePath('alice', 'up.txt')]);
    assert.equal(up.code, 0, up.stderr);
    const denied = await scp(suite.gw, { ...user(suite), timeoutMs: 30_000 }, [src, remotePath('alice', '/up.txt')]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Permission denied/);
    const down = await scp(suite.gw, user(suite), [remotePath('alice', '/etc/passwd'), join(local.path, 'passwd')]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(await readFile(join(local.path, 'passwd'), 'utf8'), /^airlock:x:1000:1000:/m);
  });
});

describe('sftp on a read-only root fs with a tmpfs', () => {
  const suite = keyGatewaySuite({ docker: { execution: { host: { readonlyRootfs: true, tmpfs: { '/tmp': 'size=64m,mode=1777' } } } } });
  const local = scratch();
  after(() => local.cleanup());

  it('writes into the tmpfs (where the archive API cannot), fails on the read-only root', async () => {
    const src = join(local.path, 'scratch.bin');
    const digest = await randomFile(src, 2 * MiB);
    const back = join(local.path, 'scratch.back');
    const ok = await sftpBatch(suite.gw, user(suite), [`put ${src} /tmp/scratch.bin`, `get /tmp/scratch.bin ${back}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await sha256(back), digest);
    const ro = await sftpBatch(suite.gw, { ...user(suite), timeoutMs: 30_000 }, [`put ${src} /home/airlock/scratch.bin`]);
    assert.equal(ro.code, 1);
    assert.match(ro.stderr, /dest open "\/home\/airlock\/scratch\.bin": Failure/);
  });
});

describe('sftp on the Debian image with openssh-sftp-server: the subsystem runs in the container', () => {
  const suite = keyGatewaySuite({ docker: { execution: { container: { image: DEMO_IMAGE } } } });
  const local = scratch();
  before(async () => {
    await ensureDemoImage();
  });
  after(() => local.cleanup());

  it('a 64 MiB file round trip keeps its sha256', async (t) => {
    await roundTrip64(t, suite.gw, user(suite), local.path, '/home/dev/big.bin');
    const started = suite.gw.logs.filter((l) => l.msg === 'session program started' && l['kind'] === 'subsystem');
    assert.ok(started.length >= 2, 'the sftp sessions ran as subsystem programs');
    assert.ok(started.every((l) => l['servedBy'] === undefined), 'none was served by the gateway');
  });

  it('scp and a permission error, as in-container sftp-server reports it', async () => {
    const src = join(local.path, 'small.txt');
    await writeFile(src, 'small');
    const up = await scp(suite.gw, user(suite), [src, remotePath('alice', 'small.txt')]);
    assert.equal(up.code, 0, up.stderr);
    const denied = await sftpBatch(suite.gw, { ...user(suite), timeoutMs: 30_000 }, [`put ${src} /denied.txt`]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Permission denied/);
  });
});

describe('sftp on Debian without the configured sftp-server: the gateway serves it with dash and coreutils', () => {
  const suite = keyGatewaySuite({
    docker: { execution: { container: { image: DEMO_IMAGE }, subsystems: { sftp: '/usr/lib/openssh/not-installed' }, mode: 'session' } },
  });
  const local = scratch();
  before(async () => {
    await ensureDemoImage();
  });
  after(() => local.cleanup());

  it('the same operations work with the other tool set, in session mode', async () => {
    const src = join(local.path, 'deb.bin');
    const digest = await randomFile(src, 4 * MiB + 3);
    const back = join(local.path, 'deb.back');
    const r = await sftpBatch(suite.gw, user(suite), [
      'mkdir deb',
      `put ${src} deb/a.bin`,
      'rename deb/a.bin deb/b.bin',
      'ls -l deb',
      `get deb/b.bin ${back}`,
      'rm deb/b.bin',
      'rmdir deb',
      '-put /etc/hostname /denied',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /dev\s+dev\s+4194307 .* b\.bin/);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(await sha256(back), digest);
    assert.equal((await stat(back)).size, 4 * MiB + 3);
    assert.ok(suite.gw.logs.some((l) => l.msg === 'session program started' && l['servedBy'] === 'gateway'));
  });
});
