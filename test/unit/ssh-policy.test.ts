import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSessionPolicy, envRefusalLine, listAllows, PERMISSIVE_SECURITY, type SecurityPolicyConfig } from '../../src/ssh/policy.js';
import { securityPolicy } from '../../src/cli/wiring.js';
import { parseConfig } from '../../src/config/index.js';

const cfg = (over: Partial<SecurityPolicyConfig>): SecurityPolicyConfig => ({ ...PERMISSIVE_SECURITY, ...over });

describe('session policy', () => {
  test('permissive by default', () => {
    const p = createSessionPolicy(PERMISSIVE_SECURITY);
    assert.deepEqual(p.program('exec', 'ls'), { allowed: true, kind: 'exec', command: 'ls' });
    assert.deepEqual(p.program('shell', ''), { allowed: true, kind: 'shell', command: '' });
    assert.equal(p.pty().allowed, true);
    assert.equal(p.signal('TERM').allowed, true);
  });

  test('command filter allows exact entries only; disable refuses all', () => {
    const p = createSessionPolicy(cfg({ command: { mode: 'filter', allow: ['uptime'] } }));
    assert.equal(p.program('exec', 'uptime').allowed, true);
    const denied = p.program('exec', 'uptime; rm -rf /');
    assert.equal(denied.allowed, false);
    assert.match(!denied.allowed ? denied.message : '', /^airlock: command "uptime; rm -rf \/" is not allowed by the gateway policy \[POLICY_DENIED\]$/);
    assert.equal(createSessionPolicy(cfg({ command: { mode: 'disable', allow: [] } })).program('exec', 'ls').allowed, false);
  });

  test('shell, tty, subsystem and signal modes', () => {
    const p = createSessionPolicy(
      cfg({
        shell: { mode: 'disable' },
        tty: { mode: 'disable' },
        subsystem: { mode: 'filter', allow: ['sftp'], deny: [] },
        signal: { mode: 'enable', allow: [], deny: ['KILL'] },
      }),
    );
    assert.equal(p.program('shell', '').allowed, false);
    assert.equal(p.pty().allowed, false);
    assert.equal(p.program('subsystem', 'sftp').allowed, true);
    assert.equal(p.program('subsystem', 'other').allowed, false);
    assert.equal(p.signal('KILL').allowed, false);
    assert.equal(p.signal('INT').allowed, true);
  });

  test('listAllows: deny wins in every mode', () => {
    assert.equal(listAllows({ mode: 'filter', allow: ['a'], deny: ['a'] }, 'a'), false);
    assert.equal(listAllows({ mode: 'enable', allow: [], deny: ['a'] }, 'b'), true);
    assert.equal(listAllows({ mode: 'disable', allow: ['a'], deny: [] }, 'a'), false);
  });

  test('forceCommand replaces exec, shell and subsystem; config wins over the certificate', () => {
    const cert = createSessionPolicy(PERMISSIVE_SECURITY, { forceCommand: 'cert-cmd', permitPty: false });
    assert.deepEqual(cert.program('exec', 'ls'), { allowed: true, kind: 'exec', command: 'cert-cmd', originalCommand: 'ls' });
    assert.deepEqual(cert.program('shell', ''), { allowed: true, kind: 'exec', command: 'cert-cmd' });
    assert.deepEqual(cert.program('subsystem', 'sftp'), { allowed: true, kind: 'exec', command: 'cert-cmd', originalCommand: 'sftp' });
    assert.equal(cert.pty().allowed, false);
    const both = createSessionPolicy(cfg({ forceCommand: 'config-cmd', command: { mode: 'disable', allow: [] } }), { forceCommand: 'cert-cmd' });
    assert.equal((both.program('exec', 'ls') as { command: string }).command, 'config-cmd');
  });

  test('port forwarding: off unless enabled; a certificate without permit-port-forwarding may not forward', () => {
    const off = createSessionPolicy(PERMISSIVE_SECURITY);
    const local = off.forwarding('local');
    assert.equal(local.allowed, false);
    assert.equal(!local.allowed && local.message, 'airlock: port forwarding (ssh -L) is not allowed by the gateway policy [POLICY_DENIED]');
    const remote = off.forwarding('remote');
    assert.equal(!remote.allowed && remote.message, 'airlock: remote port forwarding (ssh -R) is not allowed by the gateway policy [POLICY_DENIED]');
    const on = cfg({ forwarding: { forwardingMode: 'enable', reverseForwardingMode: 'disable' } });
    assert.equal(createSessionPolicy(on).forwarding('local').allowed, true);
    assert.equal(createSessionPolicy(on).forwarding('remote').allowed, false);
    // `filter` has no list for forwarding (config refuses it): treated as off, never as on.
    assert.equal(createSessionPolicy(cfg({ forwarding: { forwardingMode: 'filter', reverseForwardingMode: 'filter' } })).forwarding('local').allowed, false);
    const cert = createSessionPolicy(on, { permitPortForwarding: false }).forwarding('local');
    assert.equal(!cert.allowed && cert.message, 'airlock: port forwarding (ssh -L) for this certificate is not allowed by the gateway policy [POLICY_DENIED]');
    assert.equal(createSessionPolicy(on, { permitPortForwarding: true }).forwarding('local').allowed, true);
  });

  test('config: security.* keys parse and defaultMode fills absent modes', () => {
    const config = parseConfig({
      auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: '/dev/null' } },
      security: { defaultMode: 'disable', forceCommand: 'menu', command: { mode: 'filter', allow: ['uptime'] }, subsystem: { mode: 'enable', deny: ['x'] } },
    }, 'test');
    const policy = securityPolicy(config.security);
    assert.equal(policy.forceCommand, 'menu');
    assert.deepEqual(policy.command, { mode: 'filter', allow: ['uptime'] });
    assert.equal(policy.shell.mode, 'disable');
    assert.equal(policy.tty.mode, 'disable');
    assert.deepEqual(policy.subsystem, { mode: 'enable', allow: [], deny: ['x'] });
    assert.equal(policy.signal.mode, 'disable');
    const defaults = securityPolicy(parseConfig({ auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: '/dev/null' } }, security: { defaultMode: 'enable' } }, 'test').security);
    assert.equal(defaults.shell.mode, 'enable');
    // Forwarding never follows defaultMode.
    assert.deepEqual(defaults.forwarding, { forwardingMode: 'disable', reverseForwardingMode: 'disable' });
  });
});

test('env refusal line: names only, one line, printable, bounded', () => {
  assert.equal(envRefusalLine(['SECRET_TOKEN']), 'airlock: setting environment variable SECRET_TOKEN is not allowed by the gateway policy [POLICY_DENIED]');
  assert.equal(envRefusalLine(['A', 'B']), 'airlock: setting environment variables A, B is not allowed by the gateway policy [POLICY_DENIED]');
  const line = envRefusalLine(['BAD\r\nNAME', 'X'.repeat(100), ...Array.from({ length: 12 }, (_, i) => `V${i}`)]);
  assert.match(line, /BAD\?\?NAME, X{64}\.\.\., V0, .*V7 and 4 more is not allowed/);
  assert.doesNotMatch(line, /[\r\n]/);
});
