/** `backend:` selection for Podman and the SSH proxy, and the `sshproxy:` section. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AirlockError } from '../../src/core/errors.js';
import { parseConfig } from '../../src/config/index.js';

const AUTH = { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'keys' } } };
const FP = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
const PROXY = { server: 'bastion.internal', username: 'ci', privateKey: '/etc/airlock/upstream_key', allowedHostKeyFingerprints: [FP] };

function problems(raw: Record<string, unknown>): string[] {
  try {
    parseConfig({ ...AUTH, ...raw }, 'test');
  } catch (err) {
    assert.ok(err instanceof AirlockError);
    assert.equal(err.code, 'CONFIG_INVALID');
    return (err.details['problems'] as unknown[]).map(String);
  }
  return assert.fail('expected the config to be rejected');
}

describe('backend: podman', () => {
  test('is the docker backend on Podman\'s socket unless a host is given', () => {
    const alias = parseConfig({ ...AUTH, backend: 'podman' }, 'test');
    assert.equal(alias.backend, 'podman');
    assert.equal(alias.docker.connection.host, 'unix:///run/podman/podman.sock');
    const explicit = parseConfig({ ...AUTH, backend: 'podman', docker: { connection: { host: 'unix:///run/user/1000/podman/podman.sock' } } }, 'test');
    assert.equal(explicit.docker.connection.host, 'unix:///run/user/1000/podman/podman.sock');
  });

  test('the ContainerSSH form (backend: docker + Podman socket) is accepted unchanged', () => {
    const config = parseConfig({ ...AUTH, backend: 'docker', docker: { connection: { host: 'unix:///run/podman/podman.sock' } } }, 'test');
    assert.equal(config.backend, 'docker');
    assert.equal(config.docker.connection.host, 'unix:///run/podman/podman.sock');
  });
});

describe('backend: sshproxy', () => {
  test('a ContainerSSH sshproxy section parses with its defaults', () => {
    const config = parseConfig({ ...AUTH, backend: 'sshproxy', sshproxy: PROXY }, 'test');
    assert.equal(config.backend, 'sshproxy');
    assert.deepEqual(config.sshproxy, {
      ...PROXY,
      port: 22,
      usernamePassThrough: false,
      timeout: 60_000,
      clientVersion: 'SSH-2.0-Airlock',
    });
  });

  test('every key: algorithms, passthrough, password, durations', () => {
    const config = parseConfig(
      {
        ...AUTH,
        backend: 'sshproxy',
        sshproxy: {
          server: '10.0.0.5',
          port: 2200,
          usernamePassThrough: true,
          password: 'pw',
          allowedHostKeyFingerprints: [FP, `${FP}=`],
          ciphers: ['aes256-gcm@openssh.com'],
          kex: ['curve25519-sha256@libssh.org'],
          macs: ['hmac-sha2-256'],
          hostKeyAlgos: ['ssh-ed25519', 'rsa-sha2-512'],
          timeout: '5s',
          clientVersion: 'SSH-2.0-Bastion_2',
        },
      },
      'test',
    );
    assert.equal(config.sshproxy?.timeout, 5000);
    assert.equal(config.sshproxy?.port, 2200);
    assert.deepEqual(config.sshproxy?.hostKeyAlgos, ['ssh-ed25519', 'rsa-sha2-512']);
  });

  test('backend sshproxy needs the section', () => {
    assert.deepEqual(problems({ backend: 'sshproxy' }), [
      'sshproxy: required when backend is "sshproxy" — set at least sshproxy.server, allowedHostKeyFingerprints, username and privateKey or password',
    ]);
  });

  test('host keys must be pinned, a user and credentials given, algorithms known', () => {
    const lines = problems({
      backend: 'sshproxy',
      sshproxy: { server: 'h', allowedHostKeyFingerprints: [], ciphers: ['aes128-cbc'], clientVersion: 'OpenSSH' },
    });
    assert.deepEqual(lines.slice().sort(), [
      'sshproxy.allowedHostKeyFingerprints: must list at least 1 item',
      'sshproxy.ciphers[0]: must be one of chacha20-poly1305@openssh.com, aes256-gcm@openssh.com, aes128-gcm@openssh.com, aes256-ctr, aes192-ctr, aes128-ctr (got "aes128-cbc")',
      'sshproxy.clientVersion: must look like "SSH-2.0-Name_1.0": start with SSH-2.0-, printable ASCII, no spaces or "-" in the software version (RFC 4253 §4.2)',
      'sshproxy.privateKey: the upstream login needs credentials — set sshproxy.privateKey (a key or a key file path) or sshproxy.password',
      'sshproxy.username: required unless sshproxy.usernamePassThrough is true — set the upstream user name',
    ]);
    assert.deepEqual(problems({ sshproxy: { ...PROXY, allowedHostKeyFingerprints: ['MD5:aa:bb'] } }), [
      'sshproxy.allowedHostKeyFingerprints[0]: must be a SHA256 fingerprint as printed by ssh-keygen -l, e.g. SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    ]);
    assert.deepEqual(problems({ sshproxy: { ...PROXY, bogus: 1 } }), ['sshproxy.bogus: unknown key — remove it or check the spelling']);
  });
});
