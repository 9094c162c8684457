/**
 * The reapers `airlock serve` starts (src/cli/reapers.ts): none with `backend: sshproxy` (its
 * config file may still name a Docker host that does not exist here), and with a config server
 * the Docker reaper of the file's `docker:` section, which then sweeps that engine.
 * Real gateway process, real upstream sshd, real dockerd.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ensureTestImage, managedContainers, TEST_IMAGE } from '../helpers/docker.js';
import { authorizedKeysConfig, keyFixture, type KeyFixture } from '../helpers/fixture.js';
import { assertNoGatewayLeaks, deepMerge, startGateway, type GatewayConfig, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/ssh.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

const run = promisify(execFile);
/** A Docker address where no engine answers (the socket's directory does not exist). */
const NO_DOCKER = 'unix:///nonexistent/airlock-no-docker.sock';
/** No config server has to answer: these tests make no connection that would ask one. */
const CONFIG_SERVER = { configserver: { url: 'http://127.0.0.1:9/config' } };

const reaperLines = (gw: TestGateway): LogLine[] => gw.logs.filter((l) => l.component === 'reaper');

describe('reapers of airlock serve', () => {
  let fx: KeyFixture;
  let sshd: TestSshd;
  const gateways: TestGateway[] = [];

  before(async () => {
    await ensureTestImage();
    fx = await keyFixture();
    sshd = await startSshd();
  });
  after(async () => {
    for (const gw of gateways) await gw.stop();
    await sshd?.stop();
    await fx?.cleanup();
    await assertNoGatewayLeaks();
  });

  const start = async (overrides: GatewayConfig): Promise<TestGateway> => {
    const proxy: GatewayConfig = {
      backend: 'sshproxy',
      sshproxy: { server: '127.0.0.1', port: sshd.port, username: sshd.user, privateKey: sshd.clientKey.path, allowedHostKeyFingerprints: [sshd.hostKeyFingerprint] },
    };
    const gw = await startGateway(deepMerge(deepMerge(authorizedKeysConfig(fx), proxy), overrides));
    gateways.push(gw);
    return gw;
  };

  it('backend sshproxy: no reaper, so a Docker host that does not exist logs no reaper failure', async () => {
    const gw = await start({ docker: { connection: { host: NO_DOCKER }, reaper: { interval: '1s' } } });
    // The start-up sweep runs before the gateway listens: its outcome is in the log by now.
    const none = await gw.waitForLog((l) => l.component === 'reaper' && String(l.msg).startsWith('no reaper'));
    assert.equal(none.backend, 'sshproxy');
    assert.deepEqual(reaperLines(gw).map((l) => l.msg), [none.msg], 'no reaper ran, so none failed');
    // The gateway serves its backend all the same.
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'id -un' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `${sshd.user}\n`);
    assert.deepEqual(reaperLines(gw).map((l) => l.msg), [none.msg]);
  });

  it('backend sshproxy with a config server: the Docker reaper of the docker section runs (and would report that host)', async () => {
    const gw = await start({ ...CONFIG_SERVER, docker: { connection: { host: NO_DOCKER } } });
    const started = await gw.waitForLog((l) => l.component === 'reaper' && l.msg === 'reapers started');
    assert.deepEqual(started.reapers, ['docker']);
    const failed = reaperLines(gw).find((l) => l.msg === 'start-up reaper run failed');
    assert.ok(failed, 'the unreachable engine is reported: the first test would have seen it');
    assert.equal(failed.reaper, 'docker');
  });

  it('backend sshproxy with a config server: the Docker reaper sweeps the docker section engine on its interval', async () => {
    const gw = await start({ ...CONFIG_SERVER, docker: { reaper: { interval: '1s' } } });
    const started = await gw.waitForLog((l) => l.component === 'reaper' && l.msg === 'reapers started');
    assert.deepEqual(started.reapers, ['docker']);
    // A container of this gateway for a connection it no longer serves (what a per-connection
    // Docker backend leaves when its removal failed). Only this gateway's reaper may remove it
    // (other gateways on this dockerd leave a live gateway's containers alone), and only a sweep
    // after start-up can see it: so the interval runs, against this engine. Created "15 s ago":
    // past the reaper's 10 s grace for its own containers, far from any foreignMaxAge.
    const labels = { 'airlock.managed': 'true', 'airlock.gateway': gw.gatewayId, 'airlock.connection': 'gone-connection', 'airlock.created-at': new Date(Date.now() - 15_000).toISOString() };
    const { stdout } = await run('docker', ['create', '--entrypoint', '/bin/true', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), TEST_IMAGE]);
    const leftover = stdout.trim();
    try {
      const reaped = await gw.waitForLog((l) => l.msg === 'reaped container' && l.containerId === leftover);
      assert.equal(reaped.reason, 'connection gone');
      assert.equal(reaped.reaper, 'docker');
      assert.deepEqual(await managedContainers({ gatewayId: gw.gatewayId }), []);
    } finally {
      await run('docker', ['rm', '-f', leftover]).catch(() => undefined);
    }
  });
});
