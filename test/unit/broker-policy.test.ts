/** Secret stripping and TTL policy of CI-debug sessions (src/broker/policy.ts): a table of cases. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SECRET_NAME_PATTERNS,
  HARD_MAX_TTL_SECONDS,
  effectiveTtlSeconds,
  imageAllowed,
  sanitizeEnv,
  secretValueReason,
  type SecretPolicy,
} from '../../src/broker/policy.js';

const policy: SecretPolicy = { secretNamePatterns: DEFAULT_SECRET_NAME_PATTERNS, keepEnvNames: [] };

const PEM = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', '-----END OPENSSH PRIVATE KEY-----'].join('\n');
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

// [name, value, stripped?, reason when stripped] — names are innocent unless the case is about the name.
const CASES: ReadonlyArray<readonly [string, string, boolean, string?]> = [
  // Names (substring, case-insensitive).
  ['AWS_SECRET_ACCESS_KEY', 'x', true, 'name'],
  ['GITHUB_TOKEN', 'x', true, 'name'],
  ['NPM_AUTH_TOKEN', 'x', true, 'name'],
  ['PGPASSWORD', 'x', true, 'name'], // no word boundary: why patterns are substrings
  ['db_password', 'x', true, 'name'],
  ['GOOGLE_APPLICATION_CREDENTIALS', '/tmp/creds.json', true, 'name'],
  ['SSL_CERT_FILE', '/etc/ssl/cert.pem', true, 'name'],
  ['DEPLOY_PRIVATE_REGISTRY', 'registry.local', true, 'name'],
  ['STRIPE_API_KEY', 'x', true, 'name'],
  ['apiKey', 'x', true, 'name'],
  // Tricky names, decided: substring matching strips these too (documented in docs/ci-debugging.md).
  ['KEYBOARD_LAYOUT', 'us', true, 'name'],
  ['TOKENIZERS_PARALLELISM', 'false', true, 'name'],
  ['MONKEY_PATCH', '1', true, 'name'],
  // Reserved prefix: the gateway sets AIRLOCK_* itself.
  ['AIRLOCK_SESSION_ID', 'forged', true, 'reserved'],
  // Values that look like credentials, under innocent names.
  ['SSH_SETUP', PEM, true, 'pem-private-key'],
  ['SETUP_ESCAPED', PEM.replaceAll('\n', '\\n'), true, 'pem-private-key'],
  ['RSA_BLOB', '-----BEGIN RSA PRIVATE KEY-----\nMIIE...', true, 'pem-private-key'],
  ['PGP_BLOB', '-----BEGIN PGP PRIVATE KEY BLOCK-----', true, 'pem-private-key'],
  ['AUTH_HEADER', `Bearer ${JWT}`, true, 'jwt'],
  ['GH', 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8', true, 'github-token'],
  ['GH_FINE', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz', true, 'github-token'],
  ['CLONE_URL', 'https://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r', true, 'github-token'],
  ['GL', 'glpat-abcdefghij0123456789', true, 'gitlab-token'],
  ['RUNNER_REG', 'GR1348941abcdefghij0123456789', true, 'gitlab-token'],
  ['SLACK_HOOK', 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX', true, 'slack-token'],
  ['SLACK_BOT', 'xoxb-123456789012-abcdefghijkl', true, 'slack-token'],
  ['AWS_ACCESS', 'AKIAIOSFODNN7EXAMPLE', true, 'aws-access-key-id'],
  ['NPMRC_LINE', '//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789', true, 'known-token-prefix'],
  ['DATABASE_URL', 'postgres://app:hunter2@db:5432/app', true, 'url-credentials'],
  ['RANDOM_BLOB', 'q8Zr2LmX7vN4pT1wK9yB3cF6hJ0sD5gA', true, 'high-entropy'],
  ['BASE64_BLOB', 'dGhpcyBpcyBhIHRlc3Qgb2YgYmFzZTY0IGVuY29kaW5nMTIz', true, 'high-entropy'],
  ['AWS_LIKE', 'je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY', true, 'high-entropy'],
  // Everyday CI values that must survive.
  ['GOPATH', '/home/runner/go', false],
  ['PATH_LIKE', '/usr/local/sbin:/usr/local/bin:/usr/bin:/opt/hostedtoolcache/node/20.11.1/x64/bin', false],
  ['PYTHON_SITE', '/opt/hostedtoolcache/Python/3.11.4/x64/lib/python3.11/site-packages', false],
  ['ANDROID_NDK', '/Users/Runner/Library/Android/sdk/ndk/25.2.9519653', false],
  ['GITHUB_SHA', 'a3f5c9e1b2d4f6a8c0e2a4b6c8d0e2f4a6b8c0d2', false], // hex: never "high entropy"
  ['IMAGE_DIGEST', 'ghcr.io/acme/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', false],
  ['RUNNER_TRACKING_ID', '123e4567-e89b-12d3-a456-426614174000', false],
  ['GITHUB_REF', 'refs/pull/42/merge', false],
  ['BRANCH', 'feature/ADD-1234-Improve-Caching-Layer2', false],
  ['AGENT_POOL', 'MyCompany.Internal.Build.Agent.Windows2022.Pool3', false],
  ['IMAGE', 'ghcr.io/Acme/App-Service:v1.2.3-20240101T120000Z', false],
  ['UA', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36', false],
  ['GIT_REMOTE', 'ssh://git@github.com/acme/app.git', false], // user, no password
  ['CI', 'true', false],
  ['LANG', 'C.UTF-8', false],
  ['EMPTY', '', false],
];

describe('secret stripping', () => {
  for (const [name, value, stripped, reason] of CASES) {
    it(`${name}=${JSON.stringify(value.slice(0, 32))}${value.length > 32 ? '…' : ''} → ${stripped ? `stripped (${reason})` : 'kept'}`, () => {
      const out = sanitizeEnv({ [name]: value }, policy);
      if (stripped) {
        assert.equal(out.env[name], undefined);
        assert.deepEqual(out.redacted, [name]);
        assert.equal(out.reasons[name], reason);
      } else {
        assert.equal(out.env[name], value);
        assert.deepEqual(out.redacted, []);
      }
    });
  }

  it('keepEnvNames exempts a name from the name patterns but never from the value checks', () => {
    const keep: SecretPolicy = { ...policy, keepEnvNames: ['KEYBOARD_LAYOUT', 'SSH_KEY_PATH'] };
    const out = sanitizeEnv({ KEYBOARD_LAYOUT: 'us', SSH_KEY_PATH: PEM }, keep);
    assert.deepEqual(out.env, { KEYBOARD_LAYOUT: 'us' });
    assert.deepEqual(out.redacted, ['SSH_KEY_PATH']);
  });

  it('configured patterns replace the defaults and match case-insensitively', () => {
    const custom: SecretPolicy = { secretNamePatterns: ['vault'], keepEnvNames: [] };
    const out = sanitizeEnv({ MY_VAULT_ADDR: 'x', GITHUB_TOKEN: 'plain' }, custom);
    assert.deepEqual(out.env, { GITHUB_TOKEN: 'plain' });
    assert.deepEqual(out.redacted, ['MY_VAULT_ADDR']);
  });

  it('lists stripped names sorted, never values, and keeps a "__proto__" variable as data', () => {
    const out = sanitizeEnv({ Z_TOKEN: 'v1', A_SECRET: 'v2', __proto__x: 'ok' }, policy);
    assert.deepEqual(out.redacted, ['A_SECRET', 'Z_TOKEN']);
    assert.ok(!JSON.stringify(out.redacted).includes('v1'));
    const proto = sanitizeEnv(JSON.parse('{"__proto__":"kept"}') as Record<string, string>, policy);
    assert.equal(Object.getOwnPropertyDescriptor(proto.env, '__proto__')?.value, 'kept');
  });

  it('secretValueReason is undefined for plain text', () => {
    assert.equal(secretValueReason('hello world'), undefined);
  });
});

describe('TTL policy', () => {
  const ttl = { defaultTtlSeconds: 1800, maxTtlSeconds: 3600 };
  it('defaults, caps at the policy and at the hard maximum', () => {
    assert.equal(effectiveTtlSeconds(undefined, ttl), 1800);
    assert.equal(effectiveTtlSeconds(600, ttl), 600);
    assert.equal(effectiveTtlSeconds(99_999, ttl), 3600);
    assert.equal(effectiveTtlSeconds(3000, { defaultTtlSeconds: 60, maxTtlSeconds: 900 }), 900);
    assert.equal(effectiveTtlSeconds(99_999, { defaultTtlSeconds: 60, maxTtlSeconds: 10_000 }), HARD_MAX_TTL_SECONDS);
    assert.equal(effectiveTtlSeconds(0.5, ttl), 1);
  });
});

describe('image allow-list', () => {
  it('matches globs where * spans any characters', () => {
    assert.ok(imageAllowed('anything:latest', ['*']));
    assert.ok(imageAllowed('ghcr.io/acme/app:1.2', ['ghcr.io/acme/*']));
    assert.ok(!imageAllowed('ghcr.io/evil/app:1.2', ['ghcr.io/acme/*']));
    assert.ok(!imageAllowed('ghcr.io/acme.evil/app', ['ghcr.io/acme/*']));
    assert.ok(imageAllowed('node:20', ['python:*', 'node:*']));
    assert.ok(!imageAllowed('xnode:20', ['node:*']));
  });
});
