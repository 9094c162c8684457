import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AirlockError, type ErrorCode } from '../../src/core/errors.js';
import { CONFIG_PATH_ENV, loadConfigFile, resolveConfigPath } from '../../src/config/index.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'airlock-config-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function rejection(path: string, code: ErrorCode): Promise<AirlockError> {
  try {
    await loadConfigFile(path);
  } catch (err) {
    assert.ok(err instanceof AirlockError);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail('expected loadConfigFile to reject');
}

// A ContainerSSH 0.5-style file restricted to the keys Airlock implements.
const CONTAINERSSH_STYLE = `
ssh:
  listen: 0.0.0.0:2222
  serverVersion: SSH-2.0-ContainerSSH
  ciphers:
    - chacha20-poly1305@openssh.com
    - aes256-gcm@openssh.com
    - aes128-gcm@openssh.com
    - aes256-ctr
    - aes192-ctr
    - aes128-ctr
  kex:
    - curve25519-sha256@libssh.org
    - ecdh-sha2-nistp521
    - ecdh-sha2-nistp384
    - ecdh-sha2-nistp256
  macs:
    - hmac-sha2-256-etm@openssh.com
    - hmac-sha2-256
  banner: ""
  hostkeys:
    - /var/secrets/ssh_host_rsa_key
  clientAliveInterval: 30s
  clientAliveCountMax: 3
auth:
  password:
    method: webhook
    webhook:
      url: http://authconfig:8080
      timeout: 2s
  publicKey:
    method: webhook
    webhook:
      url: http://authconfig:8080
  authTimeout: 60s
backend: docker
docker:
  connection:
    host: unix:///var/run/docker.sock
  execution:
    container:
      image: containerssh/containerssh-guest-image
      env:
        - FOO=bar
      labels:
        team: ci
      stopSignal: SIGTERM
    host:
      memory: 512m
      pidsLimit: 256
      readonlyRootfs: true
      tmpfs:
        /tmp: rw,size=64m
      capDrop: [ALL]
      securityOpt: [no-new-privileges]
      networkMode: none
      shmSize: 67108864
    mode: connection
    shellCommand: [/bin/bash]
    idleCommand: [/bin/sh, -c, "sleep infinity"]
    subsystems:
      sftp: /usr/lib/openssh/sftp-server
    imagePullPolicy: Never
  timeouts:
    containerStart: 60s
    containerStop: 60s
    commandStart: 60s
    signal: 60s
    window: 60s
    http: 15s
security:
  env:
    mode: filter
    allow: [TERM, LANG, LC_*]
  forwarding:
    forwardingMode: enable
    reverseForwardingMode: disable
    x11ForwardingMode: disable
  maxSessions: 10
log:
  level: warning
  format: text
  destination: stdout
`;

describe('loadConfigFile', () => {
  test('a full ContainerSSH-style file parses into the documented shape', async () => {
    const config = await loadConfigFile(await writeConfig('containerssh.yaml', CONTAINERSSH_STYLE));
    assert.equal(config.ssh.serverVersion, 'SSH-2.0-ContainerSSH');
    assert.deepEqual(config.ssh.macs, ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-256']);
    assert.deepEqual(config.ssh.hostkeys, ['/var/secrets/ssh_host_rsa_key']);
    assert.equal(config.ssh.clientAliveInterval, 30_000);
    assert.equal(config.ssh.loginGraceTime, 30_000, 'keys the file omits get defaults');
    assert.deepEqual(config.auth.password, { method: 'webhook', webhook: { url: 'http://authconfig:8080', timeout: 2000 } });
    assert.equal(config.auth.publicKey.method, 'webhook');
    assert.deepEqual(config.docker.execution.container, {
      image: 'containerssh/containerssh-guest-image',
      env: { FOO: 'bar' },
      labels: { team: 'ci' },
      extra: { stopSignal: 'SIGTERM' },
    });
    assert.deepEqual(config.docker.execution.host, {
      memory: 512 * 1024 ** 2,
      pidsLimit: 256,
      readonlyRootfs: true,
      tmpfs: { '/tmp': 'rw,size=64m' },
      capDrop: ['ALL'],
      securityOpt: ['no-new-privileges'],
      networkMode: 'none',
      extra: { shmSize: 67_108_864 },
    });
    assert.deepEqual(config.docker.execution.shellCommand, ['/bin/bash']);
    assert.equal(config.docker.execution.imagePullPolicy, 'Never');
    assert.equal(config.docker.timeouts.containerStop, 60_000);
    assert.deepEqual(config.security, {
      env: { mode: 'filter', allow: ['TERM', 'LANG', 'LC_*'], deny: [] },
      forwarding: { forwardingMode: 'enable', reverseForwardingMode: 'disable', socketForwardingMode: 'disable', socketListenMode: 'disable', x11ForwardingMode: 'disable' },
      maxSessions: 10,
    });
    assert.deepEqual(config.log, { level: 'warn', format: 'text', destination: 'stdout' });
  });

  test('YAML syntax errors report line and column', async () => {
    const path = await writeConfig('broken.yaml', 'ssh:\n  listen: 0.0.0.0:2222\n  ciphers: [aes128-ctr\nauth: {}\n');
    const err = await rejection(path, 'CONFIG_INVALID');
    assert.match(err.message, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid YAML:\\n  line \\d+, column \\d+: `));
    const problems = err.details['problems'];
    assert.ok(Array.isArray(problems) && problems.length > 0);
  });

  test('a key written twice is an error at the second occurrence', async () => {
    const path = await writeConfig('dup.yaml', 'ssh:\n  listen: 0.0.0.0:1\n  listen: 0.0.0.0:2\n');
    const err = await rejection(path, 'CONFIG_INVALID');
    assert.deepEqual(err.details['problems'], ['line 3, column 3: Map keys must be unique']);
  });

  test('schema problems name the key path and the line it is on', async () => {
    const path = await writeConfig(
      'typo.yaml',
      [
        'ssh:',
        '  listen: 0.0.0.0:2222',
        '  bogus: 1',
        'auth:',
        '  password:',
        '    method: webhook',
        'docker:',
        '  execution:',
        '    mode: conection',
        '    container:',
        '      env:',
        '        - A=1',
        '        - B',
        '  timeouts:',
        '    http: 15 seconds',
        'audit:',
        '  enable: true',
        '',
      ].join('\n'),
    );
    const err = await rejection(path, 'CONFIG_INVALID');
    assert.deepEqual(err.details['problems'], [
      'ssh.bogus: unknown key — remove it or check the spelling (line 3)',
      'auth.password.webhook.url: required when auth.password.method is "webhook" — set it to the webhook base URL (e.g. http://auth:8080) (line 5)',
      'docker.execution.container.env[1]: must be "NAME=value" (got "B") — or write env as a mapping of NAME: value (line 13)',
      'docker.execution.mode: must be one of connection, session (got "conection") (line 9)',
      'docker.timeouts.http: must be a duration like 500ms, 10s, 5m, 1h or 1m30s, or a number of milliseconds (got "15 seconds") (line 15)',
      'audit.storage: must be "file" or "s3" when audit.enable is true — or set audit.enable to false (line 16)',
    ]);
    assert.ok(err.message.startsWith(`invalid configuration in ${path} (6 problems):\n  ssh.bogus: `));
  });

  test('an empty file is an empty config (and so fails only for the missing auth method)', async () => {
    const err = await rejection(await writeConfig('empty.yaml', '# nothing yet\n'), 'CONFIG_INVALID');
    const problems = err.details['problems'];
    assert.ok(Array.isArray(problems) && problems.length === 1);
    assert.match(String(problems[0]), /^auth: no authentication method is enabled/);
  });

  test('a missing file is CONFIG_FILE_UNREADABLE naming the path', async () => {
    const path = join(dir, 'does-not-exist.yaml');
    const err = await rejection(path, 'CONFIG_FILE_UNREADABLE');
    assert.equal(err.message, `cannot read config file ${path}: no such file — check the path given with --config or ${CONFIG_PATH_ENV}`);
  });

  test('a directory is CONFIG_FILE_UNREADABLE', async () => {
    const err = await rejection(dir, 'CONFIG_FILE_UNREADABLE');
    assert.match(err.message, /it is a directory, not a file/);
  });

  test('alias bombs are refused instead of expanded', async () => {
    // Each level repeats the previous one ten times: 10^9 nodes if expanded.
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= 8; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
    const err = await rejection(await writeConfig('bomb.yaml', `${lines.join('\n')}\n`), 'CONFIG_INVALID');
    assert.match(err.message, /is not valid YAML/);
  });
});

describe('resolveConfigPath', () => {
  const table: Array<[string | undefined, NodeJS.ProcessEnv, string | undefined, string]> = [
    ['/etc/a.yaml', { [CONFIG_PATH_ENV]: '/etc/b.yaml' }, '/etc/a.yaml', 'the CLI flag wins over the environment'],
    [undefined, { [CONFIG_PATH_ENV]: '/etc/b.yaml' }, '/etc/b.yaml', 'the environment is used without a flag'],
    ['', { [CONFIG_PATH_ENV]: '/etc/b.yaml' }, '/etc/b.yaml', 'an empty flag counts as absent'],
    [undefined, { [CONFIG_PATH_ENV]: '' }, undefined, 'an empty variable counts as absent'],
    [undefined, {}, undefined, 'neither: embedded defaults'],
  ];
  for (const [cli, env, expected, why] of table) {
    test(why, () => {
      assert.equal(resolveConfigPath(cli, env), expected);
    });
  }
});
