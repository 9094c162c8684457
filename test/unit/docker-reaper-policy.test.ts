/** Which containers the reaper removes, and the exit-status heuristic for signals. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { reapReason, type ReapPolicy } from '../../src/backend/docker/reaper.js';
import { toExitStatus, type SignalName } from '../../src/backend/docker/signals.js';

const now = Date.parse('2030-01-01T12:00:00Z');
const policy: ReapPolicy = {
  gatewayId: 'us',
  hostname: 'here',
  live: new Set(['live-conn']),
  now,
  minAgeMs: 10_000,
  foreignMaxAgeMs: 3_600_000,
  isProcessAlive: (pid) => pid === 100,
};
const minute = 60_000;

function reason(labels: Record<string, string>, ageMs: number): string | undefined {
  return reapReason({ labels, createdMs: now - ageMs }, policy);
}

describe('reapReason', () => {
  it('keeps our containers of live connections and young ones; removes ours of gone connections', () => {
    assert.equal(reason({ 'airlock.gateway': 'us', 'airlock.connection': 'live-conn' }, 10 * minute), undefined);
    assert.equal(reason({ 'airlock.gateway': 'us', 'airlock.connection': 'gone' }, 5_000), undefined);
    assert.equal(reason({ 'airlock.gateway': 'us', 'airlock.connection': 'gone' }, minute), 'connection gone');
  });

  it('removes containers of a dead gateway process on this host, keeps those of a live one or another host', () => {
    const theirs = { 'airlock.gateway': 'them', 'airlock.gateway-host': 'here', 'airlock.connection': 'c' };
    assert.equal(reason({ ...theirs, 'airlock.gateway-pid': '200' }, minute), 'gateway process gone');
    assert.equal(reason({ ...theirs, 'airlock.gateway-pid': '100' }, minute), undefined);
    assert.equal(reason({ ...theirs, 'airlock.gateway-host': 'elsewhere', 'airlock.gateway-pid': '200' }, minute), undefined);
  });

  it('removes foreign containers past foreignMaxAge and any container past its deadline', () => {
    assert.equal(reason({ 'airlock.gateway': 'them', 'airlock.gateway-host': 'elsewhere' }, 2 * 3_600_000), 'older than foreignMaxAge');
    assert.equal(reason({ 'airlock.gateway': 'us', 'airlock.connection': 'live-conn', 'airlock.deadline': '2030-01-01T11:59:00Z' }, minute), 'deadline passed');
    assert.equal(reason({ 'airlock.gateway': 'us', 'airlock.connection': 'live-conn', 'airlock.deadline': '2030-01-01T12:01:00Z' }, minute), undefined);
  });
});

describe('toExitStatus', () => {
  const none = new Set<SignalName>();
  it('reports 128+n as signal n only when the gateway delivered n', () => {
    assert.deepEqual(toExitStatus(143, new Set<SignalName>(['TERM']), false), { kind: 'signal', signal: 'TERM', coreDumped: false });
    assert.deepEqual(toExitStatus(143, none, false), { kind: 'code', code: 143 });
    assert.deepEqual(toExitStatus(130, new Set<SignalName>(['TERM']), false), { kind: 'code', code: 130 });
    assert.deepEqual(toExitStatus(7, new Set<SignalName>(['TERM']), false), { kind: 'code', code: 7 });
  });

  it('reports an OOM kill as KILL', () => {
    assert.deepEqual(toExitStatus(137, none, true), { kind: 'signal', signal: 'KILL', coreDumped: false });
    assert.deepEqual(toExitStatus(137, none, false), { kind: 'code', code: 137 });
  });
});
