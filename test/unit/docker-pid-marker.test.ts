/** The PID marker filter: finds and removes the wrapper's line, passes everything else through. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PidMarkerFilter, type MarkerResult } from '../../src/backend/docker/pid-marker.js';

function run(nonce: string, chunks: string[]): { out: string; results: Array<MarkerResult | undefined> } {
  const results: Array<MarkerResult | undefined> = [];
  const filter = new PidMarkerFilter(nonce, (r) => results.push(r));
  let out = '';
  for (const chunk of chunks) {
    const passed = filter.passthrough ? Buffer.from(chunk) : filter.feed(Buffer.from(chunk));
    if (passed) out += passed.toString();
  }
  const held = filter.flush();
  if (held) out += held.toString();
  return { out, results };
}

describe('PidMarkerFilter', () => {
  it('reads pid and stty flag from a TTY line (\\r\\n) and drops the echo before it', () => {
    const { out, results } = run('n1', ['\r\n', 'airlock-pid n1 123 1\r', '\nprompt$ ']);
    assert.equal(out, 'prompt$ ');
    assert.deepEqual(results, [{ pid: 123, sizeSet: true }]);
  });

  it('handles the marker and program output in one chunk', () => {
    const { out, results } = run('n2', ['airlock-pid n2 7 0\nhello\n']);
    assert.equal(out, 'hello\n');
    assert.deepEqual(results, [{ pid: 7, sizeSet: false }]);
  });

  it('ignores a marker with another nonce and passes the bytes on when the stream ends', () => {
    const { out, results } = run('mine', ['airlock-pid other 9 0\n']);
    assert.equal(out, 'airlock-pid other 9 0\n');
    assert.deepEqual(results, [undefined]);
  });

  it('gives up after 8 KiB without a marker and passes everything through', () => {
    const big = 'x'.repeat(9000);
    const { out, results } = run('n3', [big, 'tail']);
    assert.equal(out, `${big}tail`);
    assert.deepEqual(results, [undefined]);
  });

  it('passes the Engine error text through when the wrapper never ran', () => {
    const text = 'OCI runtime exec failed: exec: "/bin/sh": stat /bin/sh: no such file or directory\r\n';
    const { out, results } = run('n4', [text]);
    assert.equal(out, text);
    assert.deepEqual(results, [undefined]);
  });
});
