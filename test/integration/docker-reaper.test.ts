/**
 * The reaper against the real dockerd: containers labelled like the backend labels them, owned
 * by a dead gateway process, by our gateway with an unknown connection, past their deadline —
 * and the ones it must keep.
 */
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { createReaper } from '../../src/backend/docker/index.js';
import { newGatewayId } from '../../src/core/ids.js';
import { assertNoLeakedContainers, ensureTestImage, managedContainers, TEST_IMAGE } from '../helpers/docker.js';

const run = promisify(execFile);

interface LogLine {
  msg: string;
  containerId?: string;
  reason?: string;
}

function captureLogger(onLine?: (line: LogLine) => void): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        onLine?.(line);
      }
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid;
  await once(child, 'exit');
  assert.ok(pid);
  return pid;
}

/** `docker create` with airlock labels (never started). */
async function createLabelled(labels: Record<string, string>): Promise<string> {
  const args = ['create', '--entrypoint', '/bin/true'];
  for (const [k, v] of Object.entries({ 'airlock.managed': 'true', ...labels })) args.push('--label', `${k}=${v}`);
  const { stdout } = await run('docker', [...args, TEST_IMAGE]);
  return stdout.trim();
}

describe('Docker reaper', () => {
  const ours = `reaper-us-${newGatewayId()}`;
  const theirs = `reaper-them-${newGatewayId()}`;
  const minuteAgo = () => new Date(Date.now() - 60_000).toISOString();
  let baseline: string[];

  before(async () => {
    await ensureTestImage();
  });
  beforeEach(async () => {
    baseline = [...(await managedContainers({ gatewayId: ours })), ...(await managedContainers({ gatewayId: theirs }))];
  });
  afterEach(async () => {
    await assertNoLeakedContainers(baseline, { gatewayId: ours });
    await assertNoLeakedContainers(baseline, { gatewayId: theirs });
  });

  it('removes orphans and keeps live containers', async () => {
    const host = hostname();
    const deadGateway = await createLabelled({ 'airlock.gateway': theirs, 'airlock.gateway-host': host, 'airlock.gateway-pid': String(await deadPid()), 'airlock.created-at': minuteAgo() });
    const liveGateway = await createLabelled({ 'airlock.gateway': theirs, 'airlock.gateway-host': host, 'airlock.gateway-pid': String(process.pid), 'airlock.created-at': minuteAgo() });
    const unknownConnection = await createLabelled({ 'airlock.gateway': ours, 'airlock.connection': 'gone', 'airlock.created-at': minuteAgo() });
    const liveConnection = await createLabelled({ 'airlock.gateway': ours, 'airlock.connection': 'live', 'airlock.created-at': minuteAgo() });
    const youngUnknown = await createLabelled({ 'airlock.gateway': ours, 'airlock.connection': 'starting', 'airlock.created-at': new Date().toISOString() });
    const pastDeadline = await createLabelled({
      'airlock.gateway': theirs,
      'airlock.gateway-host': 'some-other-host',
      'airlock.gateway-pid': '1',
      'airlock.deadline': minuteAgo(),
    });
    const { logger, lines } = captureLogger();
    const reaper = createReaper({
      host: 'unix:///var/run/docker.sock',
      gatewayId: ours,
      liveConnections: () => new Set(['live']),
      foreignMaxAgeMs: 24 * 3_600_000,
      logger,
    });
    try {
      const removed = await reaper.runOnce();
      assert.ok(removed >= 3, `removed ${removed}`);
      const left = new Set([...(await managedContainers({ gatewayId: ours })), ...(await managedContainers({ gatewayId: theirs }))]);
      for (const [name, id, kept] of [
        ['dead gateway pid', deadGateway, false],
        ['unknown connection of ours', unknownConnection, false],
        ['past its deadline', pastDeadline, false],
        ['live gateway pid', liveGateway, true],
        ['live connection of ours', liveConnection, true],
        ['young, connection still starting', youngUnknown, true],
      ] as const) {
        assert.equal(left.has(id), kept, name);
      }
      const reaped = lines.filter((l) => l.msg === 'reaped container').map((l) => [l.containerId, l.reason]);
      assert.deepEqual(
        reaped.filter(([id]) => [deadGateway, unknownConnection, pastDeadline].includes(id!)).sort(),
        [
          [deadGateway, 'gateway process gone'],
          [unknownConnection, 'connection gone'],
          [pastDeadline, 'deadline passed'],
        ].sort(),
      );
    } finally {
      await reaper.stop();
      await run('docker', ['rm', '-f', liveGateway, liveConnection, youngUnknown]);
    }
  });

  it('start(interval) keeps sweeping until stop()', async () => {
    let onReaped: (id: string) => void = () => undefined;
    const { logger } = captureLogger((line) => {
      if (line.msg === 'reaped container' && line.containerId) onReaped(line.containerId);
    });
    const reaper = createReaper({ host: 'unix:///var/run/docker.sock', gatewayId: ours, liveConnections: () => [], foreignMaxAgeMs: 3_600_000, logger });
    try {
      reaper.start(100);
      for (let i = 0; i < 2; i++) {
        const id = await createLabelled({ 'airlock.gateway': ours, 'airlock.connection': `gone-${i}`, 'airlock.created-at': minuteAgo() });
        // The reaper's timer is unref'd (it must not keep a gateway alive); this guard keeps the
        // test's event loop alive and fails it if no sweep comes.
        await new Promise<void>((resolve, reject) => {
          const guard = setTimeout(() => reject(new Error(`container ${id} was not reaped`)), 10_000);
          onReaped = (reapedId) => {
            if (reapedId !== id) return;
            clearTimeout(guard);
            resolve();
          };
        });
      }
    } finally {
      await reaper.stop();
    }
  });
});
