/** `audit verify`: any modified, truncated, reordered, removed or added byte is detected. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/index.js';
import { AuditType, binaryToCasts, commandsFromBinary, createRecorder, localSource, parseManifest, verifyRecording } from '../../src/audit/index.js';
import { recordingDigest } from '../../src/audit/manifest.js';
import { tempDir } from '../helpers/tmp.js';

describe('audit verify', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let original: string;
  let digest: string;

  before(async () => {
    tmp = await tempDir('airlock-verify-');
    const storage = join(tmp.path, 'store');
    const audit = parseConfig(
      { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'k' } }, audit: { enable: true, storage: 'file', format: 'both', file: { directory: storage } } },
      't',
    ).audit;
    const recorder = await createRecorder(audit, { logger: pino({ level: 'silent' }) });
    const r = recorder.begin('v1', '127.0.0.1:1');
    r.event(AuditType.ChannelRequestPty, 0, { term: 'xterm', cols: 80, rows: 24 });
    r.event(AuditType.ChannelRequestShell, 0, {});
    for (const cmd of ['ls', 'id', 'uname -a', 'cat /etc/passwd']) {
      r.io(0, 0, Buffer.from(cmd + '\r'));
      r.io(0, 1, Buffer.from(`${cmd}\r\noutput of ${cmd}\r\n$ `));
      await new Promise((res) => setImmediate(res));
    }
    r.event(AuditType.Close, 0, {});
    await r.close();
    await recorder.close();
    original = join(storage, 'v1');
    digest = parseManifest(await readFile(join(original, 'manifest.json'), 'utf8'), 'm').digest;
  });
  after(async () => {
    await tmp.cleanup();
  });

  let n = 0;
  async function copy(): Promise<string> {
    const dir = join(tmp.path, `copy-${n++}`);
    await cp(original, dir, { recursive: true });
    return dir;
  }
  const verify = (dir: string, expected?: string) => verifyRecording(localSource(dir), expected);

  it('an untouched recording is intact and matches the logged digest', async () => {
    const v = await verify(await copy(), digest);
    assert.deepEqual(v.problems, []);
    assert.equal(v.ok, true);
    assert.equal(v.complete, true);
    assert.equal(v.digest, digest);
  });

  it('flipping any single byte of any file is detected', async () => {
    const files = (await readdir(original)).filter((f) => f !== 'manifest.json');
    for (const name of files) {
      const size = (await readFile(join(original, name))).length;
      for (const pos of new Set([0, 1, 5, 11, Math.floor(size / 3), Math.floor(size / 2), size - 2, size - 1])) {
        const dir = await copy();
        const bytes = await readFile(join(dir, name));
        bytes[pos] = (bytes[pos] as number) ^ 0x20;
        await writeFile(join(dir, name), bytes);
        const v = await verify(dir);
        assert.equal(v.ok, false, `${name} byte ${pos} modified but verify passed`);
        await rm(dir, { recursive: true });
      }
    }
  });

  it('truncation, reordering, removal and addition are detected', async () => {
    let dir = await copy();
    const cast = (await readFile(join(dir, 'channel-0.cast'), 'utf8')).split('\n');
    await writeFile(join(dir, 'channel-0.cast'), cast.slice(0, -2).join('\n') + '\n');
    assert.match((await verify(dir)).problems.join('\n'), /channel-0\.cast: .*(truncated|SHA-256|chain)/);

    dir = await copy();
    const cmds = (await readFile(join(dir, 'commands.jsonl'), 'utf8')).split('\n');
    [cmds[0], cmds[1]] = [cmds[1] as string, cmds[0] as string];
    await writeFile(join(dir, 'commands.jsonl'), cmds.join('\n'));
    const reordered = await verify(dir);
    assert.ok(reordered.problems.some((p) => /commands\.jsonl: the hash chain does not match/.test(p)), reordered.problems.join('\n'));

    dir = await copy();
    const bin = await readFile(join(dir, 'audit.airlock'));
    await writeFile(join(dir, 'audit.airlock'), bin.subarray(0, bin.length - 40));
    assert.ok((await verify(dir)).problems.some((p) => /audit\.airlock: .*truncated/.test(p)));

    dir = await copy();
    await rm(join(dir, 'commands.jsonl'));
    assert.deepEqual((await verify(dir)).problems, ['commands.jsonl is missing']);

    dir = await copy();
    await writeFile(join(dir, 'channel-7.cast'), '{"version":2,"width":80,"height":24}\n');
    assert.deepEqual((await verify(dir)).problems, ['channel-7.cast is not listed in the manifest (added after sealing)']);
  });

  it('an edited manifest is detected; a consistently rewritten recording is caught by the logged digest', async () => {
    let dir = await copy();
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    m['complete'] = false;
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(m));
    assert.ok((await verify(dir)).problems.some((p) => /manifest digest does not match/.test(p)));

    // An attacker who rewrites a file and recomputes every hash in the manifest...
    dir = await copy();
    const manifest = parseManifest(await readFile(join(dir, 'manifest.json'), 'utf8'), 'm');
    const cmds = Buffer.from((await readFile(join(dir, 'commands.jsonl'), 'utf8')).replace('cat /etc/passwd', 'echo harmless!!'));
    await writeFile(join(dir, 'commands.jsonl'), cmds);
    const { textChain } = await import('../../src/audit/hash-chain.js');
    const { createHash } = await import('node:crypto');
    const files = manifest.files.map((f) =>
      f.name === 'commands.jsonl' ? { ...f, bytes: cmds.length, sha256: createHash('sha256').update(cmds).digest('hex'), chain: textChain(cmds).chain } : f,
    );
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, files, digest: recordingDigest({ ...manifest, files }) }));
    assert.equal((await verify(dir)).ok, true, 'self-consistent without an outside reference');
    const v = await verify(dir, digest);
    assert.equal(v.ok, false);
    assert.match(v.problems.join('\n'), /not the expected/);
  });

  it('a lone binary file is verified by its own chain and seal', async () => {
    const single = localSource(join(original, 'audit.airlock'));
    const v = await verifyRecording(single);
    assert.equal(v.ok, true);
    assert.ok(v.notes.some((n) => /own hash chain/.test(n)));
  });

  it('the binary converts to the same casts and commands the recorder wrote', async () => {
    const bin = await readFile(join(original, 'audit.airlock'));
    const { casts } = await binaryToCasts([bin]);
    assert.equal(casts.length, 1);
    assert.equal(casts[0]?.cast, await readFile(join(original, 'channel-0.cast'), 'utf8'));
    const commands = await commandsFromBinary([bin]);
    assert.deepEqual(
      commands.map((c) => c.command),
      ['ls', 'id', 'uname -a', 'cat /etc/passwd'],
    );
  });
});
