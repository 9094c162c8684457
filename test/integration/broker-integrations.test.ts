/**
 * The CI templates' scripts, executed as CI would run them (bash for GitHub, sh for Tekton and
 * GitLab) against a real provisioning API: what a copy-paste user gets is what is tested.
 * Needs curl and jq (what the templates need on a runner).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { createBrokerRuntime, type BrokerRuntime, type StartedApi } from '../../src/broker/runtime.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../../integrations');
const KEY = randomBytes(20).toString('hex');
const missingTools = ['curl', 'jq', 'bash', 'sh'].filter((t) => {
  try {
    execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
const skip = missingTools.length > 0 ? `needs ${missingTools.join(', ')}` : false;

interface Run {
  code: number | null;
  out: string;
}

async function runScript(shell: string[], script: string, env: Record<string, string>): Promise<Run> {
  // A clean environment, like a fresh CI step: only what the template is given (plus PATH).
  const child = spawn(shell[0]!, [...shell.slice(1), script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, out };
}

describe('CI templates run against a real broker API', { skip }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let runtime: BrokerRuntime;
  let api: StartedApi;
  let base: string;
  before(async () => {
    dir = await tempDir('airlock-integrations-');
    const config = parseConfig(
      { broker: { listen: '127.0.0.1:0', provisionKeys: [KEY], publicHost: 'gw.example.test', publicPort: 22, tokens: { generatedKeyPath: join(dir.path, 'k.pem') } } },
      'test',
    );
    const quiet = pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));
    runtime = await createBrokerRuntime({ config: config.broker!, logger: quiet });
    api = await runtime.startApi();
    base = `http://127.0.0.1:${api.address.port}`;
  });
  after(async () => {
    await api?.close();
    await runtime?.close();
    await dir?.cleanup();
  });

  const session = async (id: string) => (await (await fetch(`${base}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as Record<string, unknown>;

  it('GitHub action: job summary, outputs, masked token, job env minus secrets', async () => {
    const action = parse(await readFile(join(ROOT, 'github-action/action.yml'), 'utf8')) as { runs: { steps: Array<{ run: string; env: Record<string, string> }> } };
    const step = action.runs.steps[0]!;
    const inputs: Record<string, string> = {
      'api-url': `${base}/`,
      'provision-key': KEY,
      image: 'ghcr.io/acme/app-ci:abc',
      'ttl-seconds': '900',
      'max-connections': '1',
      'pass-env': 'true',
      'commit-sha': 'abc1234',
      'pr-number': '',
      actor: 'octocat',
      repository: 'acme/app',
      'pipeline-run': '42-1',
    };
    // What the runner does with `${{ inputs.x }}` in the step's env block.
    const env = Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, v.replace(/^\$\{\{ inputs\.([\w-]+) \}\}$/, (_m, n: string) => inputs[n] ?? '')]));
    const summary = join(dir.path, 'summary.md');
    const output = join(dir.path, 'output');
    const r = await runScript(['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c'], step.run, {
      ...env,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_OUTPUT: output,
      HOME: '/home/runner',
      GOPATH: '/home/runner/go',
      NPM_TOKEN: 'npm-secret-value',
      DEPLOY_NOTE: 'ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8',
      // An exported bash function (bash imports and re-exports it): not a name the broker accepts.
      'BASH_FUNC_greet%%': '() {  echo hi\n}',
    });
    assert.equal(r.code, 0, r.out);
    assert.ok(!r.out.includes(KEY), 'the provisioning key is never printed');
    const md = await readFile(summary, 'utf8');
    const command = /```sh\n(ssh \S+@gw\.example\.test)\n```/.exec(md)?.[1];
    assert.ok(command, md);
    const token = command.slice(4).split('@')[0]!;
    assert.ok(r.out.includes(`::add-mask::${token}`), 'the token is masked before anything prints it');
    assert.match(md, /expires \*\*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\*\*/);
    const outputs = Object.fromEntries((await readFile(output, 'utf8')).trim().split('\n').map((l) => l.split('=') as [string, string]));
    const meta = await session(outputs['session-id']!);
    assert.equal(meta.actor, 'octocat');
    assert.equal(meta.pr_number, null, 'an empty PR number means none');
    assert.equal(meta.pipeline_run, '42-1');
    const names = meta.env_names as string[];
    assert.ok(names.includes('GOPATH'));
    for (const n of ['HOME', 'PATH', 'NPM_TOKEN', 'DEPLOY_NOTE', 'GITHUB_STEP_SUMMARY', 'AIRLOCK_PROVISION_KEY', 'AIRLOCK_IN_IMAGE', 'BASH_FUNC_greet%%']) assert.ok(!names.includes(n), n);
    assert.deepEqual(meta.redacted_vars, ['DEPLOY_NOTE', 'NPM_TOKEN']);
    assert.match(md, /Stripped from its environment: `DEPLOY_NOTE, NPM_TOKEN`/);
    assert.equal(Number(outputs['expires-at']), meta.expires_at);
  });

  it('GitHub action: a refused key fails the step with the reason, not the key', async () => {
    const action = parse(await readFile(join(ROOT, 'github-action/action.yml'), 'utf8')) as { runs: { steps: Array<{ run: string; env: Record<string, string> }> } };
    const step = action.runs.steps[0]!;
    // Every env key of the step exists (empty inputs are empty strings), as on a runner.
    const blank = Object.fromEntries(Object.keys(step.env).map((k) => [k, '']));
    const r = await runScript(['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c'], step.run, {
      ...blank,
      AIRLOCK_API_URL: base,
      AIRLOCK_PROVISION_KEY: 'wrong-key-0123456789',
      AIRLOCK_IN_IMAGE: 'alpine:3',
      AIRLOCK_IN_TTL: '60',
      AIRLOCK_IN_MAX: '1',
      AIRLOCK_IN_PASS_ENV: 'false',
      GITHUB_STEP_SUMMARY: join(dir.path, 'summary2.md'),
      GITHUB_OUTPUT: join(dir.path, 'output2'),
    });
    assert.equal(r.code, 1);
    assert.match(r.out, /::error::airlock: provisioning failed: missing or invalid provisioning key \[PROVISION_UNAUTHORIZED\]/);
    assert.ok(!r.out.includes('wrong-key'));
  });

  it('Tekton Task script: results written, NAME=VALUE env param parsed', async () => {
    const task = parse(await readFile(join(ROOT, 'tekton/airlock-debug-task.yaml'), 'utf8')) as { spec: { steps: Array<{ script: string }> } };
    const results = join(dir.path, 'tekton-results');
    await mkdir(results, { recursive: true });
    const script = join(dir.path, 'tekton.sh');
    await writeFile(script, task.spec.steps[0]!.script, { mode: 0o700 });
    const r = await runScript(['sh'], script, {
      AIRLOCK_PROVISION_KEY: KEY,
      AIRLOCK_API_URL: base,
      AIRLOCK_IN_IMAGE: 'ghcr.io/acme/app-ci:abc',
      AIRLOCK_IN_COMMIT: 'abc1234',
      AIRLOCK_IN_PR: '12',
      AIRLOCK_IN_ACTOR: '',
      AIRLOCK_IN_REPOSITORY: 'acme/app',
      AIRLOCK_IN_RUN: 'build-and-test-run-xyz',
      AIRLOCK_IN_ENV: 'GOPATH=/go\nOPTS=a=b\n\nAPI_KEY=hide-me\n',
      AIRLOCK_IN_TTL: '600',
      AIRLOCK_IN_MAX: '2',
      AIRLOCK_RESULTS: join(results, 'session-id'),
    });
    assert.equal(r.code, 0, r.out);
    const id = await readFile(join(results, 'session-id'), 'utf8');
    const command = await readFile(join(results, 'ssh-command'), 'utf8');
    assert.match(command, /^ssh \S+@gw\.example\.test$/, 'port 22: no -p');
    assert.ok(r.out.includes(command));
    assert.ok(!r.out.includes(KEY));
    const meta = await session(id);
    assert.deepEqual(meta.env_names, ['GOPATH', 'OPTS']);
    assert.deepEqual(meta.redacted_vars, ['API_KEY']);
    assert.equal(meta.pr_number, 12);
    assert.equal(meta.max_connections, 2);
    assert.equal(Number(await readFile(join(results, 'expires-at'), 'utf8')), meta.expires_at);
  });

  it('GitLab template script: prints the ssh command; copies only the listed variables', async () => {
    const doc = parse(await readFile(join(ROOT, 'gitlab/airlock-debug.gitlab-ci.yml'), 'utf8')) as Record<string, { script: string[]; variables: Record<string, string> }>;
    const template = doc['.airlock-debug']!;
    const r = await runScript(['sh', '-c'], template.script.join('\n'), {
      ...template.variables,
      AIRLOCK_API_URL: base,
      AIRLOCK_DEBUG_IMAGE: 'registry.example.com/acme/app/ci:abc',
      AIRLOCK_PROVISION_KEY: KEY,
      AIRLOCK_PASS_VARS: 'GOPATH CI_JOB_TOKEN',
      GOPATH: '/go',
      CI_JOB_TOKEN: 'job-token-value',
      CI_COMMIT_SHA: 'abcdef1234567',
      CI_MERGE_REQUEST_IID: '5',
      GITLAB_USER_LOGIN: 'jdoe',
      CI_PROJECT_PATH: 'acme/app',
      CI_PIPELINE_ID: '777',
    });
    assert.equal(r.code, 0, r.out);
    assert.ok(!r.out.includes(KEY));
    const id = /session ([0-9a-f]{32})/.exec(r.out)?.[1];
    assert.ok(id, r.out);
    assert.match(r.out, /^ {4}ssh \S+@gw\.example\.test$/m);
    const meta = await session(id);
    assert.equal(meta.actor, 'jdoe');
    assert.equal(meta.pr_number, 5);
    assert.deepEqual(meta.env_names, ['GOPATH']);
    assert.deepEqual(meta.redacted_vars, ['CI_JOB_TOKEN']);
    assert.match(r.out, /Stripped from its environment: CI_JOB_TOKEN/);

    const missing = await runScript(['sh', '-c'], template.script.join('\n'), { ...template.variables, AIRLOCK_API_URL: base, AIRLOCK_DEBUG_IMAGE: 'alpine:3' });
    assert.notEqual(missing.code, 0);
    assert.match(missing.out, /set AIRLOCK_PROVISION_KEY as a masked CI\/CD variable/);
  });
});
