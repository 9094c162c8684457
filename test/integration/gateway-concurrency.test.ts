/** 20 simultaneous OpenSSH sessions: each its own container, its own output, no cross-talk. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { ssh } from '../helpers/ssh.js';

describe('concurrency', () => {
  const suite = keyGatewaySuite({ log: { level: 'info' } });

  it('20 simultaneous sessions each get their own container and only their own output', async () => {
    const n = 20;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        ssh(suite.gw, {
          user: 'alice',
          identity: suite.fx.alice.path,
          // Each session writes its own marker into its container, waits, then reads it back:
          // a shared container or crossed streams would show another session's marker.
          command: `echo ${i} > /tmp/id; sleep 1; echo "session=${i} file=$(cat /tmp/id) host=$(cat /etc/hostname)"; head -c 100000 /dev/zero | tr "\\0" "${String.fromCharCode(97 + (i % 26))}"`,
        }),
      ),
    );
    const hosts = new Set<string>();
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `session ${i}: ${r.stderr}`);
      const text = r.stdout.toString();
      const [head, body = ''] = text.split('\n');
      const m = /^session=(\d+) file=(\d+) host=([0-9a-f]{12})$/.exec(head ?? '');
      assert.ok(m, `session ${i} header: ${head}`);
      assert.equal(m[1], String(i));
      assert.equal(m[2], String(i));
      hosts.add(m[3]!);
      assert.equal(body.length, 100000);
      assert.equal(body, String.fromCharCode(97 + (i % 26)).repeat(100000));
    });
    assert.equal(hosts.size, n, 'every session ran in a different container');
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
  });
});
