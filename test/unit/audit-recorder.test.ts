/**
 * The recorder on a real spool directory with file storage: what a recording contains, what it
 * never contains, stream interception, the overflow policy, crash recovery (a child process
 * killed with SIGKILL mid-recording), and the bounded upload queue (storage held back).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { pino, type Logger } from 'pino';
import { parseConfig } from '../../src/config/index.js';
import type { AuditConfig } from '../../src/config/schema.js';
import { AuditType, CRASH_REASON, createRecorder, localSource, parseCast, parseCommandLog, parseManifest, scanBinary, verifyRecording } from '../../src/audit/index.js';
import type { ConnectionInfo } from '../../src/backend/backend.js';
import { createFileStorage } from '../../src/audit/storage/file-storage.js';
import type { AuditStorage } from '../../src/audit/storage/storage.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../..');

function auditConfig(directory: string, audit: Record<string, unknown> = {}): AuditConfig {
  return parseConfig(
    { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'keys' } }, audit: { enable: true, storage: 'file', file: { directory }, ...audit } },
    'test',
  ).audit;
}

function capture(): { logger: Logger; lines: Array<Record<string, unknown>>; onLine: Set<() => void> } {
  const lines: Array<Record<string, unknown>> = [];
  const onLine = new Set<() => void>();
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      for (const f of [...onLine]) f();
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines, onLine };
}

/** Resolves once `lines` (a capture()) holds `count` lines matching `match`; re-checked on every log line. */
function logCount(cap: { lines: Array<Record<string, unknown>>; onLine: Set<() => void> }, match: (l: Record<string, unknown>) => boolean, count: number): Promise<void> {
  return new Promise((resolveWait) => {
    const check = () => {
      if (cap.lines.filter(match).length < count) return;
      cap.onLine.delete(check);
      resolveWait();
    };
    cap.onLine.add(check);
    check();
  });
}

const info = (connectionId: string): ConnectionInfo => ({
  connectionId,
  loginUsername: 'alice',
  username: 'alice',
  remoteAddress: '127.0.0.1:40000',
  clientVersion: 'SSH-2.0-OpenSSH_9.6',
  metadata: {
    commit_sha: { value: 'deadbeef1234', sensitive: false },
    pr_number: { value: '42', sensitive: false },
    github_token: { value: 'ghp_TOPSECRETVALUE', sensitive: true },
  },
  environment: { API_KEY: { value: 'ENVSECRET', sensitive: true } },
  files: {},
});

/** Every byte a recording directory holds, binary decompressed. */
function allText(dir: string): string {
  return readdirSync(dir)
    .map((name) => {
      const b = readFileSync(join(dir, name));
      // A crashed recording's gzip stream has no trailer: decode what is there.
      return name.endsWith('.airlock') ? gunzipSync(b.subarray(40), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('latin1') : b.toString('utf8');
    })
    .join('\n');
}

describe('recorder (file storage)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('airlock-audit-unit-');
  });
  after(async () => {
    await tmp.cleanup();
  });

  it('records events, I/O, casts and typed commands; never sensitive metadata; verifies', async () => {
    const dir = join(tmp.path, 'full');
    const { logger, lines } = capture();
    const recorder = await createRecorder(auditConfig(dir, { format: 'both' }), { logger });
    const r = recorder.begin('conn1', '127.0.0.1:40000');
    assert.deepEqual(r.captures, { stdin: true, stdout: true, stderr: true, forwarding: false });
    r.event(AuditType.Connect, null, { remoteAddress: '127.0.0.1:40000' });
    r.event(AuditType.PubkeySuccess, null, { username: 'alice', fingerprint: 'SHA256:xyz' });
    r.identify(info('conn1'));
    r.event(AuditType.NewChannelSuccessful, 0, { type: 'session' });
    r.event(AuditType.ChannelRequestExec, 0, { command: 'cat /etc/os-release' });
    r.io(0, 1, Buffer.from('NAME=busybox\n'));
    r.io(0, 2, Buffer.from('warning\n'));
    r.event(AuditType.ExitStatus, 0, { exitStatus: 0 });
    r.event(AuditType.Close, 0, {});
    r.event(AuditType.ChannelRequestPty, 1, { term: 'xterm-256color', cols: 120, rows: 40 });
    r.event(AuditType.ChannelRequestShell, 1, {});
    r.io(1, 0, Buffer.from('echo hi'));
    r.io(1, 1, Buffer.from('echo hi'));
    r.io(1, 0, Buffer.from('\r'));
    r.io(1, 1, Buffer.from('\r\nhi\r\n$ '));
    r.event(AuditType.ChannelRequestWindow, 1, { cols: 100, rows: 30 });
    r.io(1, 1, Buffer.from('\x1b[?1049h'));
    r.io(1, 0, Buffer.from(':wq\r'));
    r.io(1, 1, Buffer.from('\x1b[?1049l$ '));
    r.io(1, 0, Buffer.from('exit\r'));
    r.event(AuditType.ExitStatus, 1, { exitStatus: 0 });
    r.event(AuditType.Close, 1, {});
    r.event(AuditType.Disconnect, null, { reason: 'client disconnected' });
    await r.close();
    await recorder.close();

    const rec = join(dir, 'conn1');
    assert.deepEqual(readdirSync(rec).sort(), ['audit.airlock', 'channel-0.cast', 'channel-1.cast', 'commands.jsonl', 'manifest.json']);
    assert.deepEqual(readdirSync(join(dir, '.spool')), [], 'the spool copy is gone once stored');
    const manifest = parseManifest(readFileSync(join(rec, 'manifest.json'), 'utf8'), 'm');
    assert.equal(manifest.complete, true);
    assert.deepEqual(manifest.identity?.metadata, { commit_sha: 'deadbeef1234', pr_number: '42' });
    assert.deepEqual(
      manifest.channels.map((c) => [c.channelId, c.kind, c.command, c.exit?.status]),
      [
        [0, 'exec', 'cat /etc/os-release', 0],
        [1, 'shell', undefined, 0],
      ],
    );
    const commands = parseCommandLog(readFileSync(join(rec, 'commands.jsonl'), 'utf8'));
    assert.deepEqual(
      commands.map((c) => [c.channelId, c.kind, c.command]),
      [
        [0, 'exec', 'cat /etc/os-release'],
        [1, 'typed', 'echo hi'],
        [1, 'typed', 'exit'],
      ],
      'keys typed in a full-screen program (:wq) are not commands',
    );
    const cast = parseCast(readFileSync(join(rec, 'channel-1.cast'), 'utf8'));
    assert.equal(cast.header.width, 120);
    assert.equal(cast.header.height, 40);
    assert.deepEqual(cast.header.env, { TERM: 'xterm-256color' });
    assert.ok(cast.events.some(([, code, data]) => code === 'r' && data === '100x30'));
    assert.ok(cast.events.some(([, code, data]) => code === 'o' && data.includes('hi')));
    const exec = parseCast(readFileSync(join(rec, 'channel-0.cast'), 'utf8'));
    assert.equal(exec.header.title, 'cat /etc/os-release');
    assert.equal(exec.events.map(([, , d]) => d).join(''), 'NAME=busybox\nwarning\n');

    const text = allText(rec);
    for (const secret of ['TOPSECRETVALUE', 'ENVSECRET', 'github_token', 'API_KEY']) assert.ok(!text.includes(secret), `${secret} leaked into the recording`);
    assert.ok(text.includes('deadbeef1234'));
    const sealed = lines.find((l) => l['msg'] === 'recording sealed');
    assert.equal(sealed?.['digest'], manifest.digest);
    assert.ok(!JSON.stringify(lines).includes('TOPSECRET'));

    const v = await verifyRecording(localSource(rec), manifest.digest);
    assert.deepEqual(v.problems, []);
    assert.equal(v.ok, true);
  });

  it('audit.intercept: unrecorded streams are not kept; with none, no I/O tap at all', async () => {
    const dir = join(tmp.path, 'intercept');
    const { logger } = capture();
    const recorder = await createRecorder(auditConfig(dir, { format: 'both', intercept: { stdin: false, stderr: false } }), { logger });
    const r = recorder.begin('conn2', '127.0.0.1:1');
    // What the login notice names (src/ssh/login-notice.ts).
    assert.deepEqual(r.captures, { stdin: false, stdout: true, stderr: false, forwarding: false });
    r.event(AuditType.ChannelRequestShell, 0, {});
    r.io(0, 0, Buffer.from('typed-secret-input\r'));
    r.io(0, 1, Buffer.from('visible-output'));
    r.io(0, 2, Buffer.from('hidden-stderr'));
    r.event(AuditType.Close, 0, {});
    await r.close();
    const none = await createRecorder(auditConfig(join(tmp.path, 'intercept-none'), { intercept: { stdin: false, stdout: false, stderr: false } }), { logger });
    const r2 = none.begin('conn3', '127.0.0.1:2');
    assert.deepEqual(r2.captures, { stdin: false, stdout: false, stderr: false, forwarding: false });
    await r2.close();
    await none.close();
    await recorder.close();
    const text = allText(join(dir, 'conn2'));
    assert.ok(text.includes('visible-output'));
    assert.ok(!text.includes('typed-secret-input'));
    assert.ok(!text.includes('hidden-stderr'));
    assert.ok(!existsSync(join(dir, 'conn2', 'commands.jsonl')), 'no stdin, no typed-command reconstruction');
  });

  it('a full queue drops I/O (counted, marked) instead of slowing the session', async () => {
    const dir = join(tmp.path, 'overflow');
    const { logger, lines } = capture();
    const recorder = await createRecorder(auditConfig(dir, { queueSize: 64 * 1024 }), { logger });
    const r = recorder.begin('conn4', '127.0.0.1:3');
    r.event(AuditType.ChannelRequestExec, 0, { command: 'yes' });
    const chunk = Buffer.alloc(4096, 0x79);
    // All in one tick: nothing is written yet, so only 16 chunks fit in 64 KiB.
    for (let i = 0; i < 100; i++) r.io(0, 1, chunk);
    await new Promise((res) => setTimeout(res, 50));
    r.io(0, 1, Buffer.from('after the overflow'));
    await r.close();
    await recorder.close();
    const manifest = parseManifest(readFileSync(join(dir, 'conn4', 'manifest.json'), 'utf8'), 'm');
    assert.deepEqual(manifest.dropped, { messages: 84, bytes: 84 * 4096 });
    assert.equal(manifest.complete, false);
    assert.match(manifest.incompleteReason ?? '', /84 I\/O chunks .*audit\.queueSize/);
    assert.ok(lines.some((l) => l['code'] === 'AUDIT_QUEUE_OVERFLOW'));
    const text = allText(join(dir, 'conn4'));
    assert.ok(text.includes('after the overflow'));
    assert.ok(text.includes('droppedMessages'), 'a RecordingGap message marks the hole');
    const v = await verifyRecording(localSource(join(dir, 'conn4')));
    assert.equal(v.ok, true);
    assert.equal(v.complete, false);
  });

  it('a recording left by a killed process is sealed as incomplete and stored at the next start', async () => {
    const dir = join(tmp.path, 'crash');
    const script = `
      import { pino } from 'pino';
      import { parseConfig } from '${ROOT}/src/config/index.ts';
      import { createRecorder, AuditType } from '${ROOT}/src/audit/index.ts';
      const audit = parseConfig({ auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'k' } }, audit: { enable: true, storage: 'file', format: 'both', file: { directory: ${JSON.stringify(dir)} } } }, 't').audit;
      const recorder = await createRecorder(audit, { logger: pino({ level: 'silent' }), checkpointIntervalMs: 3600000 });
      const r = recorder.begin('crashed1', '127.0.0.1:9');
      r.event(AuditType.ChannelRequestShell, 0, {});
      r.io(0, 0, Buffer.from('whoami\\r'));
      r.io(0, 1, Buffer.from('checkpointed-output'));
      await new Promise((res) => setImmediate(res));
      await r.checkpoint();
      r.io(0, 1, Buffer.from('lost-after-checkpoint'));
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.ok(existsSync(join(dir, '.spool', 'crashed1', 'audit.airlock.spool')), 'the uncompressed spool file');
    assert.ok(!existsSync(join(dir, '.spool', 'crashed1', 'manifest.json')));

    const { logger, lines } = capture();
    const recorder = await createRecorder(auditConfig(dir, { format: 'both' }), { logger });
    await recorder.close();
    const rec = join(dir, 'crashed1');
    const manifest = parseManifest(readFileSync(join(rec, 'manifest.json'), 'utf8'), 'm');
    assert.equal(manifest.complete, false);
    assert.equal(manifest.incompleteReason, CRASH_REASON);
    assert.ok(lines.some((l) => l['msg'] === 'recording sealed as incomplete'));
    const text = allText(rec);
    assert.ok(text.includes('checkpointed-output'));
    assert.deepEqual(parseCommandLog(readFileSync(join(rec, 'commands.jsonl'), 'utf8')).map((c) => c.command), ['whoami']);
    const v = await verifyRecording(localSource(rec), manifest.digest);
    assert.deepEqual(v.problems, []);
    assert.equal(v.complete, false);
    // The binary is self-contained: its own seal says incomplete, with the reason.
    const scan = await scanBinary([readFileSync(join(rec, 'audit.airlock'))]);
    assert.deepEqual(scan.problems, []);
    assert.equal(scan.truncated, false);
    assert.equal(scan.seal?.complete, false);
    assert.equal(scan.seal?.reason, CRASH_REASON);
  });

  it('a full upload queue leaves recordings on the spool and picks them up when there is room; parallelUploads holds for file storage', async () => {
    const dir = join(tmp.path, 'backlog');
    const cap = capture();
    const files = createFileStorage(dir);
    let open!: () => void;
    const gate = new Promise<void>((res) => (open = res));
    let inFlight = 0;
    let maxInFlight = 0;
    const stored: string[] = [];
    // Holds every store until the gate opens (storage down), then stores for real.
    const held: AuditStorage = {
      kind: 'file',
      movesSpool: true,
      async store(recording, signal) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await gate;
          const where = await files.store(recording, signal);
          stored.push(recording.manifest.connectionId);
          return where;
        } finally {
          inFlight--;
        }
      },
    };
    const recorder = await createRecorder(auditConfig(dir, { uploadQueueSize: 2, file: { directory: dir, parallelUploads: 1 } }), { logger: cap.logger, storage: held });
    const ids = Array.from({ length: 8 }, (_, i) => `backlog${i}`);
    for (const id of ids) {
      const r = recorder.begin(id, '127.0.0.1:4');
      r.event(AuditType.ChannelRequestExec, 0, { command: `echo ${id}` });
      r.io(0, 1, Buffer.from(`${id}\n`));
      await r.close();
    }
    await logCount(cap, (l) => l['msg'] === 'recording sealed', ids.length);
    // One uploading, two waiting in memory; the other five only on the spool, sealed.
    assert.equal(recorder.stats().uploads.pending, 3);
    assert.deepEqual(cap.lines.filter((l) => l['code'] === 'AUDIT_UPLOAD_BACKLOG').length, 1);
    const spool = join(dir, '.spool');
    assert.deepEqual(readdirSync(spool).filter((n) => !n.startsWith('.')).sort(), ids);
    assert.ok(ids.every((id) => existsSync(join(spool, id, 'manifest.json'))));

    open();
    await logCount(cap, (l) => l['msg'] === 'recording stored', ids.length);
    assert.deepEqual([...stored].sort(), ids);
    assert.equal(maxInFlight, 1, 'audit.file.parallelUploads: 1');
    assert.ok(cap.lines.some((l) => l['msg'] === 'upload queue has room again: queueing recordings left on the spool'));
    assert.deepEqual(readdirSync(spool).filter((n) => !n.startsWith('.')), []);
    for (const id of ids) assert.ok(existsSync(join(dir, id, 'manifest.json')), id);
    await recorder.close();
  });
});
