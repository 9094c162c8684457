/** config/merge.ts: static config ⊕ config server answer → one connection's validated config. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AirlockError } from '../../src/core/errors.js';
import { mergeConnectionConfig, parseConfig, type AppConfig } from '../../src/config/index.js';

const AUTH = { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'keys' } } };
const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';

const base = (extra: Record<string, unknown> = {}): AppConfig => parseConfig({ ...AUTH, ...extra }, 'test');

/** The problem lines of the CONFIG_SERVER_INVALID error `fn` throws. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AirlockError);
    assert.equal(err.code, 'CONFIG_SERVER_INVALID');
    const lines = err.details.problems as string[];
    for (const line of lines) assert.ok(err.message.includes(line), 'every problem is in the message');
    return lines;
  }
  assert.fail('expected CONFIG_SERVER_INVALID');
}

describe('mergeConnectionConfig', () => {
  test('no config in the answer (absent, null, {}) leaves the static config as it is', () => {
    const configs = [
      base(),
      base({
        docker: {
          execution: {
            container: { image: 'img', env: ['A=1'], labels: { team: 'x' }, Cmd: ['x'], extra: { StopSignal: 'SIGINT' } },
            host: { cpus: 1.5, memory: '1g', ShmSize: 1024 },
          },
        },
        security: { command: { mode: 'filter', allow: ['a'] }, forceCommand: 'x' },
      }),
      base({ backend: 'podman' }),
      base({ backend: 'kubernetes', kubernetes: { connection: { host: '10.0.0.1:6443', bearerToken: 't' }, pod: { spec: { containers: [{ name: 'shell', image: 'busybox' }] } } } }),
      base({ backend: 'sshproxy', sshproxy: { server: 'h', username: 'u', password: 'p', allowedHostKeyFingerprints: [FINGERPRINT], timeout: '5s' } }),
    ];
    for (const config of configs) {
      assert.equal(mergeConnectionConfig(config, undefined), config);
      assert.equal(mergeConnectionConfig(config, null), config);
      // A parsed config is valid input: merging nothing re-validates to the same config.
      assert.deepEqual(mergeConnectionConfig(config, {}), config);
    }
  });

  test('mappings merge key by key; lists and scalars replace', () => {
    const config = base({ docker: { execution: { container: { image: 'static', env: { A: '1', B: '2' }, labels: { team: 'x' } }, shellCommand: ['/bin/sh'] } } });
    const merged = mergeConnectionConfig(config, {
      docker: { execution: { container: { image: 'per-user', env: { B: 'two', C: '3' } }, shellCommand: ['/bin/bash', '-l'] } },
    });
    assert.equal(merged.docker.execution.container.image, 'per-user');
    assert.deepEqual(merged.docker.execution.container.env, { A: '1', B: 'two', C: '3' });
    assert.deepEqual(merged.docker.execution.container.labels, { team: 'x' });
    assert.deepEqual(merged.docker.execution.shellCommand, ['/bin/bash', '-l']);
    // Docker's list form of env is a list: it replaces the static env.
    assert.deepEqual(mergeConnectionConfig(config, { docker: { execution: { container: { env: ['C=3'] } } } }).docker.execution.container.env, { C: '3' });
  });

  test('explicit false, 0 and empty values are merged (ContainerSSH would drop them)', () => {
    const config = base({ docker: { execution: { host: { readonlyRootfs: true, pidsLimit: 512 } } }, security: { env: { allow: ['LANG'] } } });
    const merged = mergeConnectionConfig(config, {
      docker: { execution: { host: { readonlyRootfs: false, pidsLimit: 0 } } },
      security: { env: { allow: [] } },
    });
    assert.equal(merged.docker.execution.host.readonlyRootfs, false);
    assert.equal(merged.docker.execution.host.pidsLimit, 0);
    assert.deepEqual(merged.security.env.allow, []);
    // An empty string is a value too, and the schema judges it.
    assert.deepEqual(problems(() => mergeConnectionConfig(config, { docker: { execution: { container: { hostname: '' } } } })), [
      'docker.execution.container.hostname: must not be empty',
    ]);
  });

  test('null removes a key, so the built-in default applies again', () => {
    const config = base({ security: { forceCommand: 'audit-shell', env: { mode: 'enable' } }, docker: { execution: { container: { user: 'ops' } } } });
    const merged = mergeConnectionConfig(config, { security: { forceCommand: null, env: null }, docker: { execution: { container: { user: null } } } });
    assert.equal(merged.security.forceCommand, undefined);
    assert.equal(merged.security.env.mode, 'filter', 'the default env policy');
    assert.equal(merged.docker.execution.container.user, undefined);
  });

  test('never changes the static config', () => {
    const config = base({ backend: 'podman', docker: { execution: { host: { cpus: 2 } } } });
    const before = structuredClone(config);
    mergeConnectionConfig(config, { backend: 'docker', docker: { execution: { host: { cpus: 1, readonlyRootfs: false }, container: { env: { X: '1' } } } }, security: { forceCommand: null } });
    assert.deepEqual(config, before);
  });

  test('only backend, docker, kubernetes, sshproxy, security and log.level may be set; every problem is listed', () => {
    assert.deepEqual(
      problems(() =>
        mergeConnectionConfig(base(), {
          ssh: { banner: 'x' },
          auth: {},
          audit: { enable: false },
          log: { level: 'debug', format: 'text' },
          docker: { pool: { size: 2 }, reaper: { interval: '0' } },
          kubernetes: { reaper: {} },
        }),
      ),
      [
        'ssh: cannot be set per connection — a config server may set backend, docker, kubernetes, sshproxy, security, log (log: level only)',
        'auth: cannot be set per connection — a config server may set backend, docker, kubernetes, sshproxy, security, log (log: level only)',
        'audit: cannot be set per connection — a config server may set backend, docker, kubernetes, sshproxy, security, log (log: level only)',
        'log.format: cannot be set per connection — only log.level can',
        'docker.pool: cannot be set per connection — the warm pool is shared by all connections',
        'docker.reaper: cannot be set per connection — the reaper is shared by all connections',
        'kubernetes.reaper: cannot be set per connection — the reaper is shared by all connections',
      ],
    );
    assert.deepEqual(problems(() => mergeConnectionConfig(base(), ['docker'])), ['config: must be a mapping of config sections']);
    assert.equal(mergeConnectionConfig(base(), { log: { level: 'warning' } }).log.level, 'warn', "ContainerSSH's level names");
  });

  test('the merged config is validated like the file: every problem with its key path', () => {
    const patch = { docker: { execution: { mode: 'sometimes', memroy: 1 } }, security: { maxSessions: 0 } };
    const lines = problems(() => mergeConnectionConfig(base(), patch));
    assert.deepEqual(lines, problemsOf(patch), 'the same lines as for the file');
    assert.ok(lines.includes('docker.execution.mode: must be one of connection, session (got "sometimes")'));
    assert.ok(lines.includes('security.maxSessions: must be -1 (unlimited) or at least 1'));
    assert.ok(lines.some((l) => l.startsWith('docker.execution.memroy: unknown key')));
    assert.ok(lines.every((l) => !l.includes('(line ')), 'an answer has no line numbers');
  });

  test('backend can be switched per connection; the switch needs its section', () => {
    const proxied = mergeConnectionConfig(base(), {
      backend: 'sshproxy',
      sshproxy: { server: 'legacy', username: 'debug', password: 'pw', allowedHostKeyFingerprints: [FINGERPRINT] },
    });
    assert.equal(proxied.backend, 'sshproxy');
    assert.equal(proxied.sshproxy?.server, 'legacy');
    assert.equal(proxied.sshproxy?.port, 22);
    const lines = problems(() => mergeConnectionConfig(base(), { backend: 'sshproxy' }));
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^sshproxy: required when backend is "sshproxy"/);
  });

  test('aliases of the file do not collide with the canonical static values', () => {
    // cpus in the file became nanoCpus; an answer's cpus replaces it.
    const cpus = mergeConnectionConfig(base({ docker: { execution: { host: { cpus: 2 } } } }), { docker: { execution: { host: { cpus: 0.5 } } } });
    assert.equal(cpus.docker.execution.host.nanoCpus, 500_000_000);
    // Switching backend without naming a socket means the new backend's default socket.
    const podman = base({ backend: 'podman' });
    assert.equal(podman.docker.connection.host, 'unix:///run/podman/podman.sock');
    assert.equal(mergeConnectionConfig(podman, { backend: 'docker' }).docker.connection.host, 'unix:///var/run/docker.sock');
    assert.equal(mergeConnectionConfig(base(), { backend: 'podman' }).docker.connection.host, 'unix:///run/podman/podman.sock');
    // A socket the file names is kept.
    const named = base({ backend: 'podman', docker: { connection: { host: 'unix:///srv/podman.sock' } } });
    assert.equal(mergeConnectionConfig(named, { backend: 'docker' }).docker.connection.host, 'unix:///srv/podman.sock');
  });

  test('a "__proto__" key in the JSON stays data: refused as unknown, nothing polluted', () => {
    const answer: unknown = JSON.parse('{"security": {"__proto__": {"polluted": true}}}');
    const lines = problems(() => mergeConnectionConfig(base(), answer));
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /__proto__.*unknown key/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

/** What parseConfig says about `patch` over a minimal file (the merge reports the same lines). */
function problemsOf(patch: Record<string, unknown>): string[] {
  try {
    parseConfig({ ...AUTH, ...patch }, 'test');
  } catch (err) {
    assert.ok(err instanceof AirlockError);
    return err.details.problems as string[];
  }
  assert.fail('expected CONFIG_INVALID');
}
