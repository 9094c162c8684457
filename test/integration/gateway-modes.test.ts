/**
 * `connection` mode: one container per SSH connection, every session channel an exec in it.
 * `session` mode: one container per session channel. Two channels on one connection come from
 * OpenSSH connection multiplexing (ControlMaster), the way people really open them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { spawnSsh, ssh } from '../helpers/ssh.js';

for (const [mode, sameContainer] of [
  ['connection', true],
  ['session', false],
] as const) {
  describe(`${mode} mode`, () => {
    const suite = keyGatewaySuite({ docker: { execution: { mode } } });

    it(`two session channels on one connection run in ${sameContainer ? 'the same container' : 'separate containers'}`, async () => {
      const control = join(suite.fx.dir, `cm-${mode}`);
      const master = await spawnSsh(suite.gw, {
        user: 'alice',
        identity: suite.fx.alice.path,
        args: ['-o', 'ControlMaster=yes', '-o', `ControlPath=${control}`, '-N'],
      });
      master.stderr!.resume();
      try {
        await suite.gw.waitForLog((l) => l.msg === 'connection authenticated');
        const mux = ['-o', 'ControlMaster=no', '-o', `ControlPath=${control}`];
        const first = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: mux, command: 'cat /etc/hostname; echo one > /tmp/shared' });
        const second = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: mux, command: 'cat /etc/hostname; cat /tmp/shared 2>/dev/null || echo none' });
        assert.equal(first.code, 0, first.stderr);
        assert.equal(second.code, 0, second.stderr);
        const [hostA] = first.stdout.toString().split('\n');
        const [hostB, shared] = second.stdout.toString().split('\n');
        if (sameContainer) {
          assert.equal(hostA, hostB);
          assert.equal(shared, 'one');
        } else {
          assert.notEqual(hostA, hostB);
          assert.equal(shared, 'none');
        }
        // Only one connection was made for both channels.
        assert.equal(suite.gw.logs.filter((l) => l.msg === 'connection accepted').length, 1);
      } finally {
        master.kill('SIGTERM');
        await once(master, 'close');
      }
      await suite.gw.waitForIdle();
      assert.deepEqual(await suite.gw.containers(), []);
    });
  });
}
