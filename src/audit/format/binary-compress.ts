import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync, constants as zlibConstants } from 'node:zlib';
import { hashingTap } from '../hashing-tap.js';
import { BINARY_HEADER_LENGTH } from './binary-format.js';

/** The spool file the recorder writes: header + uncompressed messages (never uploaded). */
export const BINARY_SPOOL_FILE = 'audit.airlock.spool';

// Level 1: terminal text still shrinks ~5×; compression runs after the session, on the thread pool.
const GZIP_OPTIONS = { level: zlibConstants.Z_BEST_SPEED };

/**
 * Turns a spool file into the stored binary format: the 40-byte header as it is, then one gzip
 * stream of the messages. Written to a temp name, fsync'd and renamed, so a crash never leaves a
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
        yield* createReadStream(spoolPath, { start: BINARY_HEADER_LENGTH }).pipe(createGzip(GZIP_OPTIONS));
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
  return Buffer.concat([spool.subarray(0, BINARY_HEADER_LENGTH), gzipSync(spool.subarray(BINARY_HEADER_LENGTH), GZIP_OPTIONS)]);
}
