/**
 * Structured logs of the real `airlock serve`: every line a connection causes carries its
 * connectionId (also the Docker backend's and the session channel's lines), and log.level is
 * honoured (ContainerSSH level names included).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { authorizedKeysConfig, keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';
import { assertNoGatewayLeaks, testConfig, deepMerge, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const QUIET_BACKGROUND = { docker: { reaper: { interval: '0' } } };

/** The log lines from this connection's "connection accepted" to its "connection closed". */
function sessionWindow(logs: readonly LogLine[], connectionId: string): LogLine[] {
  const start = logs.findIndex((l) => l.msg === 'connection accepted' && l.connectionId === connectionId);
  const end = logs.findIndex((l) => l.msg === 'connection closed' && l.connectionId === connectionId);
  assert.ok(start >= 0 && end > start, 'both ends of the connection are logged');
  return logs.slice(start, end + 1);
}

async function oneSession(gw: TestGateway, fx: KeyFixture): Promise<string> {
  const before = gw.logs.length;
  // The stranger key is offered (and refused) first, then alice's: both attempts are in the window.
  const r = await ssh(gw, {
    user: 'alice',
    identity: fx.stranger.path,
    command: 'echo hi; echo oops >&2',
    input: 'ignored input',
    args: ['-i', fx.alice.path, '-o', 'SetEnv=LANG=C.UTF-8'],
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'hi\n');
  await gw.waitForIdle();
  const accepted = gw.logs.slice(before).find((l) => l.msg === 'connection accepted');
  assert.ok(accepted, 'the connection was logged');
  return String(accepted.connectionId);
}

describe('structured logs', () => {
  let fx: KeyFixture;
  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
  });
  after(async () => {
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  it('every line emitted during a session carries its connectionId (debug level)', async () => {
    const gw = await keyGateway(fx, { ...QUIET_BACKGROUND, log: { level: 'debug' } });
    try {
      const id = await oneSession(gw, fx);
      assert.match(id, /^[0-9a-f]+$/);
      const window = sessionWindow(gw.logs, id);
      const missing = window.filter((l) => l.connectionId !== id);
      assert.deepEqual(missing, [], 'lines without this connectionId');
      const msgs = new Set(window.map((l) => l.msg));
      for (const expected of ['authentication rejected', 'authentication succeeded', 'connection authenticated', 'container started', 'session program started', 'session program ended']) {
        assert.ok(msgs.has(expected), `the window covers "${expected}"`);
      }
      assert.ok(window.some((l) => l.level === 'debug'), 'debug lines are emitted at level debug');
      assert.ok(window.some((l) => typeof l.channelId === 'number' && l.connectionId === id), 'channel lines carry both ids');
      for (const l of window) {
        assert.equal(typeof l.time, 'string', 'ISO timestamps');
        assert.equal(l.app, 'airlock');
      }
    } finally {
      await gw.stop();
    }
  });

  it('log.level info: the same session logs no debug lines', async () => {
    const gw = await keyGateway(fx, { ...QUIET_BACKGROUND, log: { level: 'info' } });
    try {
      const id = await oneSession(gw, fx);
      const window = sessionWindow(gw.logs, id);
      assert.ok(window.length >= 5, 'info lines are still there');
      assert.deepEqual(
        gw.logs.filter((l) => l.level === 'debug' || l.level === 'trace'),
        [],
      );
    } finally {
      await gw.stop();
    }
  });

  it('log.level warning (ContainerSSH name): only warnings and errors reach the output', async () => {
    // startGateway waits for info lines, so run the CLI directly.
    const tmp = await tempDir('airlock-loglevel-');
    try {
      const config = deepMerge(testConfig(tmp.path, authorizedKeysConfig(fx)), {
        ...QUIET_BACKGROUND,
        log: { level: 'warning' },
        // An engine that is not there makes the gateway log one error at start-up.
        docker: { connection: { host: 'unix:///nonexistent.sock' }, reaper: { interval: '0' } },
      });
      const file = join(tmp.path, 'config.yaml');
      await writeFile(file, stringify(config));
      const main = resolve(import.meta.dirname, '../../src/cli/main.ts');
      const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: LogLine[] = [];
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const sawError = new Promise<void>((resolveSeen) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          const parsed = JSON.parse(line) as LogLine;
          lines.push(parsed);
          if (parsed.msg === 'container engine not reachable at start-up') resolveSeen();
        });
      });
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      try {
        await Promise.race([sawError, exited.then(() => assert.fail(`serve exited early: ${stderr}`))]);
      } finally {
        child.kill('SIGTERM');
        await exited;
        clearTimeout(timer);
      }
      assert.ok(lines.some((l) => l.level === 'error' && l.code === 'BACKEND_UNAVAILABLE'), 'the error line is there');
      const below = lines.filter((l) => !['warn', 'error', 'fatal'].includes(String(l.level)));
      assert.deepEqual(below, [], 'no info/debug lines (not even "starting airlock" or "listening")');
    } finally {
      await tmp.cleanup();
    }
  });
});
