/**
 * Port forwarding through the front door: the real OpenSSH client (`-L`, `-W`, `-R`, `-O
 * forward/cancel`) against real Docker. `ssh -L` must dial from inside the workload's network
 * namespace (through the network-helper sidecar), `ssh -R` must listen inside it; both are off by
 * default and refused for a certificate without permit-port-forwarding.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ensureRelayImage, inspectContainer } from '../helpers/docker.js';
import { keyGatewaySuite } from '../helpers/fixture.js';
import type { TestGateway } from '../helpers/gateway.js';
import { makeKey } from '../helpers/keys.js';
import { connectOutcome, exchange, freePort, startTcpServer } from '../helpers/net.js';
import { ssh, startSshMaster, type SshMaster } from '../helpers/ssh.js';

const run = promisify(execFile);

const ENABLED = { security: { forwarding: { forwardingMode: 'enable', reverseForwardingMode: 'enable' } } };

/** The gateway's containers of one role (`connection`, `relay`) with their inspect data. */
async function containersByRole(gw: TestGateway, role: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const id of await gw.containers()) {
    const info = await inspectContainer(id);
    const labels = (info['Config'] as { Labels: Record<string, string> }).Labels;
    if (labels['airlock.role'] === role) out.push(info);
  }
  return out;
}

async function workloadAddress(gw: TestGateway): Promise<string> {
  const [main] = await containersByRole(gw, 'connection');
  assert.ok(main, 'a connection container');
  const ip = (main['NetworkSettings'] as { IPAddress?: string }).IPAddress;
  assert.ok(ip, 'the workload has an address on the bridge network');
  return ip;
}

describe('port forwarding enabled (security.forwarding)', () => {
  const suite = keyGatewaySuite(ENABLED);
  before(() => ensureRelayImage());
  const user = () => ({ user: 'alice', identity: suite.fx.alice.path });

  it('ssh -L reaches a server listening only inside the workload; the gateway host cannot reach it', async () => {
    const inside = await freePort(); // free on the host too: "refused here" then means something
    const local = await freePort();
    const master = await startSshMaster(suite.gw, { ...user(), args: ['-L', `127.0.0.1:${local}:127.0.0.1:${inside}`] });
    try {
      const started = await master.run(`mkdir -p /tmp/www && echo inside-only > /tmp/www/index.html && httpd -p 127.0.0.1:${inside} -h /tmp/www && echo started`);
      assert.equal(started.code, 0, started.stderr);
      const answer = (await exchange(local, 'GET /index.html HTTP/1.0\r\n\r\n')).toString();
      assert.match(answer, /^HTTP\/1\.[01] 200 OK/);
      assert.match(answer, /inside-only/);
      // The server is bound to the workload's loopback: the gateway host reaches it neither on
      // its own loopback nor at the container's address, so the dial happened inside.
      assert.equal(await connectOutcome('127.0.0.1', inside), 'ECONNREFUSED');
      assert.equal(await connectOutcome(await workloadAddress(suite.gw), inside), 'ECONNREFUSED');
      await suite.gw.waitForLog((l) => l.msg === 'port forwarding channel open' && l.port === inside);
    } finally {
      await master.stop();
    }
    await suite.gw.waitForIdle();
    assert.deepEqual(await suite.gw.containers(), []);
  });
});
