/** The `broker:` config section and its environment overrides. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AirlockError } from '../../src/core/errors.js';
import { applyEnvOverrides, loadConfigFile, parseConfig } from '../../src/config/index.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = '0123456789abcdef0123';

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, 'test');
  } catch (err) {
    assert.ok(err instanceof AirlockError);
    return err.details.problems as string[];
  }
  assert.fail('expected the config to be refused');
}

describe('broker config', () => {
  it('is off when absent', () => {
    const c = parseConfig({ auth: { password: { method: 'webhook', webhook: { url: 'http://auth' } } } }, 'test');
    assert.equal(c.broker, undefined);
  });

  it('fills every default, and token logins alone satisfy the "some auth method" rule', () => {
    const c = parseConfig({ broker: { provisionKeys: [KEY] } }, 'test');
    assert.deepEqual(c.broker, {
      listen: '127.0.0.1:8080',
      serveApi: true,
      provisionKeys: [KEY],
      allowStatelessTokens: false,
      policy: {
        defaultTtlSeconds: 1800,
        maxTtlSeconds: 3600,
        deadlineGraceSeconds: 0,
        defaultMaxConnections: 1,
        secretNamePatterns: ['SECRET', 'TOKEN', 'KEY', 'PASSWORD', 'CREDENTIAL', 'CERT', 'PRIVATE', 'API_KEY'],
        keepEnvNames: [],
        allowedImages: ['*'],
      },
      tokens: { keys: [], generatedKeyPath: '.airlock/broker_ed25519_key.pem', audience: 'airlock', clockTolerance: 5000 },
    });
    assert.deepEqual(problems({}).filter((p) => p.startsWith('auth:')).length, 1);
    assert.match(problems({})[0] ?? '', /or add a broker: section/);
  });

  it('names each bad key with its fix', () => {
    const lines = problems({
      broker: {
        provisionKeys: ['short'],
        redisUrl: 'http://redis:6379',
        policy: { maxTtlSeconds: 7200, defaultMaxConnections: 0 },
        tokens: { keys: [{ privateKeyFile: 'a.pem', secretFile: 'b' }, {}], clockTolerance: '90s' },
      },
    });
    const text = lines.join('\n');
    assert.match(text, /^broker\.provisionKeys\[0\]: must be at least 16 characters — generate one with: openssl rand -hex 32/m);
    assert.match(text, /^broker\.redisUrl: must be a redis:\/\/ or rediss:\/\/ URL/m);
    assert.match(text, /^broker\.policy\.maxTtlSeconds: must be at most 3600/m);
    assert.match(text, /^broker\.policy\.defaultMaxConnections:/m);
    assert.match(text, /^broker\.tokens\.keys\[0\]: set exactly one of privateKeyFile/m);
    assert.match(text, /^broker\.tokens\.keys\[1\]: set exactly one of privateKeyFile/m);
    assert.match(text, /^broker\.tokens\.clockTolerance: must be at most 60s/m);
  });

  it('the API needs a provisioning key unless it is switched off; default TTL ≤ max', () => {
    assert.match(problems({ broker: {} }).join('\n'), /^broker\.provisionKeys: needs at least one key .*AIRLOCK_PROVISION_KEYS/m);
    assert.equal(parseConfig({ broker: { serveApi: false } }, 'test').broker?.serveApi, false);
    assert.match(
      problems({ broker: { provisionKeys: [KEY], policy: { defaultTtlSeconds: 900, maxTtlSeconds: 600 } } }).join('\n'),
      /^broker\.policy\.defaultTtlSeconds: must not exceed broker\.policy\.maxTtlSeconds \(600\)/m,
    );
  });

  it('unknown keys are errors with a hint', () => {
    assert.match(problems({ broker: { provisionKeys: [KEY], policy: { maxTtl: 60 } } }).join('\n'), /^broker\.policy\.maxTtl: /m);
  });

  it('AIRLOCK_PROVISION_KEYS and REDIS_URL fill the broker section (and only it)', async () => {
    const env = { AIRLOCK_PROVISION_KEYS: ` ${KEY} ,, other-key-0123456789 `, REDIS_URL: 'redis://r:6379/1' };
    assert.deepEqual(applyEnvOverrides({ broker: { provisionKeys: ['file-key-0123456789'] } }, env), {
      broker: { provisionKeys: [KEY, 'other-key-0123456789'], redisUrl: 'redis://r:6379/1' },
    });
    assert.deepEqual(applyEnvOverrides({ ssh: {} }, env), { ssh: {} });
    assert.deepEqual(applyEnvOverrides({ broker: {} }, { AIRLOCK_PROVISION_KEYS: '', REDIS_URL: ' ' }), { broker: {} });

    const tmp = await tempDir('airlock-config-broker-');
    try {
      const file = join(tmp.path, 'c.yaml');
      await writeFile(file, 'broker: {}\n');
      const c = await loadConfigFile(file, env);
      assert.deepEqual(c.broker?.provisionKeys, [KEY, 'other-key-0123456789']);
      assert.equal(c.broker?.redisUrl, 'redis://r:6379/1');
      await assert.rejects(loadConfigFile(file, {}), /broker\.provisionKeys: needs at least one key/);
      await assert.rejects(loadConfigFile(file, { REDIS_URL: 'nope' , AIRLOCK_PROVISION_KEYS: KEY }), /broker\.redisUrl: must be a redis/);
    } finally {
      await tmp.cleanup();
    }
  });
});
