/** `airlock broker` (separate process, Redis store) and `airlock provision` (the CI client), as real child processes. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { runProvision } from '../../src/cli/broker.js';
import { tempDir } from '../helpers/tmp.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');
const KEY = randomBytes(20).toString('hex');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function airlock(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, AIRLOCK_PROVISION_KEY: '', AIRLOCK_PROVISION_KEYS: '', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

describe('airlock broker + airlock provision', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let redis: TestRedis;
  let broker: TestBroker | undefined;
  let api = '';
  let configPath = '';

  before(async () => {
    dir = await tempDir('airlock-cli-broker-');
    redis = await startRedis();
    configPath = join(dir.path, 'broker.yaml');
    // No keys and no Redis URL in the file: both come from the environment.
    broker = await startBroker(
      dir.path,
      { ssh: { listen: '0.0.0.0:2222' }, broker: { listen: '127.0.0.1:0', publicHost: 'gw.example.test', tokens: { generatedKeyPath: join(dir.path, 'broker.pem') } } },
      { AIRLOCK_PROVISION_KEYS: ` old-key-0123456789abcdef , ${KEY}`, REDIS_URL: redis.url },
    );
    api = broker.api;
  });
  after(async () => {
    if (broker) assert.equal(await broker.stop(), 0, 'airlock broker stops cleanly on SIGTERM');
    await redis?.stop();
    await dir?.cleanup();
  });

  const session = async (id: string) => {
    const res = await fetch(`${api}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, unknown>;
  };

  it('airlock broker refuses to run without Redis (gateways could not see its sessions)', async () => {
    const r = await airlock(['broker', '--config', configPath], { AIRLOCK_PROVISION_KEYS: KEY });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broker\.redisUrl/);
  });

  it('provision prints the ssh command on stdout and the expiry on stderr', async () => {
    const r = await airlock(['provision', '--api', api, '--image', 'ghcr.io/acme/build:42', '--commit', 'abc1234', '--pr', '5', '--actor', 'octocat', '--ttl', '120'], {
      AIRLOCK_PROVISION_KEY: KEY,
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^ssh -p 2222 eyJ[\w-]+\.[\w-]+\.[\w-]+@gw\.example\.test$/);
    assert.match(r.stderr, /^Debug session [0-9a-f]{32} expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.$/m);
  });

  it('--json prints the whole answer; the session carries the CI facts', async () => {
    const r = await airlock(['provision', '--api', `${api}/`, '--image', 'alpine:3', '--pr', '9', '--repository', 'acme/app', '--pipeline-run', 'r-1', '--json'], {
      AIRLOCK_PROVISION_KEY: KEY,
    });
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout) as { session_id: string; ttl_seconds: number };
    assert.equal(a.ttl_seconds, 1800, 'the default TTL');
    const meta = await session(a.session_id);
    assert.equal(meta.pr_number, 9);
    assert.equal(meta.repository, 'acme/app');
    assert.equal(meta.pipeline_run, 'r-1');
  });

  it('--pass-env sends the build environment without machine paths, secrets or the provisioning key', async () => {
    const r = await airlock(['provision', '--api', api, '--image', 'alpine:3', '--pass-env', '--env', 'EXTRA=1', '--json'], {
      AIRLOCK_PROVISION_KEY: KEY,
      GOPATH: '/home/runner/go',
      MY_DEPLOY_TOKEN: 'tok-123',
      SETUP_BLOB: 'ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8',
      // An exported bash function: not a variable name the broker accepts, so not sent (no 400).
      'BASH_FUNC_greet%%': '() {  echo hi\n}',
    });
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout) as { session_id: string; redacted_vars: string[] };
    const meta = await session(a.session_id);
    const names = meta.env_names as string[];
    assert.ok(names.includes('GOPATH') && names.includes('EXTRA'));
    for (const n of ['PATH', 'HOME', 'MY_DEPLOY_TOKEN', 'SETUP_BLOB', 'AIRLOCK_PROVISION_KEY', 'BASH_FUNC_greet%%']) assert.ok(!names.includes(n), `${n} was sent`);
    assert.ok(a.redacted_vars.includes('MY_DEPLOY_TOKEN') && a.redacted_vars.includes('SETUP_BLOB'));
    assert.ok(!a.redacted_vars.includes('AIRLOCK_PROVISION_KEY'));
  });

  it('exit 2 without a key or with bad flags; exit 1 when the broker refuses', async () => {
    let r = await airlock(['provision', '--api', api, '--image', 'alpine:3']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /set AIRLOCK_PROVISION_KEY/);
    r = await airlock(['provision', '--api', api, '--image', 'alpine:3', '--ttl', 'soon'], { AIRLOCK_PROVISION_KEY: KEY });
    assert.equal(r.code, 2);
    r = await airlock(['provision', '--api', api, '--image', 'alpine:3'], { AIRLOCK_PROVISION_KEY: 'not-the-key-0123456789' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing or invalid provisioning key \[PROVISION_UNAUTHORIZED\]/);
    assert.ok(!r.stderr.includes('not-the-key'), 'the key is never echoed');
    r = await airlock(['provision', '--api', api, '--image', 'bad image'], { AIRLOCK_PROVISION_KEY: KEY });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[REQUEST_INVALID\]\n\s+image: must be an image reference/);
  });

  it('an unreachable broker is retried, then reported (exit 1)', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await runProvision(
      { api: 'http://127.0.0.1:1', image: 'alpine:3', env: [] },
      { env: { AIRLOCK_PROVISION_KEY: KEY }, stdout, stderr, retryForMs: 300 },
    );
    assert.equal(code, 1);
    assert.match(err, /cannot be reached/);
  });
});
