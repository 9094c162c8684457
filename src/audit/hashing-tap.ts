import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

/** A pass-through that counts and SHA-256-hashes every byte going through it. */
export function hashingTap(): { tap: Transform; result(): { bytes: number; sha256: string } } {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { tap, result: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/** Reads what a consumer left in the stream (bytes after the end of a gzip stream still count). */
export async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  try {
    for await (const rest of stream) void rest;
  } catch {
    // Stopped early by the consumer; the size/SHA-256 comparison reports any difference.
  }
}
