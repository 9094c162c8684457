/** Who serves an "sftp" request: decided before the channel is accepted, from policy and the workload. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { BackendConnection } from '../../src/backend/backend.js';
import { chooseSftpServer } from '../../src/ssh/sftp-route.js';
import { createSessionPolicy, PERMISSIVE_SECURITY } from '../../src/ssh/policy.js';

const logger = pino({ level: 'silent' });
const permissive = createSessionPolicy(PERMISSIVE_SECURITY);

function workload(parts: Partial<BackendConnection>): () => Promise<BackendConnection> {
  const conn: BackendConnection = {
    startProcess: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
    ...parts,
  };
  return () => Promise.resolve(conn);
}

const files = { openFiles: () => Promise.reject(new Error('not used')) };

describe('chooseSftpServer', () => {
  it('the gateway when the workload has a file API and no sftp-server; else the workload', async () => {
    assert.equal(await chooseSftpServer(workload({ ...files, hasSubsystem: async () => false }), permissive, logger), 'gateway');
    assert.equal(await chooseSftpServer(workload({ ...files, hasSubsystem: async () => true }), permissive, logger), 'workload');
    // No file API (Kubernetes, SSH proxy), or no way to tell: pass through.
    assert.equal(await chooseSftpServer(workload({ hasSubsystem: async () => false }), permissive, logger), 'workload');
    assert.equal(await chooseSftpServer(workload({ ...files }), permissive, logger), 'workload');
  });

  it('the workload when the probe fails or the workload could not be created (its error is shown there)', async () => {
    assert.equal(await chooseSftpServer(workload({ ...files, hasSubsystem: () => Promise.reject(new Error('engine down')) }), permissive, logger), 'workload');
    assert.equal(await chooseSftpServer(() => Promise.reject(new Error('no container')), permissive, logger), 'workload');
  });

  it('the workload when policy refuses the subsystem or a forced command replaces it', async () => {
    let asked = false;
    const probe = workload({
      ...files,
      hasSubsystem: async () => {
        asked = true;
        return false;
      },
    });
    const denied = createSessionPolicy({ ...PERMISSIVE_SECURITY, subsystem: { mode: 'enable', allow: [], deny: ['sftp'] } });
    assert.equal(await chooseSftpServer(probe, denied, logger), 'workload');
    const forced = createSessionPolicy({ ...PERMISSIVE_SECURITY, forceCommand: 'echo no' });
    assert.equal(await chooseSftpServer(probe, forced, logger), 'workload');
    assert.equal(asked, false, 'no probe when policy decides');
  });
});
