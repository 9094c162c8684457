/**
 * `signal` channel requests (RFC 4254 §6.9) reach the running program, and a program killed by a
 * signal is reported with exit-signal (§6.10). The OpenSSH client has no way to send a signal
 * request, so this test uses the ssh2 client library as the peer; everything else about the
 * gateway (real Docker, real image without any agent) is the production path.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { keyGatewaySuite } from '../helpers/fixture.js';
import type { TestGateway } from '../helpers/gateway.js';

async function connect(gw: TestGateway, keyPath: string): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  const ready = once(client, 'ready');
  client.connect({ host: '127.0.0.1', port: gw.port, username: 'alice', privateKey: await readFile(keyPath) });
  await ready;
  return client;
}

function exec(client: ssh2.Client, command: string, opts: ssh2.ExecOptions = {}): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, opts, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Resolves with the first stdout text matching `pattern`. */
function waitForOutput(ch: ssh2.ClientChannel, pattern: RegExp): Promise<string> {
  let text = '';
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      text += d.toString();
      if (pattern.test(text)) {
        ch.off('data', onData);
        resolve(text);
      }
    };
    ch.on('data', onData);
  });
}

for (const mode of ['connection', 'session'] as const) {
  describe(`signals (${mode} mode)`, () => {
    const suite = keyGatewaySuite({ docker: { execution: { mode } } });

    it('delivers TERM to the program and reports exit-signal TERM', async () => {
      const client = await connect(suite.gw, suite.fx.alice.path);
      try {
        const ch = await exec(client, 'echo ready; exec sleep 1000');
        await waitForOutput(ch, /ready/);
        const exited = once(ch, 'exit');
        ch.signal('TERM');
        const [code, signal] = await exited;
        assert.equal(code, null);
        // RFC 4254 §6.10 sends "TERM"; the ssh2 client reports it with the SIG prefix.
        assert.equal(signal, 'SIGTERM');
      } finally {
        client.end();
      }
      await suite.gw.waitForIdle();
    });

    it('delivers a trappable signal (USR1) that the program handles itself', async () => {
      const client = await connect(suite.gw, suite.fx.alice.path);
      try {
        const ch = await exec(client, 'trap "echo got-usr1; exit 4" USR1; echo ready; while :; do sleep 1; done');
        await waitForOutput(ch, /ready/);
        const output = waitForOutput(ch, /got-usr1/);
        const exited = once(ch, 'exit');
        ch.signal('USR1');
        assert.match(await output, /got-usr1/);
        const [code] = await exited;
        assert.equal(code, 4);
      } finally {
        client.end();
      }
      await suite.gw.waitForIdle();
    });
  });
}
