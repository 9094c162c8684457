/** The Engine stream demuxer: framing across chunk boundaries, backpressure, ending both outputs. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { once } from 'node:events';
import { DockerStreamDemuxer } from '../../src/backend/docker/stream-demux.js';
import { PidMarkerFilter } from '../../src/backend/docker/pid-marker.js';

function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

async function drain(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('DockerStreamDemuxer', () => {
  const wire = Buffer.concat([
    frame(1, 'hello '),
    frame(2, 'oops\n'),
    frame(1, ''), // zero-length frames happen (e.g. a flush) and must not desynchronise
    frame(2, ''),
    frame(1, 'world\n'),
    frame(3, 'engine error\n'), // the Engine's own error text goes to stderr
    frame(1, Buffer.alloc(300, 0x41)),
  ]);

  it('splits stdout/stderr for every possible chunking, including headers split across chunks', async () => {
    for (let size = 1; size <= wire.length; size += size < 20 ? 1 : 37) {
      const source = new PassThrough();
      const demux = new DockerStreamDemuxer(source, { multiplexed: true });
      const out = drain(demux.stdout);
      const err = drain(demux.stderr);
      for (let i = 0; i < wire.length; i += size) source.write(wire.subarray(i, i + size));
      source.end();
      assert.equal((await out).toString(), `hello world\n${'A'.repeat(300)}`, `chunk size ${size}`);
      assert.equal((await err).toString(), 'oops\nengine error\n', `chunk size ${size}`);
      await demux.finished;
    }
  });

  it('pushes payloads as views of the source chunk (no copy) when a frame fits in one chunk', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: true });
    const payload = Buffer.alloc(1000, 7);
    const chunk = frame(1, payload);
    source.end(chunk);
    const [first] = (await once(demux.stdout, 'data')) as [Buffer];
    assert.equal(first.buffer, chunk.buffer);
    assert.equal(first.length, 1000);
  });

  it('joins small writes that arrive in one turn of the event loop into one push (fewer, bigger SSH packets)', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: true, highWaterMark: 1024 * 1024 });
    const pushes: Buffer[] = [];
    demux.stdout.on('data', (d: Buffer) => pushes.push(d));
    demux.stderr.resume();
    // 16 frames of 4 KiB in two socket reads, as the Engine sends a program's small writes.
    const frames = Array.from({ length: 16 }, (_, i) => frame(1, Buffer.alloc(4096, 97 + i)));
    source.write(Buffer.concat(frames.slice(0, 8)));
    source.write(Buffer.concat(frames.slice(8)));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(pushes.length, 1, 'one push for everything read in that turn');
    assert.equal(pushes[0]?.length, 16 * 4096);
    assert.equal(pushes[0]?.toString('latin1'), Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(4096)).join(''));
    source.end();
    await demux.finished;
  });

  it('pauses the source while a consumer does not read, and delivers everything once it does', async () => {
    const source = new PassThrough({ highWaterMark: 16 * 1024 });
    const demux = new DockerStreamDemuxer(source, { multiplexed: true, highWaterMark: 16 * 1024 });
    const payload = Buffer.alloc(8 * 1024, 0x5a);
    let written = 0;
    let writerBlocked = false;
    for (let i = 0; i < 200 && !writerBlocked; i++) {
      writerBlocked = !source.write(frame(i % 2 === 0 ? 1 : 2, payload));
      written++;
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(writerBlocked, 'the producer sees backpressure');
    assert.equal(source.isPaused(), true, 'the demuxer paused its source');
    assert.ok(demux.stdout.readableLength <= 64 * 1024, `stdout buffers ${demux.stdout.readableLength} bytes`);
    assert.ok(written < 200);
    // Keep producing the rest in the background, honouring backpressure.
    const producer = (async () => {
      for (let i = written; i < 200; i++) {
        if (!source.write(frame(i % 2 === 0 ? 1 : 2, payload))) await once(source, 'drain');
      }
      source.end();
    })();
    const [out, err] = await Promise.all([drain(demux.stdout), drain(demux.stderr), producer]);
    assert.equal(out.length, 100 * payload.length);
    assert.equal(err.length, 100 * payload.length);
    assert.ok(out.every((b) => b === 0x5a));
  });

  it('a full stderr holds stdout back too (both share the source), until stderr is read', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: true, highWaterMark: 1024 });
    source.write(frame(2, Buffer.alloc(4096, 1)));
    source.write(frame(1, 'after'));
    demux.stdout.resume();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(source.isPaused(), true);
    const err = drain(demux.stderr);
    source.end();
    assert.equal((await err).length, 4096);
    await demux.finished;
  });

  it('a destroyed output does not block the other one', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: true, highWaterMark: 1024 });
    demux.stderr.destroy();
    const out = drain(demux.stdout);
    for (let i = 0; i < 50; i++) source.write(frame(i % 2 === 0 ? 1 : 2, Buffer.alloc(1000, 2)));
    source.end();
    assert.equal((await out).length, 25 * 1000);
  });

  it('ends both outputs when the source fails or is destroyed, and records the error', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: true });
    const out = drain(demux.stdout);
    const err = drain(demux.stderr);
    source.write(frame(1, 'partial'));
    source.destroy(new Error('ECONNRESET'));
    assert.equal((await out).toString(), 'partial');
    assert.equal((await err).length, 0);
    await demux.finished;
    assert.equal(demux.error?.message, 'ECONNRESET');
  });

  it('raw (TTY) streams go to stdout unchanged and stderr ends at once', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: false });
    const err = drain(demux.stderr);
    const out = drain(demux.stdout);
    const bytes = Buffer.from([1, 0, 0, 0, 0, 0, 0, 5, 104, 105]);
    source.end(bytes);
    assert.deepEqual(await out, bytes);
    assert.equal((await err).length, 0);
  });

  it('falls back to raw bytes when a header is not a frame header', async () => {
    const source = new PassThrough();
    const demux = new DockerStreamDemuxer(source, { multiplexed: true });
    const out = drain(demux.stdout);
    demux.stderr.resume();
    source.end(Buffer.from('plain text, not framed'));
    assert.equal((await out).toString(), 'plain text, not framed');
  });

  it('strips the PID marker line through the stdout filter, even when split across frames', async () => {
    const source = new PassThrough();
    let pid: number | undefined;
    const filter = new PidMarkerFilter('abc', (result) => {
      pid = result?.pid;
    });
    const demux = new DockerStreamDemuxer(source, { multiplexed: true, stdoutFilter: filter });
    const out = drain(demux.stdout);
    demux.stderr.resume();
    source.write(frame(1, 'airlock-p'));
    source.write(frame(1, 'id abc 42 0\nfirst line\n'));
    source.end(frame(1, 'second\n'));
    assert.equal((await out).toString(), 'first line\nsecond\n');
    assert.equal(pid, 42);
  });
});
