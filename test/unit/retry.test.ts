import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { retry } from '../../src/core/retry.js';
import { parseDuration } from '../../src/core/duration.js';

describe('retry', () => {
  it('retries until success', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new Error('not yet');
        return 'ok';
      },
      { deadline: Date.now() + 5000, initialDelayMs: 1, random: () => 0 },
    );
    assert.equal(value, 'ok');
    assert.equal(calls, 3);
  });

  it('gives up at the deadline with the last error', async () => {
    let calls = 0;
    const started = Date.now();
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error(`fail ${calls}`);
        },
        { deadline: Date.now() + 150, initialDelayMs: 20, maxDelayMs: 40 },
      ),
      /fail \d+/,
    );
    assert.ok(calls >= 2, `retried (${calls} calls)`);
    assert.ok(Date.now() - started < 1000);
  });

  it('does not retry errors the caller marks final', async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error('final');
        },
        { deadline: Date.now() + 5000, retryable: () => false },
      ),
      /final/,
    );
    assert.equal(calls, 1);
  });

  it('stops when aborted', async () => {
    const abort = new AbortController();
    const p = retry(
      async () => {
        abort.abort();
        throw new Error('x');
      },
      { deadline: Date.now() + 5000, initialDelayMs: 1000, signal: abort.signal },
    );
    await assert.rejects(p, (err: Error) => err.name === 'AbortError' || /x/.test(err.message));
  });
});

describe('parseDuration', () => {
  it('reads ContainerSSH-style durations', () => {
    assert.equal(parseDuration('60s'), 60_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration(250), 250);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.throws(() => parseDuration('soon'), /not a duration/);
  });
});
