/**
 * The SFTP handle logic: READ/WRITE offsets onto the backend's sequential streams (one stream
 * per sequential run, reopened only when access jumps), plus the pure SFTP translations.
 * The backend here is an in-memory WorkloadFiles; the real one is exercised through the gateway.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { FileAttributes, FileReader, FileWriter, OpenWriteFlags, WorkloadFiles } from '../../src/backend/backend.js';
import { WorkloadFileError } from '../../src/backend/file-error.js';
import { ByteReader, OpenFile } from '../../src/ssh/sftp-file.js';
import { changesOf, longName, modeString, openModeOf, OPEN_FLAG, resolvePath } from '../../src/ssh/sftp-attrs.js';

const attrs = (size: number): FileAttributes => ({ mode: 0o100644, size, uid: 1000, gid: 1000, atime: 0, mtime: 0, nlink: 1, owner: 'dev', group: 'dev' });

/** In-memory files; records every stream it opens; can make a writer fail after N bytes. */
class MemoryFiles implements Partial<WorkloadFiles> {
  readonly home = '/home/dev';
  readonly data = new Map<string, Buffer>();
  readonly opens: Array<[string, number, string?]> = [];
  failWritesAfter: number | undefined;

  async stat(path: string): Promise<FileAttributes> {
    const d = this.data.get(path);
    if (!d) throw new WorkloadFileError('no-such-file', 'No such file or directory');
    return attrs(d.length);
  }

  async openRead(path: string, offset: number): Promise<FileReader> {
    const d = this.data.get(path);
    if (!d) throw new WorkloadFileError('no-such-file', 'No such file or directory');
    this.opens.push(['read', offset]);
    const chunks: Buffer[] = [];
    // Odd chunk sizes, so requests straddle chunk boundaries.
    for (let p = offset; p < d.length; p += 7_777) chunks.push(d.subarray(p, Math.min(d.length, p + 7_777)));
    const stream = Readable.from(chunks, { objectMode: false });
    const finished = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    return { stream, attrs: attrs(d.length), finished, close: async () => void stream.destroy() };
  }

  async openWrite(path: string, flags: OpenWriteFlags, offset: number): Promise<FileWriter> {
    if (!this.data.has(path) && !flags.create) throw new WorkloadFileError('no-such-file', 'No such file or directory');
    if (flags.truncate || !this.data.has(path)) this.data.set(path, Buffer.alloc(0));
    this.opens.push(['write', offset, `${flags.create ? 'c' : ''}${flags.truncate ? 't' : ''}${flags.append ? 'a' : ''}`]);
    let pos = offset;
    let written = 0;
    let fail!: (err: Error) => void;
    let done!: () => void;
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve;
      fail = reject;
    });
    const stream = new Writable({
      highWaterMark: 16 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        written += chunk.length;
        if (this.failWritesAfter !== undefined && written > this.failWritesAfter) {
          fail(new WorkloadFileError('failure', 'No space left on device'));
          return cb();
        }
        const cur = this.data.get(path)!;
        const at = flags.append ? cur.length : pos;
        const next = Buffer.alloc(Math.max(cur.length, at + chunk.length));
        cur.copy(next);
        chunk.copy(next, at);
        this.data.set(path, next);
        pos = at + chunk.length;
        setImmediate(cb);
      },
      final: (cb) => {
        done();
        cb();
      },
    });
    return {
      stream,
      finished,
      close: async () => {
        stream.end();
        await finished;
      },
    };
  }
}

const READ_ONLY = openModeOf(OPEN_FLAG.READ, undefined);
const WRITE_NEW = openModeOf(OPEN_FLAG.WRITE | OPEN_FLAG.CREAT | OPEN_FLAG.TRUNC, { mode: 0o644 });

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

async function readAll(file: OpenFile, from: number, step: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = from; ; off += step) {
    const d = await file.read(off, step);
    if (d === null) break;
    assert.ok(d.length === step || (await file.read(off + d.length, step)) === null, 'short reads only at the end');
    parts.push(d);
  }
  return Buffer.concat(parts);
}

describe('OpenFile', () => {
  it('serves sequential READs from one stream, each exactly the size asked for', async () => {
    const files = new MemoryFiles();
    const content = pattern(300_000);
    files.data.set('/f', content);
    const file = await OpenFile.open(files as unknown as WorkloadFiles, '/f', READ_ONLY);
    // OpenSSH keeps many READs in flight: issue them all at once.
    const reads = Array.from({ length: 12 }, (_, i) => file.read(i * 32_768, 32_768));
    const got = await Promise.all(reads);
    assert.ok(Buffer.concat(got.filter((g): g is Buffer => g !== null)).equals(content));
    assert.equal(got.at(-1), null);
    assert.deepEqual(files.opens, [['read', 0]]);
    assert.equal(file.bytesRead, content.length);
    await file.close();
  });

  it('reopens at the offset when reads go backwards or jump far, skips a short gap', async () => {
    const files = new MemoryFiles();
    const content = pattern(3 * 1024 * 1024);
    files.data.set('/f', content);
    const file = await OpenFile.open(files as unknown as WorkloadFiles, '/f', READ_ONLY);
    assert.ok((await file.read(0, 1000))!.equals(content.subarray(0, 1000)));
    assert.ok((await file.read(5000, 1000))!.equals(content.subarray(5000, 6000))); // skipped
    assert.ok((await file.read(10, 20))!.equals(content.subarray(10, 30))); // backwards
    assert.ok((await file.read(2_500_000, 100))!.equals(content.subarray(2_500_000, 2_500_100))); // far
    assert.deepEqual(files.opens, [
      ['read', 0],
      ['read', 10],
      ['read', 2_500_000],
    ]);
    await file.close();
  });

  it('writes sequentially through one stream; a jump reopens without create/truncate', async () => {
    const files = new MemoryFiles();
    const file = await OpenFile.open(files as unknown as WorkloadFiles, '/new', WRITE_NEW);
    const content = pattern(200_000);
    await Promise.all(Array.from({ length: 7 }, (_, i) => file.write(i * 32_768, content.subarray(i * 32_768, (i + 1) * 32_768))));
    await file.write(5, Buffer.from('HELLO'));
    await file.close();
    const expected = Buffer.from(content);
    expected.write('HELLO', 5);
    assert.ok(files.data.get('/new')!.equals(expected));
    assert.deepEqual(files.opens, [
      ['write', 0, 'ct'],
      ['write', 5, ''],
    ]);
    assert.equal(file.bytesWritten, content.length + 5);
  });

  it('append ignores offsets', async () => {
    const files = new MemoryFiles();
    files.data.set('/log', Buffer.from('a'));
    const file = await OpenFile.open(files as unknown as WorkloadFiles, '/log', openModeOf(OPEN_FLAG.WRITE | OPEN_FLAG.APPEND, undefined));
    await file.write(0, Buffer.from('b'));
    await file.write(0, Buffer.from('c'));
    await file.close();
    assert.equal(files.data.get('/log')!.toString(), 'abc');
    assert.deepEqual(files.opens, [['write', 0, 'a']]);
  });

  it('a failing writer fails the next WRITE or the CLOSE; a read-only handle refuses writes', async () => {
    const files = new MemoryFiles();
    files.failWritesAfter = 50_000;
    const file = await OpenFile.open(files as unknown as WorkloadFiles, '/full', WRITE_NEW);
    let failure: unknown;
    try {
      for (let i = 0; i < 10; i++) await file.write(i * 32_768, pattern(32_768));
      await file.close();
    } catch (err) {
      failure = err;
    }
    assert.ok(failure instanceof WorkloadFileError && /No space left/.test(failure.message), String(failure));
    files.data.set('/ro', Buffer.from('x'));
    const ro = await OpenFile.open(files as unknown as WorkloadFiles, '/ro', READ_ONLY);
    await assert.rejects(ro.write(0, Buffer.from('y')), (err: unknown) => err instanceof WorkloadFileError && err.kind === 'permission-denied');
    await ro.close();
  });

  it('reads after writes on a read-write handle see the written bytes', async () => {
    const files = new MemoryFiles();
    const file = await OpenFile.open(files as unknown as WorkloadFiles, '/rw', openModeOf(OPEN_FLAG.READ | OPEN_FLAG.WRITE | OPEN_FLAG.CREAT, undefined));
    await file.write(0, Buffer.from('hello'));
    assert.equal((await file.read(0, 100))?.toString(), 'hello');
    assert.equal((await file.fstat()).size, 5);
    await file.close();
    assert.ok((await readAll(await OpenFile.open(files as unknown as WorkloadFiles, '/rw', READ_ONLY), 0, 2)).equals(Buffer.from('hello')));
  });
});

describe('ByteReader', () => {
  it('hands out exact sizes across chunks, the rest at the end, then null', async () => {
    const source = new PassThrough();
    const reader = new ByteReader(source);
    const first = reader.read(10);
    source.write(Buffer.from('abc'));
    source.write(Buffer.from('defghij'));
    source.write(Buffer.from('klm'));
    assert.equal((await first)?.toString(), 'abcdefghij');
    source.end(Buffer.from('n'));
    assert.equal((await reader.read(10))?.toString(), 'klmn');
    assert.equal(await reader.read(10), null);
  });
});

describe('SFTP translations', () => {
  it('openModeOf: no flags is read-only; EXCL only with CREAT; mode bits kept', () => {
    assert.deepEqual(openModeOf(0, undefined), { read: true, write: false, flags: { create: false, truncate: false, exclusive: false, append: false } });
    const m = openModeOf(OPEN_FLAG.WRITE | OPEN_FLAG.CREAT | OPEN_FLAG.EXCL, { mode: 0o100755 });
    assert.deepEqual(m, { read: false, write: true, flags: { create: true, truncate: false, exclusive: true, append: false, mode: 0o755 } });
    assert.equal(openModeOf(OPEN_FLAG.WRITE | OPEN_FLAG.EXCL, undefined).flags.exclusive, false);
  });

  it('changesOf keeps owner and times only as pairs', () => {
    assert.deepEqual(changesOf({ uid: 1, atime: 5 }), {});
    assert.deepEqual(changesOf({ uid: 1, gid: 2, atime: 5, mtime: 6, size: 0, mode: 0o100600 }), { uid: 1, gid: 2, atime: 5, mtime: 6, size: 0, mode: 0o600 });
  });

  it('modeString and longName look like ls -l', () => {
    assert.equal(modeString(0o040755), 'drwxr-xr-x');
    assert.equal(modeString(0o104755), '-rwsr-xr-x');
    assert.equal(modeString(0o041777), 'drwxrwxrwt');
    assert.equal(modeString(0o120777), 'lrwxrwxrwx');
    const jan = Date.UTC(2026, 0, 5, 9, 7) / 1000;
    assert.equal(longName('notes.txt', { ...attrs(1234), mtime: jan }, jan + 60), '-rw-r--r--   1 dev      dev          1234 Jan  5 09:07 notes.txt');
    assert.equal(longName('old', { ...attrs(1), mtime: jan }, jan + 365 * 86400), '-rw-r--r--   1 dev      dev             1 Jan  5  2026 old');
  });

  it('resolvePath: relative to home, lexical, "" is home; NUL is refused', () => {
    assert.equal(resolvePath('/home/dev', ''), '/home/dev');
    assert.equal(resolvePath('/home/dev', '.'), '/home/dev');
    assert.equal(resolvePath('/home/dev', 'a/../b'), '/home/dev/b');
    assert.equal(resolvePath('/home/dev', '/etc//passwd'), '/etc/passwd');
    assert.equal(resolvePath('/home/dev', '../../..'), '/');
    assert.throws(() => resolvePath('/home/dev', 'a\0b'), WorkloadFileError);
  });
});
