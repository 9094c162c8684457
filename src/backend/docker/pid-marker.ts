import { randomBytes } from 'node:crypto';
import type { StdoutFilter } from './stream-demux.js';

/**
 * The Engine cannot signal a `docker exec`'d process, so the exec's wrapper shell prints one line
 * before it `exec`s the user's program: `airlock-pid <nonce> <pid> <stty-ok>`. This filter finds
 * that line in the first stdout bytes, reports the PID, and removes the line (and anything the
 * wrapper's terminal echoed before it) so the user never sees it. With a TTY the line ends in
 * "\r\n", without in "\n". If the line never comes (no /bin/sh in the image, the exec failed),
 * the held bytes are passed on unchanged so the user sees the Engine's error text.
 */
export interface MarkerResult {
  readonly pid: number;
  /** The wrapper set the terminal size itself with `stty` (so no resize call is needed). */
  readonly sizeSet: boolean;
}

const PREFIX = 'airlock-pid ';
/** Give up (and pass bytes through) if the marker has not appeared within this many bytes. */
const MAX_HELD = 8 * 1024;

export function newMarkerNonce(): string {
  return randomBytes(8).toString('hex');
}

/** The shell command that prints the marker line (`$$` is the wrapper, which then execs). */
export function markerEcho(nonce: string, sizeVar?: string): string {
  return `echo "${PREFIX}${nonce} $$ ${sizeVar ? `\${${sizeVar}:-0}` : '0'}"`;
}

export class PidMarkerFilter implements StdoutFilter {
  passthrough = false;
  readonly #needle: Buffer;
  readonly #onResult: (result: MarkerResult | undefined) => void;
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(nonce: string, onResult: (result: MarkerResult | undefined) => void) {
    this.#needle = Buffer.from(`${PREFIX}${nonce} `, 'latin1');
    this.#onResult = onResult;
  }

  feed(chunk: Buffer): Buffer | undefined {
    if (this.passthrough) return chunk;
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    const all = this.#held.length === 1 ? chunk : Buffer.concat(this.#held, this.#heldBytes);
    this.#held = [all];
    const start = all.indexOf(this.#needle);
    if (start >= 0) {
      const lineEnd = all.indexOf(0x0a, start + this.#needle.length);
      if (lineEnd >= 0) {
        const fields = all
          .subarray(start + this.#needle.length, lineEnd)
          .toString('latin1')
          .trim()
          .split(' ');
        const pid = Number(fields[0]);
        this.#finish();
        this.#onResult(Number.isSafeInteger(pid) && pid > 0 ? { pid, sizeSet: fields[1] === '1' } : undefined);
        return all.subarray(lineEnd + 1);
      }
    }
    if (this.#heldBytes > MAX_HELD) {
      this.#finish();
      this.#onResult(undefined);
      return all;
    }
    return undefined;
  }

  flush(): Buffer | undefined {
    if (this.passthrough) return undefined;
    const held = this.#held.length === 0 ? undefined : Buffer.concat(this.#held, this.#heldBytes);
    this.#finish();
    this.#onResult(undefined);
    return held;
  }

  #finish(): void {
    this.passthrough = true;
    this.#held = [];
    this.#heldBytes = 0;
  }
}
