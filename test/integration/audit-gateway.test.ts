/**
 * Recording through the front door: the real OpenSSH client (exec, and an interactive shell in
 * a tmux terminal) through `airlock serve` with file storage. Checks the events and their
 * ContainerSSH numbers, the per-channel asciicast (played by Debian's real `asciinema cat`), the
 * typed-command log, `audit.format` and `audit.intercept`, and the `airlock audit` CLI on what was
 * recorded (ls filters, replay pace, export, verify). An authz webhook gives alice's connections
 * CI metadata, so `ls --session/--meta` have something to filter.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
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
import { airlock, airlockCommand } from '../helpers/airlock-cli.js';
import { startWebhookServer, behaviours, type WebhookServer } from '../helpers/webhook-server.js';
import { AuditType, listLocal, parseCast, parseManifest, scanBinary, type Manifest } from '../../src/audit/index.js';
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

/** The CLI's stdout chunks with their arrival time (ms, performance.now()): for pacing checks. */
async function timedCli(args: readonly string[]): Promise<{ code: number | null; stderr: string; chunks: Array<{ at: number; text: string }> }> {
  const cmd = airlockCommand(args);
  const child = spawn(cmd.file, cmd.args, { cwd: cmd.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Array<{ at: number; text: string }> = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => chunks.push({ at: performance.now(), text: d.toString('utf8') }));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr, chunks };
}

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

/** Every stored recording (the "recording stored" lines so far) whose messages satisfy `match`. */
async function storedWithMessages(gw: TestGateway, match: (msgs: AuditMessage[]) => boolean): Promise<{ dir: string; msgs: AuditMessage[] }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    // Counted before the scan: a line logged while it reads files is waited for below, not missed.
    const seen = gw.logs.length;
    for (const line of gw.logs.filter((l) => l.msg === 'recording stored')) {
      const dir = String(line['location']);
      const msgs = await messages(dir);
      if (match(msgs)) return { dir, msgs };
    }
    if (Date.now() > deadline) throw new Error(`no matching recording stored; logs:\n${gw.output().slice(-3000)}`);
    await gw.waitForLog((l) => l.msg === 'recording stored' && gw.logs.indexOf(l) >= seen, 30_000).catch(() => undefined);
  }
}

describe('audit through the gateway (file storage, both formats)', () => {
  let fx: KeyFixture;
  let gw: TestGateway;
  let hook: WebhookServer;
  let storage: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    storage = await tempDir('airlock-audit-store-');
    hook = await startWebhookServer(behaviours.authz({ alice: { metadata: { session_id: { value: 'dbg-7' }, team: { value: 'blue' } } } }));
    gw = await keyGateway(fx, {
      auth: { authz: { method: 'webhook', webhook: { url: hook.url } } },
      audit: { enable: true, format: 'both', storage: 'file', file: { directory: storage.path } },
    });
  });
  after(async () => {
    await gw?.stop();
    await hook?.close();
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
      AuditType.NewChannel,
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
    // 300 when the client asks for the channel (its type, the channel id), then 301, then requests.
    const opened = msgs.filter((m) => m.type === AuditType.NewChannel);
    assert.deepEqual(opened.map((m) => [m.channelId, m.payload]), [[0, { type: 'session' }]]);
    assert.deepEqual(msgs.filter((m) => m.type === AuditType.NewChannelSuccessful).map((m) => [m.channelId, m.payload]), [[0, { type: 'session' }]]);
    assert.ok(types.indexOf(AuditType.NewChannel) < types.indexOf(AuditType.NewChannelSuccessful));
    assert.ok(types.indexOf(AuditType.NewChannelSuccessful) < types.indexOf(AuditType.ChannelRequestSetEnv));
    assert.ok(!types.includes(AuditType.HandshakeFailed));
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

  it('a failed key exchange is recorded as 198 with the reason, and nothing after it', async () => {
    // The gateway offers no CBC cipher: ssh2 fails the key exchange (level "handshake").
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'true', args: ['-o', 'Ciphers=aes128-cbc'] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /no matching cipher/i);
    const { msgs } = await storedWithMessages(gw, (m) => m.some((x) => x.type === AuditType.HandshakeFailed));
    const failed = msgs.filter((m) => m.type === AuditType.HandshakeFailed);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.channelId, null);
    assert.match(String(failed[0]?.payload['reason']), /cipher/i);
    assert.deepEqual(
      msgs.map((m) => m.type).filter((t) => t !== AuditType.Checkpoint),
      [AuditType.Connect, AuditType.HandshakeFailed, AuditType.Disconnect, AuditType.Seal],
    );
  });

  it('airlock audit replay --speed N of a .cast file keeps the recorded rhythm, N times faster', async () => {
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo tick-1; sleep 1; echo tick-2; sleep 1; echo tick-3; sleep 1; echo tick-4' });
    assert.equal(r.code, 0, r.stderr);
    const { dir } = await storedRecording(gw, storage.path, (m) => m.channels.some((c) => c.command?.includes('tick-4')));
    const castPath = join(dir, 'channel-0.cast');
    const cast = parseCast(await readFile(castPath, 'utf8'));
    const at = (marker: string) => cast.events.find(([, code, data]) => code === 'o' && data.includes(marker))?.[0] as number;
    const recordedMs = (at('tick-4') - at('tick-1')) * 1000;
    assert.ok(recordedMs >= 2_900, `three 1 s sleeps recorded as ${recordedMs} ms`);
    const speed = 4;
    const played = await timedCli(['audit', 'replay', castPath, '--speed', String(speed)]);
    assert.equal(played.code, 0, played.stderr);
    assert.match(played.stderr, /replaying channel 0, [\d.]+ s recorded, speed 4/);
    assert.equal(played.chunks.map((c) => c.text).join(''), 'tick-1\ntick-2\ntick-3\ntick-4\n');
    const arrived = (marker: string) => played.chunks.find((c) => c.text.includes(marker))?.at as number;
    const tookMs = arrived('tick-4') - arrived('tick-1');
    const expectedMs = recordedMs / speed;
    // Generous bounds (a loaded machine only delays), yet far from real pace (4x) and from no pauses.
    assert.ok(tookMs >= expectedMs * 0.5 && tookMs < expectedMs * 3, `replay took ${tookMs.toFixed(0)} ms for ${recordedMs.toFixed(0)} ms recorded at speed ${speed}`);
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
    // Metadata filters: alice's connections carry the authz webhook's session_id and team; the
    // failed logins carry none.
    const all = await listLocal(storage.path);
    const alices = all.filter((r) => r.manifest.identity?.username === 'alice').map((r) => r.location).sort();
    assert.ok(alices.length >= 4 && alices.length < all.length, `${alices.length} of ${all.length}`);
    const listed = async (...filters: string[]) => {
      const out = await airlock(['audit', 'ls', storage.path, '--json', ...filters]);
      assert.equal(out.code, 0, out.stderr);
      return out.stdout === '' ? [] : out.stdout.trim().split('\n').map((l) => String((JSON.parse(l) as { location: string }).location)).sort();
    };
    const everyone = all.map((r) => r.location).sort();
    const cases: Array<[string[], string[]]> = [
      [['--session', 'dbg-7'], alices],
      [['--session', 'dbg-8'], []],
      [['--meta', 'team=blue', '--meta', 'session_id=dbg-7'], alices],
      [['--meta', 'team=blue', '--meta', 'session_id=other'], []],
      // --until: started at or before. An hour ago: none of these; a minute from now: all.
      [['--until', '1h'], []],
      [['--until', new Date(Date.now() + 60_000).toISOString()], everyone],
    ];
    const results = await Promise.all(cases.map(([filters]) => listed(...filters)));
    cases.forEach(([filters, expected], i) => assert.deepEqual(results[i], expected, filters.join(' ')));
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

/**
 * A key gateway recording to a fresh file storage with `audit` merged over
 * `{enable: true, storage: 'file'}`; read `suite.fx`, `suite.gw`, `suite.storage` in tests.
 */
function fileAuditSuite(audit: Record<string, unknown>): { fx: KeyFixture; gw: TestGateway; storage: { path: string; cleanup: () => Promise<void> } } {
  const suite = {} as ReturnType<typeof fileAuditSuite>;
  before(async () => {
    await ensureTestImage();
    suite.fx = await keyFixture();
    suite.storage = await tempDir('airlock-audit-');
    suite.gw = await keyGateway(suite.fx, { audit: { enable: true, storage: 'file', file: { directory: suite.storage.path }, ...audit } });
  });
  after(async () => {
    await suite.gw?.stop();
    await suite.fx?.cleanup();
    await suite.storage?.cleanup();
    await assertNoGatewayLeaks();
  });
  return suite;
}

describe('audit.format binary with audit.intercept stdin and stderr off', () => {
  const suite = fileAuditSuite({ format: 'binary', intercept: { stdin: false, stderr: false } });

  it('streams switched off are not recorded; events and the other streams are; no cast is stored', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'wc -c; echo to-stderr >&2', input: 'secret-stdin-data\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), '18');
    const { dir, manifest } = await storedRecording(suite.gw, suite.storage.path, () => true);
    assert.deepEqual((await readdir(dir)).sort(), ['audit.airlock', 'commands.jsonl', 'manifest.json']);
    assert.deepEqual(manifest.files.map((f) => f.name).sort(), ['audit.airlock', 'commands.jsonl']);
    const msgs = await messages(dir);
    assert.equal(ioText(msgs, 0), '');
    assert.equal(ioText(msgs, 2), '');
    assert.match(ioText(msgs, 1), /18/);
    assert.ok(msgs.some((m) => m.type === AuditType.ChannelRequestExec));
    // The client's EOF (wc needs it to finish) is a close-write (496), before the exit status.
    const types = msgs.map((m) => m.type);
    assert.deepEqual(msgs.filter((m) => m.type === AuditType.CloseWrite).map((m) => [m.channelId, m.payload]), [[0, {}]]);
    assert.ok(types.indexOf(AuditType.ChannelRequestExec) < types.indexOf(AuditType.CloseWrite));
    assert.ok(types.indexOf(AuditType.CloseWrite) < types.indexOf(AuditType.ExitStatus));

    // A binary-only recording replays too (the cast is derived from the binary).
    const replay = await airlock(['audit', 'replay', dir, '--speed', '0']);
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(replay.stdout, '18\n');
    assert.match(replay.stderr, /replaying channel 0/);
  });
});

describe('audit.format asciinema with only audit.intercept.stdout off', () => {
  const suite = fileAuditSuite({ format: 'asciinema', intercept: { stdout: false } });

  it('stores the cast and the command log but no binary; stdin and stderr are in the cast, stdout is not', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'cat; echo to-stderr >&2', input: 'typed-stdin\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'typed-stdin\n');
    const { dir, manifest } = await storedRecording(suite.gw, suite.storage.path, () => true);
    assert.deepEqual((await readdir(dir)).sort(), ['channel-0.cast', 'commands.jsonl', 'manifest.json']);
    assert.deepEqual(manifest.files.map((f) => f.name).sort(), ['channel-0.cast', 'commands.jsonl']);
    assert.equal(manifest.complete, true);
    const cast = parseCast(await readFile(join(dir, 'channel-0.cast'), 'utf8'));
    const text = (code: string) => cast.events.filter(([, c]) => c === code).map(([, , d]) => d).join('');
    assert.equal(text('i'), 'typed-stdin\n');
    // Output events: stderr only. cat's copy of the input (stdout) was not recorded.
    assert.equal(text('o'), 'to-stderr\n');

    const commands = await airlock(['audit', 'commands', dir]);
    assert.equal(commands.code, 0, commands.stderr);
    assert.match(commands.stdout, /exec +cat; echo to-stderr >&2\n$/);
    const replay = await airlock(['audit', 'replay', dir, '--speed', '0']);
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(replay.stdout, 'to-stderr\n');
    const verify = await airlock(['audit', 'verify', dir, '--digest', manifest.digest]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });
});
