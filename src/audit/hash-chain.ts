import { createHash } from 'node:crypto';

/**
 * Running SHA-256 hash chain: h0 = SHA-256(seed), h(i) = SHA-256(h(i-1) || message(i)). Any
 * modified, missing, added or reordered message changes every later value, so the final digest
 * (kept in the recording's seal, its manifest and the gateway log) detects tampering.
 */
export class HashChain {
  #value: Buffer;
  #count = 0;

  constructor(seed: Buffer | string) {
    this.#value = createHash('sha256').update(seed).digest();
  }

  /** Continues a chain from a known value and count (recovery appends to a crashed file). */
  static resume(valueHex: string, count: number): HashChain {
    const chain = new HashChain('');
    chain.#value = Buffer.from(valueHex, 'hex');
    chain.#count = count;
    return chain;
  }

  /** Adds one message given as one or more byte ranges (hashed as their concatenation). */
  add(...parts: readonly Uint8Array[]): void {
    const h = createHash('sha256').update(this.#value);
    for (const p of parts) h.update(p);
    this.#value = h.digest();
    this.#count++;
  }

  get value(): Buffer {
    return this.#value;
  }

  get hex(): string {
    return this.#value.toString('hex');
  }

  /** Messages added so far. */
  get count(): number {
    return this.#count;
  }
}

/** Seed of the line chains of text files (asciicast, command log): a fixed domain label. */
export const TEXT_CHAIN_SEED = 'airlock text chain v1';

/**
 * Line chain of a whole text file: each line including its "\n" is one message. A last line
 * without "\n" (a truncated write) is hashed as it is, so truncation changes the result.
 */
export function textChain(content: Buffer): { chain: string; lines: number } {
  const chain = new HashChain(TEXT_CHAIN_SEED);
  let start = 0;
  while (start < content.length) {
    const nl = content.indexOf(0x0a, start);
    const end = nl === -1 ? content.length : nl + 1;
    chain.add(content.subarray(start, end));
    start = end;
  }
  return { chain: chain.hex, lines: chain.count };
}
