import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { timeoutSignal } from '../../src/core/timeout-signal.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The timer is unref'd (it must never keep a gateway alive), so the test keeps the loop running. */
async function aborted(signal: AbortSignal): Promise<void> {
  const keepAlive = setTimeout(() => undefined, 5_000);
  try {
    await once(signal, 'abort');
  } finally {
    clearTimeout(keepAlive);
  }
}

describe('timeoutSignal', () => {
  it('aborts after the time with a TimeoutError, like AbortSignal.timeout', async () => {
    const signal = timeoutSignal(30);
    assert.equal(signal.aborted, false);
    await aborted(signal);
    assert.ok(signal.reason instanceof DOMException);
    assert.equal((signal.reason as DOMException).name, 'TimeoutError');
  });

  it('still fires inside AbortSignal.any() after garbage collection, with nobody holding it', async () => {
    const outer = new AbortController();
    const combined = AbortSignal.any([outer.signal, timeoutSignal(50)]);
    gc();
    gc();
    await aborted(combined);
    assert.equal((combined.reason as DOMException).name, 'TimeoutError');
    assert.equal(outer.signal.aborted, false);
  });
});
