import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { createGzip, gzipSync, constants as zlibConstants, type Gzip } from 'node:zlib';
import { hashingTap } from '../hashing-tap.js';
import { BINARY_HEADER_LENGTH } from './binary-format.js';

/** The spool file the recorder writes: header + uncompressed messages (never uploaded). */
export const BINARY_SPOOL_FILE = 'audit.airlock.spool';

// Level 1: terminal text still shrinks ~5×. Deflate gains nothing on random or already
// compressed bytes but is ~10× slower on them than storing: such blocks are stored (level 0).
const BLOCK = 1024 * 1024;
const SAMPLE = 4096;
/** Bits per byte above which deflate saves too little to be worth its CPU (base64 is 6, text ~5). */
const INCOMPRESSIBLE_BITS = 5.8;

function log2(n: number): number {
  return n === 0 ? 0 : Math.log2(n);
}

/** Shannon entropy of a sample from the middle of the block. */
export function looksIncompressible(buf: Buffer): boolean {
  const start = Math.max(0, Math.floor(buf.length / 2) - SAMPLE / 2);
  const end = Math.min(buf.length, start + SAMPLE);
  const counts = new Uint32Array(256);
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number;
    counts[byte] = (counts[byte] as number) + 1;
  }
  const n = end - start;
  let sum = 0;
  for (const c of counts) sum += c * log2(c);
  return log2(n) - sum / n > INCOMPRESSIBLE_BITS;
}

function levelFor(block: Buffer): number {
  return block.length >= SAMPLE && looksIncompressible(block) ? zlibConstants.Z_NO_COMPRESSION : zlibConstants.Z_BEST_SPEED;
}

/**
 * The messages as gzip: one member per run of 1 MiB blocks of the same kind (RFC 1952 allows
 * several members; gunzip, Go's gzip.Reader and Node read them as one stream).
 */
async function* gzipMembers(blocks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let member: Gzip | undefined;
  let memberLevel = -1;
  const out: Buffer[] = [];
  const endMember = async () => {
    if (!member) return;
    const ended = once(member, 'end');
    member.end();
    await ended;
    member = undefined;
  };
  for await (const block of blocks) {
    const level = levelFor(block);
    if (level !== memberLevel) {
      await endMember();
      memberLevel = level;
      member = createGzip({ level });
      member.on('data', (c: Buffer) => out.push(c));
    }
    const m = member as Gzip;
    if (!m.write(block)) await once(m, 'drain');
    while (out.length > 0) yield out.shift() as Buffer;
  }
  if (!member) {
    member = createGzip({ level: zlibConstants.Z_BEST_SPEED });
    member.on('data', (c: Buffer) => out.push(c));
  }
  await endMember();
  while (out.length > 0) yield out.shift() as Buffer;
}

/**
 * Turns a spool file into the stored binary format: the 40-byte header as it is, then the
 * messages gzip'd. Written to a temp name, fsync'd and renamed, so a crash never leaves a
 * half-compressed file under the final name. Returns the size and SHA-256 of the result.
 */
export async function compressBinaryFile(spoolPath: string, finalPath: string): Promise<{ bytes: number; sha256: string }> {
  const tmp = `${finalPath}.tmp`;
  const header = Buffer.alloc(BINARY_HEADER_LENGTH);
  const fh = await open(spoolPath, 'r');
  try {
    const { bytesRead } = await fh.read(header, 0, BINARY_HEADER_LENGTH, 0);
    if (bytesRead !== BINARY_HEADER_LENGTH) throw new Error(`${spoolPath} is too short for a recording header`);
  } finally {
    await fh.close();
  }
  const { tap, result } = hashingTap();
  try {
    const out = createWriteStream(tmp, { mode: 0o600 });
    await pipeline(
      async function* () {
        yield header;
        yield* gzipMembers(createReadStream(spoolPath, { start: BINARY_HEADER_LENGTH, highWaterMark: BLOCK }));
      },
      tap,
      out,
    );
    const synced = await open(tmp, 'r+');
    try {
      await synced.sync();
    } finally {
      await synced.close();
    }
    await rename(tmp, finalPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return result();
}

/** The same for a recording held in memory (exports, tests). */
export function compressBinaryBuffer(spool: Buffer): Buffer {
  const body = spool.subarray(BINARY_HEADER_LENGTH);
  const runs: Array<{ start: number; end: number; level: number }> = [];
  for (let off = 0; off < body.length; off += BLOCK) {
    const end = Math.min(off + BLOCK, body.length);
    const level = levelFor(body.subarray(off, end));
    const last = runs[runs.length - 1];
    if (last && last.level === level) last.end = end;
    else runs.push({ start: off, end, level });
  }
  if (runs.length === 0) runs.push({ start: 0, end: 0, level: zlibConstants.Z_BEST_SPEED });
  return Buffer.concat([spool.subarray(0, BINARY_HEADER_LENGTH), ...runs.map((r) => gzipSync(body.subarray(r.start, r.end), { level: r.level }))]);
}
