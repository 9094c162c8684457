/** Replay pacing: recorded pace, --speed, --max-wait. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { replayCast } from '../../src/audit/replay.js';
import type { ParsedCast } from '../../src/audit/format/asciicast.js';

const cast: ParsedCast = {
  header: { version: 2, width: 80, height: 24 },
  events: [
    [0.1, 'o', 'a'],
    [0.2, 'i', 'typed'],
    [0.4, 'o', 'b'],
    [0.4, 'r', '100x30'],
    [2.4, 'o', 'c'],
  ],
};

async function timed(speed: number, maxWaitMs?: number): Promise<{ out: string; ms: number }> {
  let out = '';
  const start = performance.now();
  await replayCast(cast, (t) => (out += t), { speed, ...(maxWaitMs !== undefined ? { maxWaitMs } : {}) });
  return { out, ms: performance.now() - start };
}

describe('replay', () => {
  it('plays output events only, in order', async () => {
    assert.equal((await timed(0)).out, 'abc');
  });

  it('keeps the recorded pace, scaled by --speed, idle capped by --max-wait', async () => {
    const real = await timed(1, 500);
    // 0.1 + 0.3 + min(2.0, 0.5) = 0.9 s
    assert.ok(real.ms >= 850 && real.ms < 1600, `real pace took ${real.ms} ms`);
    const fast = await timed(4);
    // 2.4 s / 4 = 0.6 s
    assert.ok(fast.ms >= 550 && fast.ms < 1300, `4x took ${fast.ms} ms`);
    const instant = await timed(0);
    assert.ok(instant.ms < 100);
  });
});
