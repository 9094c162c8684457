/**
 * Nothing leaks: whichever way a connection ends — client killed, keepalives unanswered, idle,
 * gateway SIGTERM, gateway crash (reaped on the next start) — its container is removed.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { keyFixture, keyGateway, type KeyFixture } from '../helpers/fixture.js';
import { spawnSsh, ssh } from '../helpers/ssh.js';
import { makeKey } from '../helpers/keys.js';
import { assertNoGatewayLeaks, type TestGateway } from '../helpers/gateway.js';
import { ensureTestImage } from '../helpers/docker.js';

describe('connection lifecycle and cleanup', () => {
  let fx: KeyFixture;
  let gw: TestGateway | undefined;
  beforeEach(async () => {
    await ensureTestImage();
    fx = await keyFixture();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await fx.cleanup();
    await assertNoGatewayLeaks();
  });

  async function startSleepingSession(g: TestGateway) {
    const child = await spawnSsh(g, { user: 'alice', identity: fx.alice.path, command: 'echo started; exec sleep 1000' });
    child.stderr!.resume();
    const [first] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(first.toString(), 'started\n');
    assert.equal((await g.containers()).length, 1);
    return child;
  }

  it('removes the container when the client is killed (kill -9, TCP drop)', async () => {
    gw = await keyGateway(fx);
    const child = await startSleepingSession(gw);
    child.kill('SIGKILL');
    await gw.waitForIdle();
    assert.deepEqual(await gw.containers(), []);
  });

  it('closes a connection whose client stops answering keepalives and removes the container', async () => {
    gw = await keyGateway(fx, { ssh: { clientAliveInterval: '1s', clientAliveCountMax: 1 } });
    const child = await startSleepingSession(gw);
    child.kill('SIGSTOP'); // the client is alive but frozen: TCP stays up, nothing answers
    try {
      await gw.waitForLog((l) => l.msg === 'client stopped answering keepalives');
      await gw.waitForIdle();
      assert.deepEqual(await gw.containers(), []);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('ends an idle connection with a message and removes the container', async () => {
    gw = await keyGateway(fx, { ssh: { idleTimeout: '1s' } });
    const r = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'sleep 1000' });
    assert.match(r.stderr, /idle for too long.*\[IDLE_TIMEOUT\]/);
    assert.notEqual(r.code, 0);
    await gw.waitForIdle();
    assert.deepEqual(await gw.containers(), []);
  });

  it('on SIGTERM tells the user, drains until the deadline, removes containers and exits 0', async () => {
    gw = await keyGateway(fx, { ssh: { shutdownTimeout: '1s' } });
    const child = await startSleepingSession(gw);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const clientExit = once(child, 'close');
    const stopping = gw;
    gw = undefined;
    const code = await stopping.stop('SIGTERM');
    assert.equal(code, 0);
    await clientExit;
    assert.match(stderr, /shutting down/);
    assert.deepEqual(await stopping.containers(), []);
  });

  it('keeps serving and still cleans up when its log reader goes away (EPIPE on stdout)', async () => {
    gw = await keyGateway(fx);
    gw.child.stdout!.destroy(); // like `airlock serve | tee log` with tee interrupted
    const child = await startSleepingSession(gw);
    const again = await ssh(gw, { user: 'alice', identity: fx.alice.path, command: 'echo still-serving' });
    assert.equal(again.stdout.toString(), 'still-serving\n', again.stderr);
    const stopping = gw;
    gw = undefined;
    assert.equal(await stopping.stop('SIGTERM'), 0);
    child.kill('SIGKILL');
    assert.deepEqual(await stopping.containers(), []);
  });

  it('reaps the containers of a crashed gateway at the next start', async () => {
    const crashed = await keyGateway(fx);
    const child = await startSleepingSession(crashed);
    await crashed.stop('SIGKILL');
    child.kill('SIGKILL');
    assert.equal((await crashed.containers()).length, 1, 'the crashed gateway left its container');
    gw = await keyGateway(fx);
    await gw.waitForLog((l) => l.msg === 'reaped container' && l.gateway === crashed.gatewayId);
    assert.deepEqual(await crashed.containers(), []);
  });

  it('drops a connection that does not authenticate within the login grace time', async () => {
    gw = await keyGateway(fx, { ssh: { loginGraceTime: '500ms' } });
    const socket = tcpConnect(gw.port, '127.0.0.1');
    socket.resume();
    await once(socket, 'connect');
    socket.write('SSH-2.0-silent-test\r\n'); // then never speaks again
    await once(socket, 'close');
    await gw.waitForLog((l) => l.msg === 'login grace time expired');
  });

  it('disconnects after maxAuthTries failures, even if a later key would have worked', async () => {
    gw = await keyGateway(fx, { ssh: { maxAuthTries: 2 } });
    const third = await makeKey(fx.dir, 'third');
    const r = await ssh(gw, { user: 'alice', identity: fx.stranger.path, args: ['-i', third.path, '-i', fx.alice.path], command: 'true' });
    assert.equal(r.code, 255);
    await gw.waitForLog((l) => l.msg === 'too many authentication failures');
    assert.equal((await gw.containers()).length, 0);
  });
});
