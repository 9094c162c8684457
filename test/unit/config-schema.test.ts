import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AirlockError } from '../../src/core/errors.js';
import { securityPolicy } from '../../src/cli/wiring.js';
import {
  appConfigSchema,
  configWarnings,
  embeddedDefaults,
  parseConfig,
  parseListenAddress,
  uniqueKeyTemplate,
  type AppConfig,
} from '../../src/config/index.js';

/** The smallest valid config: one auth method enabled. */
const MINIMAL = { auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'keys' } } };

/** MINIMAL with `patch` deep-merged into it. */
function withPatch(patch: Record<string, unknown>): Record<string, unknown> {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) {
      const prev = out[k];
      out[k] =
        v !== null && typeof v === 'object' && !Array.isArray(v) && prev !== null && typeof prev === 'object' && !Array.isArray(prev)
          ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
          : v;
    }
    return out;
  };
  return merge(structuredClone(MINIMAL), patch);
}

function parse(patch: Record<string, unknown>): AppConfig {
  return parseConfig(withPatch(patch), 'test');
}

/** The problem lines of a CONFIG_INVALID error (and checks they are also in the message). */
function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof AirlockError, 'must throw AirlockError');
    assert.equal(err.code, 'CONFIG_INVALID');
    const lines = err.details['problems'];
    assert.ok(Array.isArray(lines));
    for (const line of lines) assert.ok(err.message.includes(`\n  ${String(line)}`), 'each problem is on its own line');
    return lines.map(String);
  }
  assert.fail('expected the config to be rejected');
}

function problemsOf(patch: Record<string, unknown>): string[] {
  return problems(withPatch(patch));
}

const DEFAULTS: AppConfig = {
  ssh: {
    listen: '0.0.0.0:2222',
    hostkeys: [],
    hostcerts: [],
    generatedHostKeyPath: '.airlock/ssh_host_ed25519_key',
    ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
    kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
    macs: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'],
    hostKeyAlgos: ['ssh-ed25519'],
    banner: '',
    serverVersion: 'SSH-2.0-Airlock',
    clientAliveInterval: 15_000,
    clientAliveCountMax: 3,
    loginGraceTime: 30_000,
    maxAuthTries: 6,
    idleTimeout: 1_800_000,
    shutdownTimeout: 10_000,
    deadlineWarning: 300_000,
    maxConnectionDuration: 0,
  },
  auth: {
    password: { method: 'none', webhook: { timeout: 2000 } },
    publicKey: { method: 'authorizedKeys', webhook: { timeout: 2000 }, authorizedKeys: 'keys', closeAtCertificateExpiry: false },
    keyboardInteractive: { method: 'none', webhook: { timeout: 2000 } },
    authz: { method: 'none', webhook: { timeout: 2000 } },
    authTimeout: 60_000,
    rateLimit: {
      perIp: { maxFailures: 10, window: 300_000, blockFor: 600_000 },
      perUser: { maxFailures: 20, window: 300_000, blockFor: 300_000 },
    },
  },
  backend: 'docker',
  docker: {
    connection: { host: 'unix:///var/run/docker.sock' },
    execution: {
      container: { image: 'airlock-demo:latest', env: {}, labels: {}, extra: {} },
      host: { extra: {} },
      mode: 'connection',
      idleCommand: ['/bin/sh', '-c', 'while :; do sleep 3600; done'],
      subsystems: { sftp: '/usr/lib/openssh/sftp-server' },
      imagePullPolicy: 'IfNotPresent',
    },
    timeouts: { containerStart: 60_000, containerStop: 10_000, commandStart: 60_000, signal: 10_000, window: 10_000, http: 15_000 },
    reaper: { interval: 60_000, foreignMaxAge: 86_400_000 },
    pool: { size: 0 },
    relay: { image: 'airlock-relay:busybox' },
  },
  kubernetes: {
    connection: { host: 'https://kubernetes.default.svc', qps: 5, burst: 10 },
    pod: {
      metadata: { namespace: 'default', generateName: 'airlock-', labels: {}, annotations: {} },
      spec: { containers: [{ name: 'shell', image: 'airlock-demo:latest' }] },
      consoleContainerNumber: 0,
      mode: 'connection',
      idleCommand: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
      subsystems: { sftp: '/usr/lib/openssh/sftp-server' },
    },
    timeouts: { podStart: 60_000, podStop: 60_000, commandStart: 60_000, signal: 10_000, window: 10_000, http: 15_000 },
    reaper: { interval: 60_000, foreignMaxAge: 86_400_000 },
  },
  security: {
    forwarding: { forwardingMode: 'disable', reverseForwardingMode: 'disable', socketForwardingMode: 'disable', socketListenMode: 'disable', x11ForwardingMode: 'disable' },
    env: { mode: 'filter', allow: ['LANG', 'LC_*', 'TERM', 'TZ', 'COLORTERM'], deny: [] },
    maxSessions: -1,
  },
  audit: {
    enable: false,
    format: 'binary',
    storage: 'none',
    file: { parallelUploads: 4 },
    s3: {
      region: 'us-east-1',
      pathStyleAccess: false,
      uploadPartSize: 5 * 1024 * 1024,
      parallelUploads: 20,
      metadata: { ip: false, username: false },
      keyTemplate: '{{connectionId}}/',
    },
    intercept: { stdin: true, stdout: true, stderr: true, forwarding: false },
    onFailure: 'deny',
    queueSize: 64 * 1024 * 1024,
    uploadQueueSize: 1000,
  },
  log: { level: 'info', format: 'ljson', destination: 'stdout' },
  metrics: { enable: false, listen: '0.0.0.0:9100', path: '/metrics' },
  health: { enable: false, listen: '0.0.0.0:7000' },
};

describe('config defaults', () => {
  test('a config with only an auth method comes out with every documented default', () => {
    assert.deepEqual(parseConfig(MINIMAL, 'test'), DEFAULTS);
  });

  test('nested defaults apply inside a partly written section (prefault, not default)', () => {
    const config = parse({ docker: { execution: { mode: 'session' } } });
    assert.equal(config.docker.execution.mode, 'session');
    assert.equal(config.docker.execution.container.image, 'airlock-demo:latest');
    assert.equal(config.docker.execution.imagePullPolicy, 'IfNotPresent');
    assert.equal(config.docker.timeouts.http, 15_000);
  });

  test('embedded demo config: local listener, authorized_keys login, demo image, rest default', () => {
    const demo = embeddedDefaults();
    assert.deepEqual(demo, {
      ...DEFAULTS,
      ssh: { ...DEFAULTS.ssh, listen: '127.0.0.1:2222' },
      auth: {
        ...DEFAULTS.auth,
        publicKey: { method: 'authorizedKeys', webhook: { timeout: 2000 }, authorizedKeys: '.airlock/authorized_keys', closeAtCertificateExpiry: false },
      },
    });
  });

  test('embeddedDefaults returns an independent object each call', () => {
    const a = embeddedDefaults();
    a.ssh.ciphers.push('aes128-ctr');
    a.docker.execution.container.env['X'] = '1';
    const b = embeddedDefaults();
    assert.deepEqual(b.ssh.ciphers, DEFAULTS.ssh.ciphers);
    assert.deepEqual(b.docker.execution.container.env, {});
  });

  test('parsing a parsed config gives the same config (config-webhook merges re-validate)', () => {
    const once = parse({
      ssh: { listen: ':2200', clientAliveInterval: '30s' },
      docker: {
        execution: {
          container: { env: ['A=1'], stopSignal: 'SIGINT' },
          host: { memory: '1g', cpus: 2, shmSize: 1024 },
        },
      },
      log: { level: 'warning' },
    });
    assert.deepEqual(parseConfig(structuredClone(once), 'again'), once);
  });
});

describe('config value conversions', () => {
  for (const [input, ms] of [
    ['500ms', 500],
    ['60s', 60_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    [2500, 2500],
  ] as const) {
    test(`duration ${JSON.stringify(input)} becomes ${ms} ms`, () => {
      const config = parse({ ssh: { loginGraceTime: input }, docker: { timeouts: { signal: input } } });
      assert.equal(config.ssh.loginGraceTime, ms);
      assert.equal(config.docker.timeouts.signal, ms);
    });
  }

  test('0 disables keys documented as disable-able and is refused elsewhere', () => {
    const config = parse({ ssh: { clientAliveInterval: 0, idleTimeout: '0s' }, docker: { reaper: { interval: 0 } } });
    assert.equal(config.ssh.clientAliveInterval, 0);
    assert.equal(config.ssh.idleTimeout, 0);
    assert.equal(config.docker.reaper.interval, 0);
    assert.deepEqual(problemsOf({ ssh: { loginGraceTime: 0 } }), ['ssh.loginGraceTime: must be greater than 0']);
  });

  test('a bad duration names the key and shows the accepted forms', () => {
    const lines = problemsOf({ auth: { authTimeout: '10 sec' }, docker: { timeouts: { http: true } } });
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^auth\.authTimeout: must be a duration like 500ms, 10s.* \(got "10 sec"\)$/);
    assert.match(lines[1] ?? '', /^docker\.timeouts\.http: must be a duration .*\(got boolean true\)$/);
  });

  for (const [input, bytes] of [
    ['512m', 512 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['256MiB', 256 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['64k', 64 * 1024],
    [1_000_000, 1_000_000],
  ] as const) {
    test(`memory ${JSON.stringify(input)} becomes ${bytes} bytes`, () => {
      assert.equal(parse({ docker: { execution: { host: { memory: input } } } }).docker.execution.host.memory, bytes);
    });
  }

  test('a bad memory size names the key', () => {
    assert.deepEqual(problemsOf({ docker: { execution: { host: { memory: '12 parsecs' } } } }), [
      'docker.execution.host.memory: must be a size like 512m, 1g or 256MiB, or a number of bytes (got "12 parsecs")',
    ]);
  });

  test('cpus maps to nanoCpus; setting both is an error', () => {
    const host = parse({ docker: { execution: { host: { cpus: 1.5 } } } }).docker.execution.host;
    assert.equal(host.nanoCpus, 1_500_000_000);
    assert.equal('cpus' in host, false);
    assert.equal(parse({ docker: { execution: { host: { nanoCpus: 250_000_000 } } } }).docker.execution.host.nanoCpus, 250_000_000);
    assert.deepEqual(problemsOf({ docker: { execution: { host: { cpus: 1, nanoCpus: 1 } } } }), [
      'docker.execution.host.cpus: set either cpus (e.g. 1.5) or nanoCpus (e.g. 1500000000), not both',
    ]);
  });

  test("env in Docker's list form is normalised to a record (split at the first =)", () => {
    const env = parse({ docker: { execution: { container: { env: ['A=1', 'B=x=y', 'EMPTY='] } } } }).docker.execution.container.env;
    assert.deepEqual(env, { A: '1', B: 'x=y', EMPTY: '' });
    const mapped = parse({ docker: { execution: { container: { env: { A: '1' } } } } }).docker.execution.container.env;
    assert.deepEqual(mapped, { A: '1' });
  });

  test('bad env entries name the entry', () => {
    assert.deepEqual(problemsOf({ docker: { execution: { container: { env: ['A=1', 'NOVALUE', 'A=2'] } } } }), [
      'docker.execution.container.env[1]: must be "NAME=value" (got "NOVALUE") — or write env as a mapping of NAME: value',
      'docker.execution.container.env[2]: A is set twice — keep one entry',
    ]);
    assert.deepEqual(problemsOf({ docker: { execution: { container: { env: { VERSION: 1.1 } } } } }), [
      'docker.execution.container.env.VERSION: must be a string (got number 1.1) — quote the value',
    ]);
  });

  test('listen: ":port" means all interfaces, IPv6 keeps brackets, port 0 is allowed', () => {
    assert.equal(parse({ ssh: { listen: ':2200' } }).ssh.listen, '0.0.0.0:2200');
    assert.equal(parse({ ssh: { listen: '[::1]:0' } }).ssh.listen, '[::1]:0');
    assert.deepEqual(parseListenAddress('[::1]:22'), { host: '::1', port: 22 });
    assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(problemsOf({ ssh: { listen: '0.0.0.0:70000' } }), [
      'ssh.listen: must be host:port with a port from 0 to 65535, e.g. 0.0.0.0:2222 (got "0.0.0.0:70000")',
    ]);
    assert.equal(problemsOf({ ssh: { listen: '2222' } }).length, 1);
  });

  test('ContainerSSH log level names map onto ours; an empty auth method means none', () => {
    assert.equal(parse({ log: { level: 'warning' } }).log.level, 'warn');
    assert.equal(parse({ log: { level: 'notice' } }).log.level, 'info');
    assert.equal(parse({ auth: { password: { method: '' } } }).auth.password.method, 'none');
  });
});

describe('docker passthrough (extra)', () => {
  test('untyped container and host keys are kept under extra, typed ones are not', () => {
    const execution = parse({
      docker: {
        execution: {
          container: { image: 'img', user: '1000', stopSignal: 'SIGINT', healthcheck: { test: ['NONE'] } },
          host: { memory: 1_000_000, shmSize: 67_108_864, init: true, capDrop: ['ALL'] },
        },
      },
    }).docker.execution;
    assert.deepEqual(execution.container, {
      image: 'img',
      user: '1000',
      env: {},
      labels: {},
      extra: { stopSignal: 'SIGINT', healthcheck: { test: ['NONE'] } },
    });
    assert.deepEqual(execution.host, { memory: 1_000_000, capDrop: ['ALL'], extra: { shmSize: 67_108_864, init: true } });
  });

  test('an explicit extra map is merged with the loose keys', () => {
    const container = parse({ docker: { execution: { container: { extra: { tty: false }, stopTimeout: 5 } } } }).docker.execution
      .container;
    assert.deepEqual(container.extra, { tty: false, stopTimeout: 5 });
  });

  test('a near-miss of a typed key is an error, not a silent passthrough', () => {
    assert.deepEqual(problemsOf({ docker: { execution: { container: { Image: 'x' }, host: { memroy: '1g', CapDrop: ['ALL'] } } } }), [
      'docker.execution.container.Image: looks like a misspelling of "image" — write it as image (other keys here are passed to Docker unchecked)',
      'docker.execution.host.memroy: looks like a misspelling of "memory" — write it as memory (other keys here are passed to Docker unchecked)',
      'docker.execution.host.CapDrop: looks like a misspelling of "capDrop" — write it as capDrop (other keys here are passed to Docker unchecked)',
    ]);
  });

  test('labels under the gateway prefix are refused', () => {
    assert.deepEqual(problemsOf({ docker: { execution: { container: { labels: { 'airlock.managed': 'true', team: 'ci' } } } } }), [
      'docker.execution.container.labels["airlock.managed"]: labels starting with "airlock." are reserved for the gateway — choose another name',
    ]);
  });
});

describe('config errors name the key and the fix', () => {
  test('unknown key (typo) is an error with a suggestion', () => {
    assert.deepEqual(problemsOf({ ssh: { bogus: 1, lisen: '0.0.0.0:22' } }), [
      'ssh.bogus: unknown key — remove it or check the spelling',
      'ssh.lisen: unknown key — remove it or check the spelling (did you mean "listen"?)',
    ]);
    assert.deepEqual(problemsOf({ logs: {} }), ['logs: unknown key — remove it or check the spelling (did you mean "log"?)']);
  });

  test('bad enum value lists the allowed values and what was given', () => {
    assert.deepEqual(problemsOf({ docker: { execution: { mode: 'conection' } } }), [
      'docker.execution.mode: must be one of connection, session (got "conection")',
    ]);
  });

  test('docker.pool: size and image parse; the pool refuses session mode and sizes out of range', () => {
    assert.deepEqual(parse({ docker: { pool: { size: 3, image: 'busybox:1' } } }).docker.pool, { size: 3, image: 'busybox:1' });
    assert.deepEqual(problemsOf({ docker: { pool: { size: 2 }, execution: { mode: 'session' } } }), [
      'docker.pool.size: the warm pool works in connection mode only — set docker.execution.mode to "connection" or docker.pool.size to 0',
    ]);
    assert.equal(problemsOf({ docker: { pool: { size: -1 } } }).length, 1);
    assert.equal(problemsOf({ docker: { pool: { size: 101 } } }).length, 1);
    assert.equal(problemsOf({ docker: { pool: { sise: 1 } } })[0], 'docker.pool.sise: unknown key — remove it or check the spelling (did you mean "size"?)');
  });

  test('webhook method without url', () => {
    assert.deepEqual(problemsOf({ auth: { password: { method: 'webhook' } } }), [
      'auth.password.webhook.url: required when auth.password.method is "webhook" — set it to the webhook base URL (e.g. http://auth:8080)',
    ]);
  });

  test('authorizedKeys method without a file, and settings for a method that is off', () => {
    assert.deepEqual(problems({ auth: { publicKey: { method: 'authorizedKeys' }, password: { webhook: { url: 'http://a:1' } } } }), [
      'auth.password.webhook.url: is set but auth.password.method is "none", so it would be ignored — set auth.password.method to "webhook" or remove the url',
      'auth.publicKey.authorizedKeys: required when auth.publicKey.method is "authorizedKeys" — set it to the path of an authorized_keys file',
    ]);
  });

  test('keyboard-interactive and authz webhooks, failed-login limits: keys, checks, what is refused', () => {
    const config = parse({
      auth: {
        keyboardInteractive: { method: 'webhook', webhook: { url: 'http://kbd:8080', timeout: '750ms' } },
        authz: { method: 'webhook', webhook: { url: 'http://authz:8080/' } },
        rateLimit: { perIp: { maxFailures: 3, window: '1m', blockFor: '90s' }, perUser: { maxFailures: 0 } },
      },
    });
    assert.deepEqual(config.auth.keyboardInteractive, { method: 'webhook', webhook: { url: 'http://kbd:8080', timeout: 750 } });
    assert.deepEqual(config.auth.authz, { method: 'webhook', webhook: { url: 'http://authz:8080/', timeout: 2000 } });
    assert.deepEqual(config.auth.rateLimit, {
      perIp: { maxFailures: 3, window: 60_000, blockFor: 90_000 },
      perUser: { maxFailures: 0, window: 300_000, blockFor: 300_000 },
    });
    // Keyboard-interactive alone is a way in.
    assert.equal(parseConfig({ auth: { keyboardInteractive: { method: 'webhook', webhook: { url: 'http://kbd:1' } } } }, 'test').auth.keyboardInteractive.method, 'webhook');
    assert.deepEqual(
      problemsOf({
        auth: {
          keyboardInteractive: { method: 'webhook' },
          authz: { webhook: { url: 'http://authz:1' } },
          rateLimit: { perIp: { maxFailures: -1, window: '10ms' }, perUsr: {} },
        },
      }),
      [
        'auth.rateLimit.perIp.maxFailures: must be at least 0 (got -1)',
        'auth.rateLimit.perIp.window: must be at least 1000ms (got 10ms)',
        'auth.rateLimit.perUsr: unknown key — remove it or check the spelling (did you mean "perUser"?)',
        'auth.keyboardInteractive.webhook.url: required when auth.keyboardInteractive.method is "webhook" — set it to the webhook base URL (e.g. http://auth:8080)',
        'auth.authz.webhook.url: is set but auth.authz.method is "none", so it would be ignored — set auth.authz.method to "webhook" or remove the url',
      ],
    );
    // ContainerSSH's OAuth2 device flow is known but not taken.
    assert.deepEqual(problemsOf({ auth: { keyboardInteractive: { method: 'oauth2', oauth2: {} } } }), [
      'auth.keyboardInteractive.method: "oauth2" is not supported yet by this Airlock version — use webhook or none',
      'auth.keyboardInteractive.oauth2: OAuth2 device-flow login is not supported — use auth.keyboardInteractive.method: webhook',
    ]);
  });

  test('no auth method enabled says so and how to fix it', () => {
    const lines = problems({});
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^auth: no authentication method is enabled/);
    assert.match(lines[0] ?? '', /set auth\.publicKey\.method to "authorizedKeys"/);
    assert.match(lines[0] ?? '', /auth\.password\.method to "webhook"/);
  });

  for (const section of ['cleanupserver', 'geoip']) {
    test(`top-level ${section} is "not supported yet", not ignored`, () => {
      assert.deepEqual(problemsOf({ [section]: {} }), [`${section}: not supported yet by this Airlock version — remove it`]);
    });
  }

  test('configserver: ContainerSSH keys, defaults, and what is refused', () => {
    assert.equal(parse({}).configserver, undefined, 'absent = no config server');
    assert.deepEqual(parse({ configserver: { url: 'http://config:8080/config' } }).configserver, {
      url: 'http://config:8080/config',
      timeout: 2_000,
      totalTimeout: 10_000,
    });
    assert.deepEqual(parse({ configserver: { url: 'https://c/x', timeout: '500ms', totalTimeout: '1m' } }).configserver, {
      url: 'https://c/x',
      timeout: 500,
      totalTimeout: 60_000,
    });
    assert.deepEqual(problemsOf({ configserver: { timeout: '1s' } }), ['configserver.url: required — set it']);
    assert.deepEqual(problemsOf({ configserver: { url: 'config:8080', timeout: '10ms' } }), [
      'configserver.url: must be an http:// or https:// URL (e.g. http://auth:8080)',
      'configserver.timeout: must be at least 100ms (got 10ms)',
    ]);
    assert.deepEqual(problemsOf({ configserver: { url: 'http://c', cacert: 'x', urll: 'y' } }), [
      'configserver.cacert: not supported yet by this Airlock version — remove it',
      'configserver.urll: unknown key — remove it or check the spelling (did you mean "url"?)',
    ]);
  });

  test('metrics and health: ContainerSSH keys, defaults, and what is refused', () => {
    const config = parse({ metrics: { enable: true, listen: ':9200' }, health: { enable: true, listen: '127.0.0.1:0' } });
    assert.deepEqual(config.metrics, { enable: true, listen: '0.0.0.0:9200', path: '/metrics' });
    assert.deepEqual(config.health, { enable: true, listen: '127.0.0.1:0' });
    assert.deepEqual(problemsOf({ metrics: { path: '/readyz', listen: 'nope' }, health: { enable: 'yes' } }), [
      'metrics.listen: must be host:port with a port from 0 to 65535, e.g. 0.0.0.0:2222 (got "nope")',
      'metrics.path: is reserved for the health endpoints — use e.g. /metrics',
      'health.enable: must be true or false (got "yes")',
    ]);
    assert.deepEqual(problemsOf({ metrics: { path: 'metrics' } }), [
      'metrics.path: must be a URL path starting with "/" (e.g. /metrics), without spaces',
    ]);
    // ContainerSSH's TLS and healthcheck-client keys: known, not implemented, so not silently ignored.
    assert.deepEqual(problemsOf({ metrics: { cert: 'c.pem' }, health: { client: { url: 'http://127.0.0.1:7000/' } } }), [
      'metrics.cert: not supported yet by this Airlock version — remove it',
      'health.client: Airlock has no healthcheck client command — remove it (probe GET /healthz or /readyz with curl or your orchestrator)',
    ]);
  });

  test('known ContainerSSH keys and values Airlock lacks are reported as not supported', () => {
    assert.deepEqual(problemsOf({ docker: { execution: { network: {} } }, log: { destination: 'syslog' } }), [
      'docker.execution.network: not supported yet by this Airlock version — remove it',
      'log.destination: "syslog" is not supported yet by this Airlock version — use stdout or stderr or file',
    ]);
  });

  test('security.forwarding: TCP forwarding is enable, filter or disable (off by default, whatever defaultMode says); socket and X11 forwarding filter or disable', () => {
    assert.deepEqual(parse({ security: { defaultMode: 'enable' } }).security.forwarding, {
      forwardingMode: 'disable',
      reverseForwardingMode: 'disable',
      socketForwardingMode: 'disable',
      socketListenMode: 'disable',
      x11ForwardingMode: 'disable',
    });
    const on = parse({ security: { forwarding: { forwardingMode: 'enable', reverseForwardingMode: 'enable', x11ForwardingMode: 'disable' } } }).security.forwarding;
    assert.equal(on.forwardingMode, 'enable');
    assert.equal(on.reverseForwardingMode, 'enable');
    assert.deepEqual(problemsOf({ security: { forwarding: { socketForwardingMode: 'enable', socketListenMode: 'enable', x11ForwardingMode: 'enable' } } }), [
      'security.forwarding.socketForwardingMode: "enable" is not supported yet by this Airlock version — use filter or disable',
      'security.forwarding.socketListenMode: "enable" is not supported yet by this Airlock version — use filter or disable',
      'security.forwarding.x11ForwardingMode: "enable" is not supported yet by this Airlock version — use filter or disable',
    ]);
    assert.equal(problemsOf({ security: { forwarding: { forwardingMode: 'on' } } })[0], 'security.forwarding.forwardingMode: must be one of enable, filter, disable (got "on")');
  });

  test('security.forwarding.*: ContainerSSH\'s "filter" loads, is applied as disable, and is reported as a warning', () => {
    const config = parse({ security: { forwarding: { forwardingMode: 'filter', reverseForwardingMode: 'enable', x11ForwardingMode: 'filter' } } });
    assert.equal(config.security.forwarding.forwardingMode, 'filter');
    // What the session layer enforces: filter closes the path like disable; enable stays enable.
    assert.deepEqual(securityPolicy(config.security).forwarding, { forwardingMode: 'disable', reverseForwardingMode: 'enable' });
    assert.deepEqual(
      configWarnings(config).map((w) => w.key),
      ['security.forwarding.forwardingMode', 'security.forwarding.x11ForwardingMode'],
    );
    assert.match(configWarnings(config)[0]!.message, /"filter" is applied as "disable"/);
    assert.deepEqual(configWarnings(parse({})), [], 'no warning for the defaults');
  });

  test('ssh.maxConnectionDuration: 0 (no limit) by default, a duration of at least 1s; closeAtCertificateExpiry needs an SSH CA', () => {
    assert.equal(parse({}).ssh.maxConnectionDuration, 0);
    assert.equal(parse({ ssh: { maxConnectionDuration: '8h' } }).ssh.maxConnectionDuration, 8 * 3_600_000);
    assert.match(problemsOf({ ssh: { maxConnectionDuration: '500ms' } })[0]!, /^ssh\.maxConnectionDuration: /);
    assert.equal(parse({ auth: { publicKey: { trustedUserCAKeys: ['ca.pub'], closeAtCertificateExpiry: true } } }).auth.publicKey.closeAtCertificateExpiry, true);
    assert.deepEqual(problemsOf({ auth: { publicKey: { closeAtCertificateExpiry: true } } }), [
      'auth.publicKey.closeAtCertificateExpiry: applies to SSH certificate logins only — set auth.publicKey.trustedUserCAKeys or remove it',
    ]);
  });

  test('docker.relay.image names the port-forwarding helper image', () => {
    assert.equal(parse({ docker: { relay: { image: 'registry.example/airlock-relay:1' } } }).docker.relay.image, 'registry.example/airlock-relay:1');
  });

  test('wrong types, empty values and ranges', () => {
    assert.deepEqual(problemsOf({ ssh: { maxAuthTries: 0, banner: 5, hostkeys: 'key.pem' }, log: null }), [
      'ssh.hostkeys: must be a list (got "key.pem")',
      'ssh.banner: must be a string (got number 5) — quote the value',
      'ssh.maxAuthTries: must be at least 1 (got 0)',
      'log: has no value — give it a value or remove the key',
    ]);
  });

  test('weak or unknown algorithms are refused with the allowed list', () => {
    assert.deepEqual(problemsOf({ ssh: { macs: ['hmac-sha2-256', 'hmac-sha1'], hostKeyAlgos: ['ssh-dss'] } }), [
      'ssh.macs[1]: must be one of hmac-sha2-256-etm@openssh.com, hmac-sha2-512-etm@openssh.com, hmac-sha2-256, hmac-sha2-512 (got "hmac-sha1")',
      'ssh.hostKeyAlgos[0]: must be one of ssh-ed25519, rsa-sha2-512, rsa-sha2-256, ecdsa-sha2-nistp256 (got "ssh-dss")',
    ]);
    assert.deepEqual(problemsOf({ ssh: { ciphers: [] } }), ['ssh.ciphers: must list at least 1 item']);
  });

  test('serverVersion must follow RFC 4253', () => {
    assert.equal(parse({ ssh: { serverVersion: 'SSH-2.0-Corp_1.2 comment here' } }).ssh.serverVersion, 'SSH-2.0-Corp_1.2 comment here');
    const lines = problemsOf({ ssh: { serverVersion: 'OpenSSH_9.6' } });
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^ssh\.serverVersion: must look like "SSH-2\.0-Name_1\.0": start with SSH-2\.0-/);
  });

  test('log file, docker TLS and URLs are checked together with their siblings', () => {
    assert.deepEqual(
      problemsOf({
        log: { destination: 'file' },
        docker: { connection: { host: 'tcp://docker:2376', cert: 'cert.pem' } },
        auth: { publicKey: { method: 'webhook', authorizedKeys: undefined, webhook: { url: 'ftp://auth' } } },
      }),
      [
        'auth.publicKey.webhook.url: must be an http:// or https:// URL (e.g. http://auth:8080)',
        'docker.connection.key: TLS client authentication needs both docker.connection.cert and docker.connection.key — set both or neither',
        'log.file: required when log.destination is "file" — set it to the log file path',
      ],
    );
  });

  test('every problem is reported in one error, each naming its key', () => {
    const lines = problemsOf({
      ssh: { bogus: true, clientAliveInterval: 'soon' },
      auth: { password: { method: 'webhook' } },
      docker: { execution: { mode: 'x', imagePullPolicy: 'always' } },
      security: { env: { mode: 'allow', allow: ['LC_*X'] }, maxSessions: 0 },
      audit: { enable: true },
    });
    const keys = lines.map((l) => l.slice(0, l.indexOf(':')));
    assert.deepEqual(keys.sort(), [
      'audit.storage',
      'auth.password.webhook.url',
      'docker.execution.imagePullPolicy',
      'docker.execution.mode',
      'security.env.allow[0]',
      'security.env.mode',
      'security.maxSessions',
      'ssh.bogus',
      'ssh.clientAliveInterval',
    ]);
  });

  test('the top level must be a mapping', () => {
    assert.deepEqual(problems(['ssh']), ['(top level): must be a mapping (key: value lines) (got a list)']);
  });

  test('the schema itself enforces the rules (for callers that validate merged configs)', () => {
    const result = appConfigSchema.safeParse({ ssh: { bogus: 1 } });
    assert.equal(result.success, false);
  });
});

describe('audit config', () => {
  const S3 = { enable: true, storage: 's3', s3: { local: '/var/spool/airlock', bucket: 'recordings' } };

  test('a ContainerSSH-style S3 section parses, with Airlock defaults for the rest', () => {
    const config = parse({
      audit: {
        ...S3,
        format: 'both',
        s3: {
          ...S3.s3,
          endpoint: 'http://127.0.0.1:9000',
          accessKey: 'AK',
          secretKey: 'SK',
          pathStyleAccess: true,
          uploadPartSize: '8MiB',
          parallelUploads: 4,
          metadata: { ip: true, username: true },
          keyTemplate: '{{metadata.commit_sha}}/{{connectionId}}/',
        },
        intercept: { stdin: false, passwords: false },
        onFailure: 'allow',
        queueSize: '16m',
        uploadQueueSize: 50,
      },
    });
    assert.equal(config.audit.format, 'both');
    assert.equal(config.audit.s3.uploadPartSize, 8 * 1024 * 1024);
    assert.equal(config.audit.s3.parallelUploads, 4);
    assert.equal(config.audit.s3.keyTemplate, '{{metadata.commit_sha}}/{{connectionId}}/');
    assert.deepEqual(config.audit.intercept, { stdin: false, stdout: true, stderr: true, passwords: false, forwarding: false });
    assert.equal(config.audit.onFailure, 'allow');
    assert.equal(config.audit.queueSize, 16 * 1024 * 1024);
    assert.equal(config.audit.uploadQueueSize, 50);
    assert.equal(parse({ audit: { enable: true, storage: 'file', file: { directory: '/rec', parallelUploads: 8 } } }).audit.file.parallelUploads, 8);
    assert.deepEqual(problemsOf({ audit: { uploadQueueSize: 0, file: { parallelUploads: 0 } } }), [
      'audit.file.parallelUploads: must be at least 1 (got 0)',
      'audit.uploadQueueSize: must be at least 1 (got 0)',
    ]);
  });

  test('enabling audit needs a storage, its location, and a real format', () => {
    assert.deepEqual(problemsOf({ audit: { enable: true, format: 'none' } }), [
      'audit.storage: must be "file" or "s3" when audit.enable is true — or set audit.enable to false',
      'audit.format: must be binary, asciinema or both when audit.enable is true — or set audit.enable to false',
    ]);
    assert.deepEqual(problemsOf({ audit: { enable: true, storage: 'file' } }), [
      'audit.file.directory: required when audit.storage is "file" — set it to the recordings directory',
    ]);
    assert.deepEqual(problemsOf({ audit: { enable: true, storage: 's3', s3: { accessKey: 'AK' } } }), [
      'audit.s3.local: required when audit.storage is "s3" — set it to a local spool directory (recordings wait there until uploaded)',
      'audit.s3.bucket: required when audit.storage is "s3" — set it to the bucket name',
      'audit.s3.secretKey: set both audit.s3.accessKey and audit.s3.secretKey, or neither (then the AWS default credential chain is used)',
    ]);
    // A disabled ContainerSSH section (format none, storage none) is fine.
    assert.equal(parse({ audit: { enable: false, format: 'none', storage: 'none' } }).audit.enable, false);
  });

  test('key templates: known placeholders only, relative', () => {
    assert.deepEqual(problemsOf({ audit: { ...S3, s3: { ...S3.s3, keyTemplate: '{{metadata.commit_sha}}/{{sessionid}}/' } } }), [
      'audit.s3.keyTemplate: unknown placeholder "{{sessionid}}" — use {{connectionId}}, {{username}}, {{date}} or {{metadata.NAME}}',
    ]);
    assert.deepEqual(problemsOf({ audit: { ...S3, s3: { ...S3.s3, keyTemplate: '/{{connectionId}}' } } }), [
      'audit.s3.keyTemplate: must not start with "/" (S3 keys are relative to the bucket)',
    ]);
  });

  test('key templates without {{connectionId}} get it appended, so every recording keeps its own prefix', () => {
    const keyTemplateOf = (keyTemplate: string) => parse({ audit: { ...S3, s3: { ...S3.s3, keyTemplate } } }).audit.s3.keyTemplate;
    // The issue's own example: one CI session can have several connections.
    assert.equal(keyTemplateOf('{{metadata.commit_sha}}/{{metadata.session_id}}/'), '{{metadata.commit_sha}}/{{metadata.session_id}}/{{connectionId}}/');
    assert.equal(keyTemplateOf('recordings/{{date}}'), 'recordings/{{date}}/{{connectionId}}/');
    assert.equal(keyTemplateOf(''), '{{connectionId}}/');
    // Present anywhere (even mid-segment, with spaces): left exactly as written.
    assert.equal(keyTemplateOf('{{metadata.commit_sha}}/{{connectionId}}/'), '{{metadata.commit_sha}}/{{connectionId}}/');
    assert.equal(keyTemplateOf('rec-{{ connectionId }}-x/'), 'rec-{{ connectionId }}-x/');
    assert.equal(parse({ audit: S3 }).audit.s3.keyTemplate, '{{connectionId}}/');
    // Idempotent: a parsed config parsed again (e.g. printed by `config check`) is unchanged.
    assert.equal(uniqueKeyTemplate(uniqueKeyTemplate('{{metadata.session_id}}')), '{{metadata.session_id}}/{{connectionId}}/');
  });

  test('passwords are never recorded; forwarded bytes only on request; TLS options are not supported yet', () => {
    assert.deepEqual(problemsOf({ audit: { intercept: { passwords: true, forwarding: true }, s3: { cacert: 'ca.pem' } } }), [
      'audit.s3.cacert: not supported yet by this Airlock version — remove it (the system CA store is used for https endpoints)',
      'audit.intercept.passwords: Airlock never records passwords — set it to false or remove it',
    ]);
    assert.equal(parse({ audit: { intercept: { forwarding: true } } }).audit.intercept.forwarding, true);
    assert.deepEqual(problemsOf({ audit: { format: 'cast', s3: { uploadPartSize: '1m', parallelUploads: 0 }, onFailure: 'ignore' } }).length, 4);
  });
});
