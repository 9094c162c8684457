/** The Airlock binary recording: lossless round trip, CBOR framing, and tamper evidence. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryWriter } from '../../src/audit/format/binary-writer.js';
import { compressBinaryBuffer } from '../../src/audit/format/binary-compress.js';
import { scanBinary } from '../../src/audit/format/binary-reader.js';
import { BINARY_HEADER_LENGTH, binaryHeader, parseBinaryHeader, type AuditMessage } from '../../src/audit/format/binary-format.js';
import { IoMessageEncoder, cborItemEnd, decodeCbor, encodeCbor } from '../../src/audit/format/cbor.js';
import { BufferSink } from '../../src/audit/file-sink.js';
import { AuditType } from '../../src/audit/events.js';
import { randomBytes } from 'node:crypto';

const NOISE = randomBytes(300_000);

const T0 = 1_795_000_000_000_000_000n;

async function sample(): Promise<{ file: Buffer; digest: string }> {
  const sink = new BufferSink();
  const w = new BinaryWriter({ connectionId: 'c1', sink, writeHeader: true });
  w.event(T0, AuditType.Connect, null, { remoteAddress: '10.0.0.1:4242' });
  w.event(T0 + 1n, AuditType.PubkeySuccess, null, { username: 'alice', fingerprint: 'SHA256:abc' });
  w.event(T0 + 2n, AuditType.ChannelRequestExec, 0, { command: 'ls -la' });
  w.io(T0 + 3n, 0, 1, Buffer.from('total 0\n'));
  w.commit();
  w.checkpoint(T0 + 4n);
  w.io(T0 + 5n, 0, 2, NOISE);
  w.io(T0 + 6n, 0, 0, Buffer.from([0, 1, 2, 255]));
  w.event(T0 + 7n, AuditType.ExitStatus, 0, { exitStatus: 0 });
  const { digest } = w.seal(T0 + 8n, { complete: true });
  // The recorder writes messages uncompressed to the spool and gzips them once sealed.
  return { file: compressBinaryBuffer(sink.toBuffer()), digest };
}

async function messagesOf(file: Buffer): Promise<AuditMessage[]> {
  const out: AuditMessage[] = [];
  await scanBinary([file], (m) => {
    out.push(m);
  });
  return out;
}

describe('binary recording format', () => {
  it('starts with the 40-byte header: magic and version 1', () => {
    const h = binaryHeader();
    assert.equal(h.length, BINARY_HEADER_LENGTH);
    assert.equal(h.subarray(0, 12).toString('ascii'), 'AirlockAudit');
    assert.equal(h.readBigUInt64LE(32), 1n);
    assert.equal(parseBinaryHeader(h), 1);
    assert.throws(() => parseBinaryHeader(Buffer.concat([Buffer.from('ContainerSSH-Auditlog'), Buffer.alloc(19)])), /bad magic/);
  });

  it('round-trips every event losslessly with nanosecond timestamps and ContainerSSH numbering', async () => {
    const { file, digest } = await sample();
    const msgs = await messagesOf(file);
    assert.deepEqual(
      msgs.map((m) => m.type),
      [0, 105, 403, 500, 998, 500, 500, 499, 999],
    );
    assert.deepEqual(msgs[0], { connectionId: 'c1', timestampNs: T0, type: 0, channelId: null, payload: { remoteAddress: '10.0.0.1:4242' } });
    assert.deepEqual(msgs[2]?.payload, { command: 'ls -la' });
    assert.equal(msgs[3]?.timestampNs, T0 + 3n);
    assert.deepEqual({ ...msgs[3]?.payload, data: Buffer.from(msgs[3]?.payload['data'] as Uint8Array).toString() }, { stream: 1, data: 'total 0\n' });
    assert.equal((msgs[5]?.payload['data'] as Uint8Array).length, 300_000);
    assert.equal(msgs[5]?.payload['stream'], 2);
    assert.deepEqual([...(msgs[6]?.payload['data'] as Uint8Array)], [0, 1, 2, 255]);
    const scan = await scanBinary([file]);
    assert.deepEqual(scan.problems, []);
    assert.equal(scan.truncated, false);
    assert.equal(scan.seal?.complete, true);
    assert.equal(scan.seal?.digest, digest);
    assert.equal(scan.messages, 9);
  });

  it('hand-built I/O messages are plain CBOR maps that cbor-x decodes', () => {
    const enc = new IoMessageEncoder('abcdef');
    for (const [channel, length] of [[0, 0], [23, 23], [24, 255], [300, 70_000]] as const) {
      const data = Buffer.alloc(length, 7);
      const bytes = Buffer.concat([enc.prefix(T0, channel, 2, length), data]);
      assert.equal(cborItemEnd(bytes, 0), bytes.length);
      const v = decodeCbor(bytes) as Record<string, unknown>;
      assert.equal(v['connectionId'], 'abcdef');
      assert.equal(v['timestamp'], T0);
      assert.equal(v['type'], 500);
      assert.equal(v['channelId'], channel);
      assert.equal(((v['payload'] as Record<string, unknown>)['data'] as Uint8Array).length, length);
    }
  });

  it('the CBOR scanner reports incomplete items and refuses malformed ones', () => {
    const item = encodeCbor({ a: [1, 2, { b: 'x'.repeat(300) }], c: null, d: 1.5, e: -7n });
    assert.equal(cborItemEnd(item, 0), item.length);
    for (let cut = 0; cut < item.length; cut += 17) assert.equal(cborItemEnd(item.subarray(0, cut), 0), undefined);
    assert.equal(cborItemEnd(Buffer.from([0x9f, 0x01, 0x02, 0xff]), 0), 4); // indefinite array
    assert.throws(() => cborItemEnd(Buffer.from([0x1c]), 0), /reserved/);
    assert.throws(() => cborItemEnd(Buffer.from([0xff]), 0), /break/);
  });

  it('a recording cut short is readable up to the cut and reported as truncated (gzip and spool form)', async () => {
    const { file } = await sample();
    const cut = file.subarray(0, file.length - 30);
    const scan = await scanBinary([cut]);
    assert.equal(scan.truncated, true);
    assert.equal(scan.seal, undefined);
    assert.ok(scan.messages >= 5, `decoded ${scan.messages} messages`);

    const sink = new BufferSink();
    const w = new BinaryWriter({ connectionId: 'c1', sink, writeHeader: true });
    w.event(T0, AuditType.Connect, null, {});
    w.io(T0 + 1n, 0, 1, Buffer.from('partial'));
    w.commit();
    const spool = sink.toBuffer();
    const raw = await scanBinary([spool.subarray(0, spool.length - 3)], undefined, { raw: true });
    assert.equal(raw.messages, 1);
    assert.equal(raw.truncated, true);
    const one = new BufferSink();
    const w1 = new BinaryWriter({ connectionId: 'c1', sink: one, writeHeader: true });
    w1.event(T0, AuditType.Connect, null, {});
    w1.commit();
    assert.equal(raw.validBytes, one.toBuffer().length, 'where recovery cuts: after the last complete message');
  });

  it('on its own, detects modified content or header bytes, reordered messages and appended data', async () => {
    // (Deflate can encode the same output in several ways, so a byte of the compressed stream
    // may change without changing any message: the manifest's SHA-256 covers that, see
    // audit-verify.test.ts.)
    const { file } = await sample();
    const positions = [...Array.from({ length: 50 }, (_, i) => i), ...Array.from({ length: Math.floor(file.length / 4999) }, (_, i) => 50 + i * 4999), file.length - 9, file.length - 1];
    for (const pos of positions) {
      const bad = Buffer.from(file);
      bad[pos] = (bad[pos] as number) ^ 0x01;
      let flagged: boolean;
      try {
        const scan = await scanBinary([bad]);
        flagged = scan.problems.length > 0 || scan.truncated;
      } catch {
        flagged = true; // header no longer parses
      }
      assert.ok(flagged, `modification at byte ${pos} not detected`);
    }
    const appended = await scanBinary([Buffer.concat([file, Buffer.from('more')])]);
    assert.ok(appended.problems.length > 0);

    // Reorder two messages and rebuild a well-formed file: only the chain notices.
    const raws: Buffer[] = [];
    await scanBinary([file], (_m, raw) => {
      raws.push(Buffer.from(raw));
    });
    [raws[1], raws[2]] = [raws[2] as Buffer, raws[1] as Buffer];
    const rebuilt = compressBinaryBuffer(Buffer.concat([binaryHeader(), ...raws]));
    const reordered = await scanBinary([rebuilt]);
    assert.ok(reordered.problems.some((p) => /does not match the hash chain/.test(p)), reordered.problems.join('; '));
  });

  it('compression stores random stretches and deflates text ones, as several gzip members', async () => {
    const sink = new BufferSink();
    const w = new BinaryWriter({ connectionId: 'c1', sink, writeHeader: true });
    const text = Buffer.from('drwxr-xr-x 2 airlock airlock 4096 Nov  5 10:00 build-output\n'.repeat(30_000));
    const noise = randomBytes(2_500_000);
    w.io(T0, 0, 1, text);
    w.io(T0 + 1n, 0, 1, noise);
    w.io(T0 + 2n, 0, 1, text);
    w.seal(T0 + 3n, { complete: true });
    const spool = sink.toBuffer();
    const file = compressBinaryBuffer(spool);
    assert.ok(file.length < noise.length + text.length / 2, `compressed to ${file.length} of ${spool.length}`);
    const data: Buffer[] = [];
    const scan = await scanBinary([file], (m) => {
      if (m.type === AuditType.IO) data.push(Buffer.from(m.payload['data'] as Uint8Array));
    });
    assert.deepEqual(scan.problems, []);
    assert.equal(scan.truncated, false);
    assert.ok(Buffer.concat(data).equals(Buffer.concat([text, noise, text])));
  });
});
