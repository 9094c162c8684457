/**
 * The gateway-side file API's POSIX scripts, run under both tool sets they meet in images:
 * dash + GNU coreutils (this host, like Debian/Ubuntu images) and busybox (like Alpine and the
 * test image), plus the parsers of what they print. Permission checks need a non-root user and
 * are covered through the gateway (test/integration/gateway-sftp.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LIST_SCRIPT,
  LSTAT_SCRIPT,
  MKDIR_SCRIPT,
  READ_SCRIPT,
  READLINK_SCRIPT,
  REMOVE_SCRIPT,
  RENAME_SCRIPT,
  RMDIR_SCRIPT,
  SETSTAT_SCRIPT,
  STAT_SCRIPT,
  SYMLINK_SCRIPT,
  WRITE_SCRIPT,
  parseListing,
  parseOpenLine,
  parseStatFields,
  scriptArgv,
  setstatArgs,
  writeFlagLetters,
} from '../../src/backend/docker/file-scripts.js';
import { fileErrorFromText, type FileErrorKind } from '../../src/backend/file-error.js';
import { tempDir } from '../helpers/tmp.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface Run {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

interface Flavor {
  readonly name: string;
  readonly run: (script: string, args: ReadonlyArray<string | number | undefined>, stdin?: Buffer) => Run;
}

function flavor(name: string, path: string): Flavor {
  return {
    name,
    run(script, args, stdin) {
      const [sh, ...rest] = scriptArgv(script, ...args);
      const result = spawnSync(name === 'busybox' ? join(path, 'sh') : sh!, rest, { env: { PATH: path }, input: stdin ?? Buffer.alloc(0) });
      return { code: result.status, stdout: result.stdout, stderr: result.stderr.toString('utf8') };
    },
  };
}

/** The scripts' first stdout line is the open line; the file's bytes follow. */
function splitOpenLine(stdout: Buffer): { line: string; data: Buffer } {
  const newline = stdout.indexOf(0x0a);
  assert.ok(newline >= 0, 'an open line');
  return { line: stdout.subarray(0, newline).toString(), data: stdout.subarray(newline + 1) };
}

function assertFails(r: Run, kind: FileErrorKind, message?: RegExp): void {
  assert.notEqual(r.code, 0, `expected a failure, got stdout ${r.stdout.toString()}`);
  const err = fileErrorFromText(r.stderr);
  assert.equal(err.kind, kind, `stderr: ${r.stderr}`);
  if (message) assert.match(err.message, message);
}

let bin: { path: string; cleanup: () => Promise<void> };
const flavors: Flavor[] = [];

before(async () => {
  // busybox applets first in PATH, as in a busybox image.
  bin = await tempDir('airlock-busybox-');
  const applets = spawnSync('busybox', ['--list']).stdout.toString().split('\n').filter(Boolean);
  for (const applet of applets) await symlink('/usr/bin/busybox', join(bin.path, applet));
  flavors.push(flavor('dash+coreutils', '/usr/bin:/bin'), flavor('busybox', bin.path));
});
after(async () => bin?.cleanup());

for (const name of ['dash+coreutils', 'busybox']) {
  describe(`file scripts under ${name}`, () => {
    let dir: { path: string; cleanup: () => Promise<void> };
    let sh: Flavor;
    before(async () => {
      sh = flavors.find((f) => f.name === name)!;
      dir = await tempDir('airlock-files-');
    });
    after(async () => dir?.cleanup());
    const p = (...parts: string[]) => join(dir.path, ...parts);

    it('lists a directory with odd names, hidden files, a subdirectory and a link, typed by lstat', async () => {
      await mkdir(p('list'));
      await writeFile(p('list', 'plain'), 'abc');
      await writeFile(p('list', 'with space'), '');
      await writeFile(p('list', 'new\nline'), 'x');
      await writeFile(p('list', '.hidden'), '12345');
      await mkdir(p('list', 'sub'));
      await symlink('plain', p('list', 'link'));
      const r = sh.run(LIST_SCRIPT, [p('list')]);
      assert.equal(r.code, 0, r.stderr);
      const entries = parseListing(r.stdout);
      const byName = new Map(entries.map((e) => [e.name, e.attrs]));
      assert.deepEqual([...byName.keys()].sort(), ['.', '..', '.hidden', 'link', 'new\nline', 'plain', 'sub', 'with space']);
      assert.equal(byName.get('plain')!.size, 3);
      assert.equal(byName.get('.hidden')!.size, 5);
      assert.equal(byName.get('plain')!.mode & S_IFMT, S_IFREG);
      assert.equal(byName.get('sub')!.mode & S_IFMT, S_IFDIR);
      assert.equal(byName.get('link')!.mode & S_IFMT, S_IFLNK);
      assert.equal(byName.get('.')!.mode & S_IFMT, S_IFDIR);
      assert.equal(byName.get('plain')!.owner, 'root');
    });

    it('an empty directory lists only . and ..; a missing one or a file is "no such file"', async () => {
      await mkdir(p('empty'));
      const r = sh.run(LIST_SCRIPT, [p('empty')]);
      assert.deepEqual(parseListing(r.stdout).map((e) => e.name).sort(), ['.', '..']);
      assertFails(sh.run(LIST_SCRIPT, [p('missing')]), 'no-such-file');
      await writeFile(p('a-file'), '');
      assertFails(sh.run(LIST_SCRIPT, [p('a-file')]), 'no-such-file');
    });

    it('stat follows links, lstat does not', async () => {
      await writeFile(p('target'), 'hello');
      await symlink(p('target'), p('to-target'));
      const followed = parseStatFields(sh.run(STAT_SCRIPT, [p('to-target')]).stdout.toString());
      const link = parseStatFields(sh.run(LSTAT_SCRIPT, [p('to-target')]).stdout.toString());
      assert.equal(followed?.mode! & S_IFMT, S_IFREG);
      assert.equal(followed?.size, 5);
      assert.equal(link?.mode! & S_IFMT, S_IFLNK);
      assert.equal(followed?.mtime, Math.floor((await stat(p('target'))).mtimeMs / 1000));
      assertFails(sh.run(STAT_SCRIPT, [p('nope')]), 'no-such-file');
    });

    it('reads from an offset after an open line with the pid and the attributes', async () => {
      const content = Buffer.from('0123456789'.repeat(10_000));
      await writeFile(p('read.bin'), content);
      const whole = sh.run(READ_SCRIPT, [p('read.bin'), 0]);
      assert.equal(whole.code, 0, whole.stderr);
      const { line, data } = splitOpenLine(whole.stdout);
      const open = parseOpenLine(line);
      assert.ok(open && open.pid > 0);
      assert.equal(open.attrs?.size, content.length);
      assert.ok(data.equals(content));
      const tail = sh.run(READ_SCRIPT, [p('read.bin'), 99_995]);
      assert.equal(splitOpenLine(tail.stdout).data.toString(), '56789');
      assert.equal(splitOpenLine(sh.run(READ_SCRIPT, [p('read.bin'), 200_000]).stdout).data.length, 0);
      assertFails(sh.run(READ_SCRIPT, [p('nope'), 0]), 'no-such-file');
      assertFails(sh.run(READ_SCRIPT, [dir.path, 0]), 'failure', /Is a directory/);
    });

    it('writes: create with a mode (umask applies), overwrite in place at an offset, append, exclusive', async () => {
      const f = p('write.txt');
      const created = sh.run(WRITE_SCRIPT, [f, writeFlagLetters({ create: true, truncate: true, exclusive: false, append: false }), '666', 0], Buffer.from('hello world'));
      assert.equal(created.code, 0, created.stderr);
      assert.deepEqual(Object.keys(parseOpenLine(splitOpenLine(created.stdout).line) ?? {}), ['pid']);
      assert.equal(await readFile(f, 'utf8'), 'hello world');
      assert.equal((await stat(f)).mode & 0o777, 0o644);
      // No truncation without the flag: bytes after the write stay.
      assert.equal(sh.run(WRITE_SCRIPT, [f, '-', '', 6], Buffer.from('WORLD')).code, 0);
      assert.equal(await readFile(f, 'utf8'), 'hello WORLD');
      assert.equal(sh.run(WRITE_SCRIPT, [f, '-', '', 0], Buffer.from('J')).code, 0);
      assert.equal(await readFile(f, 'utf8'), 'Jello WORLD');
      assert.equal(sh.run(WRITE_SCRIPT, [f, 'a', '', 0], Buffer.from('!')).code, 0);
      assert.equal(await readFile(f, 'utf8'), 'Jello WORLD!');
      assert.equal(sh.run(WRITE_SCRIPT, [f, 'ct', '', 0], Buffer.from('new')).code, 0);
      assert.equal(await readFile(f, 'utf8'), 'new');
      // An existing file keeps its mode when opened with a mode.
      assert.equal(sh.run(WRITE_SCRIPT, [f, 'ct', '600', 0], Buffer.alloc(0)).code, 0);
      assert.equal((await stat(f)).mode & 0o777, 0o644);
      assertFails(sh.run(WRITE_SCRIPT, [f, 'cx', '', 0], Buffer.alloc(0)), 'failure', /File exists/);
      assertFails(sh.run(WRITE_SCRIPT, [p('absent'), '-', '', 0], Buffer.alloc(0)), 'no-such-file');
      assertFails(sh.run(WRITE_SCRIPT, [p('no-dir', 'x'), 'ct', '', 0], Buffer.alloc(0)), 'no-such-file');
      assertFails(sh.run(WRITE_SCRIPT, [dir.path, 'ct', '', 0], Buffer.alloc(0)), 'failure', /Is a directory/);
      const exclusive = sh.run(WRITE_SCRIPT, [p('excl'), 'cx', '600', 0], Buffer.from('x'));
      assert.equal(exclusive.code, 0, exclusive.stderr);
      assert.equal((await stat(p('excl'))).mode & 0o777, 0o600);
    });

    it('setstat: size, mode and times; a missing file is "no such file"', async () => {
      const f = p('setstat.txt');
      await writeFile(f, '0123456789');
      const r = sh.run(SETSTAT_SCRIPT, [f, ...setstatArgs({ size: 4, mode: 0o100640, atime: 1_000_000_000, mtime: 1_100_000_000 })]);
      assert.equal(r.code, 0, r.stderr);
      // Before reading it: reading an old file updates its atime (relatime).
      const st = await stat(f);
      assert.equal(st.size, 4);
      assert.equal(st.mode & 0o7777, 0o640);
      assert.equal(Math.floor(st.mtimeMs / 1000), 1_100_000_000);
      assert.equal(Math.floor(st.atimeMs / 1000), 1_000_000_000);
      assert.equal(await readFile(f, 'utf8'), '0123');
      assert.equal(sh.run(SETSTAT_SCRIPT, [f, ...setstatArgs({ size: 8 })]).code, 0);
      assert.equal((await stat(f)).size, 8);
      assertFails(sh.run(SETSTAT_SCRIPT, [p('gone'), ...setstatArgs({ mode: 0o600 })]), 'no-such-file');
    });

    it('mkdir, rmdir, remove, rename, symlink, readlink', async () => {
      assert.equal(sh.run(MKDIR_SCRIPT, [p('made'), '777']).code, 0);
      assert.equal((await stat(p('made'))).mode & 0o777, 0o755);
      assertFails(sh.run(MKDIR_SCRIPT, [p('made'), '']), 'failure', /File exists/);
      await writeFile(p('made', 'inside'), '');
      assertFails(sh.run(RMDIR_SCRIPT, [p('made')]), 'failure', /Directory not empty/);
      assertFails(sh.run(REMOVE_SCRIPT, [p('made')]), 'failure', /Is a directory/);
      assertFails(sh.run(REMOVE_SCRIPT, [p('made', 'missing')]), 'no-such-file');
      await writeFile(p('other'), '');
      assertFails(sh.run(RENAME_SCRIPT, [p('made', 'inside'), p('other')]), 'failure', /File exists/);
      assertFails(sh.run(RENAME_SCRIPT, [p('made', 'missing'), p('elsewhere')]), 'no-such-file');
      assert.equal(sh.run(RENAME_SCRIPT, [p('made', 'inside'), p('moved')]).code, 0);
      assert.equal(sh.run(REMOVE_SCRIPT, [p('moved')]).code, 0);
      assert.equal(sh.run(RMDIR_SCRIPT, [p('made')]).code, 0);
      // A relative target that looks like an option stays as given.
      assert.equal(sh.run(SYMLINK_SCRIPT, ['-odd/target', p('ln')]).code, 0);
      assert.ok((await lstat(p('ln'))).isSymbolicLink());
      assert.equal(sh.run(READLINK_SCRIPT, [p('ln')]).stdout.toString(), '-odd/target\n');
      assertFails(sh.run(READLINK_SCRIPT, [p('other')]), 'failure', /Invalid argument/);
      assertFails(sh.run(READLINK_SCRIPT, [p('none')]), 'no-such-file');
    });
  });
}

describe('file script parsers', () => {
  it('parseStatFields takes exactly the nine fields and falls back to numbers for unknown names', () => {
    assert.deepEqual(parseStatFields('81a4 137 1000 1000 1700000000 1700000001 1 UNKNOWN staff\n'), {
      mode: 0o100644,
      size: 137,
      uid: 1000,
      gid: 1000,
      atime: 1_700_000_000,
      mtime: 1_700_000_001,
      nlink: 1,
      owner: '1000',
      group: 'staff',
    });
    assert.equal(parseStatFields('81a4 137 1000'), undefined);
    assert.equal(parseStatFields('zz 137 1000 1000 1 1 1 a b'), undefined);
  });

  it('parseOpenLine needs the marker and a pid', () => {
    assert.deepEqual(parseOpenLine('airlock-open 42'), { pid: 42 });
    assert.equal(parseOpenLine('airlock-open 42 81a4 3 0 0 1 1 1 root root')?.attrs?.size, 3);
    assert.equal(parseOpenLine('sh: cannot open x: Permission denied'), undefined);
    assert.equal(parseOpenLine('airlock-open 0'), undefined);
  });

  it('parseListing skips a name whose entry vanished and stops at a truncated name list', () => {
    const out = Buffer.concat([
      Buffer.from('a\0gone\0b\0\0'),
      Buffer.from('81a4 1 0 0 0 0 1 root root a\n'),
      Buffer.from('81a4 2 0 0 0 0 1 root root b\n'),
    ]);
    assert.deepEqual(
      parseListing(out).map((e) => [e.name, e.attrs.size]),
      [
        ['a', 1],
        ['b', 2],
      ],
    );
    assert.deepEqual(parseListing(Buffer.from('a\0b')), []);
  });

  it('setstatArgs: owner only as a pair, permission bits only, invalid numbers dropped', () => {
    assert.deepEqual(setstatArgs({ uid: 1 }), [undefined, undefined, undefined, undefined, undefined, undefined]);
    assert.deepEqual(setstatArgs({ uid: 1, gid: 2, mode: 0o104755, size: -1 }), [undefined, '1', '2', '4755', undefined, undefined]);
  });
});

describe('fileErrorFromText', () => {
  const cases: Array<[string, FileErrorKind, string]> = [
    ["/bin/sh: 1: cannot open /etc/shadow: Permission denied", 'permission-denied', 'Permission denied'],
    ["sh: can't create /x: Permission denied", 'permission-denied', 'Permission denied'],
    ["chown: changing ownership of '/tmp/f': Operation not permitted", 'permission-denied', 'Permission denied'],
    ['/bin/sh: 1: cannot open /nonexistent: No such file', 'no-such-file', 'No such file or directory'],
    ["sh: can't open /nonexistent: no such file", 'no-such-file', 'No such file or directory'],
    ["sh: can't create /nonexistent/x: nonexistent directory", 'no-such-file', 'No such file or directory'],
    ['/bin/sh: 1: cannot create /nonexistent/x: Directory nonexistent', 'no-such-file', 'No such file or directory'],
    ["stat: cannot statx '/x': No such file or directory", 'no-such-file', 'No such file or directory'],
    ["sh: can't create /ro/f: Read-only file system", 'failure', 'Read-only file system'],
    ["dd: error writing '/tmp/f': No space left on device", 'failure', 'No space left on device'],
    ["rmdir: '/d': Directory not empty", 'failure', 'Directory not empty'],
    ['', 'failure', 'Failure'],
  ];
  for (const [text, kind, message] of cases) {
    it(`${JSON.stringify(text)} → ${kind}`, () => {
      const err = fileErrorFromText(text);
      assert.equal(err.kind, kind);
      assert.equal(err.message, message);
    });
  }

  it('judges only the reason, not a path that happens to contain such words', () => {
    assert.equal(fileErrorFromText("mkdir: can't create directory '/Permission denied': File exists").kind, 'failure');
  });
});
