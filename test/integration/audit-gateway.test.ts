/**
 * Recording through the front door: the real OpenSSH client (exec, and an interactive shell in
 * a tmux terminal) through `airlock serve` with file storage. Checks the events and their
 * ContainerSSH numbers, the per-channel asciicast (played by Debian's real `asciinema cat`), the
 * typed-command log, `audit.intercept`, and the `airlock audit` CLI on what was recorded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { once } from 'node:events';
import ssh2 from 'ssh2';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh, sshArgs } from '../helpers/ssh.js';
import { openTerminal } from '../helpers/tmux.js';
import { assertNoGatewayLeaks, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { airlock } from '../helpers/airlock-cli.js';
import { AuditType, listLocal, parseManifest, scanBinary, type Manifest } from '../../src/audit/index.js';
import type { AuditMessage } from '../../src/audit/format/binary-format.js';

const run = promisify(execFile);

async function messages(dir: string): Promise<AuditMessage[]> {
  const out: AuditMessage[] = [];
  await scanBinary([await readFile(join(dir, 'audit.airlock'))], (m) => {
    out.push(m);
  });
  return out;
}

const ioText = (msgs: AuditMessage[], stream: number) =>
  Buffer.concat(msgs.filter((m) => m.type === AuditType.IO && m.payload['stream'] === stream).map((m) => Buffer.from(m.payload['data'] as Uint8Array))).toString('utf8');

/** The "recording stored" log line of the connection whose exec/shell produced `marker`. */
async function storedRecording(gw: TestGateway, storage: string, marker: (m: Manifest) => boolean): Promise<{ dir: string; manifest: Manifest; log: LogLine }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const line of gw.logs.filter((l) => l.msg === 'recording stored')) {
      const dir = String(line['location']);
      const manifest = parseManifest(await readFile(join(dir, 'manifest.json'), 'utf8'), dir);
      if (marker(manifest)) return { dir, manifest, log: line };
    }
    if (Date.now() > deadline) throw new Error(`no matching recording stored under ${storage}; logs:\n${gw.output().slice(-3000)}`);
    await gw.waitForLog((l) => l.msg === 'recording stored' && !gw.logs.slice(0, -1).includes(l), 30_000).catch(() => undefined);
  }
}

describe('audit through the gateway (file storage, both formats)', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let storage: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    storage = await tempDir('airlock-audit-store-');
    gw = await keyGateway(fx, { audit: { enable: true, format: 'both', storage: 'file', file: { directory: storage.path } } });
  });
  after(async () => {
    await gw?.stop();
    await fx?.cleanup();
    await storage?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('an exec session: every event with ContainerSSH numbers, ns timestamps, stdout/stderr apart, exit status', async () => {
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo hello-audit; echo oops-stderr >&2; exit 3', args: ['-o', 'SetEnv=LANG=C.UTF-8'] });
    assert.equal(r.code, 3, r.stderr);
    const { dir, manifest, log } = await storedRecording(gw, storage.path, (m) => m.channels.some((c) => c.command?.includes('hello-audit')));
    assert.equal(manifest.complete, true);
    assert.equal(manifest.identity?.username, 'alice');
    assert.deepEqual(manifest.channels.map((c) => [c.kind, c.exit?.status]), [['exec', 3]]);
    assert.equal(log['digest'], manifest.digest);

    const msgs = await messages(dir);
    const types = msgs.map((m) => m.type);
    for (const t of [
      AuditType.Connect,
      AuditType.HandshakeSuccessful,
      AuditType.PubkeyAttempt,
      AuditType.PubkeySuccess,
      AuditType.Identity,
      AuditType.NewChannelSuccessful,
      AuditType.ChannelRequestSetEnv,
      AuditType.ChannelRequestExec,
      AuditType.IO,
      AuditType.ExitStatus,
      AuditType.Close,
      AuditType.Disconnect,
      AuditType.Seal,
    ]) {
      assert.ok(types.includes(t), `event ${t} missing from ${types.join(',')}`);
    }
    assert.equal(types[0], AuditType.Connect);
    assert.equal(types[types.length - 1], AuditType.Seal);
    assert.ok(types.indexOf(AuditType.PubkeySuccess) < types.indexOf(AuditType.ChannelRequestExec));
    for (let i = 1; i < msgs.length; i++) assert.ok((msgs[i]?.timestampNs ?? 0n) >= (msgs[i - 1]?.timestampNs ?? 0n), 'timestamps never go backwards');
    assert.ok((msgs[0]?.timestampNs ?? 0n) > 1_700_000_000_000_000_000n, 'nanoseconds since the epoch');
    assert.equal(ioText(msgs, 1), 'hello-audit\n');
    assert.equal(ioText(msgs, 2), 'oops-stderr\n');
    const auth = msgs.find((m) => m.type === AuditType.PubkeySuccess);
    assert.match(String(auth?.payload['fingerprint']), /^SHA256:/);
    const env = msgs.find((m) => m.type === AuditType.ChannelRequestSetEnv);
    assert.deepEqual(env?.payload, { name: 'LANG', allowed: true });
    assert.deepEqual(msgs.find((m) => m.type === AuditType.ExitStatus)?.payload, { exitStatus: 3 });
    // The key's public blob (and so the private key) never appears: only the fingerprint.
    const keyBlob = (await readFile(`${fx.alice.path}.pub`, 'utf8')).split(' ')[1] as string;
    const everything = (await Promise.all((await readdir(dir)).map((n) => readFile(join(dir, n), 'latin1')))).join('') + JSON.stringify(msgs.map((m) => m.payload), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
    assert.ok(!everything.includes(keyBlob.slice(20, 60)));

    const commands = await airlock(['audit', 'commands', dir]);
    assert.equal(commands.code, 0, commands.stderr);
    assert.match(commands.stdout, /ch0 {2}exec {6}echo hello-audit; echo oops-stderr >&2; exit 3\n$/);
    const verify = await airlock(['audit', 'verify', dir, '--digest', manifest.digest]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^OK .*: intact, complete/);

    // The CLI's exit status is what scripts check: one changed byte in a copy must fail it.
    const copy = await tempDir('airlock-tampered-');
    try {
      await cp(dir, copy.path, { recursive: true });
      const commandsFile = join(copy.path, 'commands.jsonl');
      await writeFile(commandsFile, (await readFile(commandsFile, 'utf8')).replace('hello-audit', 'hello-AUDIT'));
      const tampered = await airlock(['audit', 'verify', copy.path, '--digest', manifest.digest]);
      assert.equal(tampered.code, 1, tampered.stdout + tampered.stderr);
      assert.match(tampered.stdout + tampered.stderr, /commands\.jsonl/);
      assert.doesNotMatch(tampered.stdout, /^OK /m);
    } finally {
      await copy.cleanup();
    }
  });

  it('signals and failed logins: signal (406), exit signal (498), public-key failure (106) with the fingerprint only', async () => {
    const client = new ssh2.Client();
    client.on('error', () => undefined);
    const ready = once(client, 'ready');
    client.connect({ host: '127.0.0.1', port: gw.port, username: 'alice', privateKey: await readFile(fx.alice.path) });
    await ready;
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec('echo sig-audit; exec sleep 100', (err, c) => (err ? reject(err) : resolve(c))));
      await once(ch, 'data');
      const exited = once(ch, 'exit');
      ch.signal('TERM');
      await exited;
    } finally {
      client.end();
    }
    const { dir } = await storedRecording(gw, storage.path, (m) => m.channels.some((c) => c.command?.includes('sig-audit')));
    const msgs = await messages(dir);
    assert.deepEqual(msgs.find((m) => m.type === AuditType.ChannelRequestSignal)?.payload, { signal: 'TERM' });
    assert.equal(msgs.find((m) => m.type === AuditType.ExitSignal)?.payload['signal'], 'TERM');
    assert.ok(msgs.findIndex((m) => m.type === AuditType.ChannelRequestSignal) < msgs.findIndex((m) => m.type === AuditType.ExitSignal));

    const refused = await ssh(gw, { user: 'alice', identity: fx.stranger.path, command: 'true' });
    assert.equal(refused.code, 255);
    const fingerprint = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${fx.stranger.path}.pub`])).stdout.split(' ')[1];
    const failed = await storedRecording(gw, storage.path, (m) => m.identity === undefined);
    const failMsgs = await messages(failed.dir);
    const fail = failMsgs.find((m) => m.type === AuditType.PubkeyFail);
    assert.ok(fail, `a public-key failure event in ${failMsgs.map((m) => m.type).join(',')}`);
    assert.equal(fail.payload['fingerprint'], fingerprint);
    const keyBlob = (await readFile(`${fx.stranger.path}.pub`, 'utf8')).split(' ')[1] as string;
    assert.ok(!(await readFile(join(failed.dir, 'audit.airlock'), 'latin1')).includes(keyBlob.slice(20, 60)), 'the key itself is never recorded');
    assert.ok(!failMsgs.some((m) => m.type === AuditType.NewChannelSuccessful), 'nothing ran');
  });

  it('an interactive shell: pty, resize, typed commands with line editing, a cast asciinema plays', async () => {
    const args = sshArgs(gw, { user: 'alice', identity: fx.alice.path, args: ['-tt'] });
    const term = await openTerminal(['sh', '-c', `TERM=xterm ssh ${args.map((a) => `'${a}'`).join(' ')}; echo "SSH-EXIT=$?"`], { cols: 90, rows: 25 });
    try {
      await term.waitFor(/\$ $/m);
      await term.type('echo typed-$((6*7))');
      await term.keys('Enter');
      await term.waitFor(/^typed-42$/m);
      // Type a wrong word, fix it with backspace; jump to the start with Home and insert.
      await term.type('echo WRONG');
      await term.keys('BSpace', 'BSpace', 'BSpace', 'BSpace', 'BSpace');
      await term.type('fixed-line');
      await term.keys('Home');
      await term.type('A=1 ');
      await term.keys('Enter');
      await term.waitFor(/^fixed-line$/m);
      await term.resize(100, 30);
      await term.type('stty size');
      await term.keys('Enter');
      await term.waitFor(/^30 100$/m);
      await term.type('exit 0');
      await term.keys('Enter');
      await term.waitFor(/SSH-EXIT=0/);
    } finally {
      await term.close();
    }
    const { dir, manifest } = await storedRecording(gw, storage.path, (m) => m.channels.some((c) => c.kind === 'shell'));
    assert.deepEqual(manifest.channels.map((c) => [c.kind, c.pty?.term, c.cast]), [['shell', 'xterm', 'channel-0.cast']]);

    const msgs = await messages(dir);
    const types = new Set(msgs.map((m) => m.type));
    for (const t of [AuditType.ChannelRequestPty, AuditType.ChannelRequestShell, AuditType.ChannelRequestWindow]) assert.ok(types.has(t), `event ${t} missing`);
    assert.match(ioText(msgs, 0), /echo typed-\$\(\(6\*7\)\)\r/);
    assert.match(ioText(msgs, 1), /typed-42/);

    const commands = await airlock(['audit', 'commands', dir, '--json']);
    assert.equal(commands.code, 0, commands.stderr);
    const typed = commands.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; command: string });
    assert.deepEqual(
      typed.map((c) => [c.kind, c.command]),
      [
        ['typed', 'echo typed-$((6*7))'],
        ['typed', 'A=1 echo fixed-line'],
        ['typed', 'stty size'],
        ['typed', 'exit 0'],
      ],
    );

    const cast = await readFile(join(dir, 'channel-0.cast'), 'utf8');
    const header = JSON.parse(cast.split('\n')[0] as string) as Record<string, unknown>;
    assert.equal(header['width'], 90);
    assert.equal(header['height'], 25);
    assert.match(cast, /\[[\d.]+,"r","100x30"\]/);
    // Debian's asciinema plays the file (it needs a terminal: `script` gives it one).
    const played = await run('script', ['-qec', `asciinema cat ${join(dir, 'channel-0.cast')}`, '/dev/null']);
    assert.match(played.stdout, /typed-42/);
    assert.match(played.stdout, /fixed-line/);
  });

  it('a subsystem request is recorded (kind, name) even when it fails', async () => {
    await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'sftp', args: ['-s'] });
    const { dir } = await storedRecording(gw, storage.path, (m) => m.channels.some((c) => c.kind === 'subsystem'));
    const msgs = await messages(dir);
    assert.deepEqual(msgs.find((m) => m.type === AuditType.ChannelRequestSubsystem)?.payload, { subsystem: 'sftp' });
    assert.ok(!(await readdir(dir)).includes('channel-0.cast'), 'no terminal recording for a binary protocol');
  });

  it('airlock audit ls / replay / export on the recordings', async () => {
    const ls = await airlock(['audit', 'ls', storage.path, '--user', 'alice', '--since', '1h']);
    assert.equal(ls.code, 0, ls.stderr);
    const rows = ls.stdout.trim().split('\n');
    assert.match(rows[0] ?? '', /^STARTED\s+DURATION\s+USER\s+STATUS/);
    assert.ok(rows.length >= 4, ls.stdout);
    assert.ok(rows.slice(1).every((r) => / alice +complete /.test(r)), ls.stdout);
    const none = await airlock(['audit', 'ls', storage.path, '--user', 'mallory']);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /no recordings match/);
    const shellDir = (await listLocal(storage.path)).find((r) => r.manifest.channels.some((c) => c.kind === 'shell'))?.location;
    assert.ok(shellDir);

    // --speed 0: no pauses (pacing itself is unit-tested in audit-replay.test.ts).
    const replay = await airlock(['audit', 'replay', shellDir, '--speed', '0']);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /typed-42/);
    assert.match(replay.stderr, /replaying channel 0/);

    const exported = await airlock(['audit', 'export', join(shellDir, 'audit.airlock'), '--format', 'cast']);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, await readFile(join(shellDir, 'channel-0.cast'), 'utf8'), 'export from the binary gives the cast the recorder wrote');
  });
});

describe('audit.intercept through the gateway', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let storage: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    storage = await tempDir('airlock-audit-intercept-');
    gw = await keyGateway(fx, { audit: { enable: true, storage: 'file', file: { directory: storage.path }, intercept: { stdin: false, stderr: false } } });
  });
  after(async () => {
    await gw?.stop();
    await fx?.cleanup();
    await storage?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('streams switched off are not recorded; events and the other streams are', async () => {
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'wc -c; echo to-stderr >&2', input: 'secret-stdin-data\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), '18');
    const { dir } = await storedRecording(gw, storage.path, () => true);
    const msgs = await messages(dir);
    assert.equal(ioText(msgs, 0), '');
    assert.equal(ioText(msgs, 2), '');
    assert.match(ioText(msgs, 1), /18/);
    assert.ok(msgs.some((m) => m.type === AuditType.ChannelRequestExec));
  });
});
