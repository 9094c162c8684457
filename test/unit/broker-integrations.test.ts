/** The copy-paste CI templates (integrations/): parsed, and their structure checked. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../../integrations');
type Doc = Record<string, unknown>;
const load = async (path: string): Promise<Doc> => {
  const docs = parseAllDocuments(await readFile(resolve(ROOT, path), 'utf8'));
  assert.equal(docs.length, 1, `${path}: one YAML document`);
  assert.deepEqual(docs[0]!.errors, [], `${path}: valid YAML`);
  return docs[0]!.toJS() as Doc;
};
const obj = (v: unknown): Doc => {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v));
  return v as Doc;
};
const list = (v: unknown): Doc[] => {
  assert.ok(Array.isArray(v));
  return v as Doc[];
};

describe('GitHub composite action', () => {
  it('is a composite action with the documented inputs', async () => {
    const action = await load('github-action/action.yml');
    const inputs = obj(action.inputs);
    for (const name of ['api-url', 'provision-key', 'image']) assert.equal(obj(inputs[name]).required, true, name);
    for (const name of ['ttl-seconds', 'max-connections', 'pass-env', 'commit-sha', 'pr-number', 'actor', 'repository', 'pipeline-run']) {
      assert.equal(obj(inputs[name]).required, false, name);
      assert.ok('default' in obj(inputs[name]), `${name} has a default`);
    }
    assert.equal(obj(inputs['ttl-seconds']).default, '1800');
    const runs = obj(action.runs);
    assert.equal(runs.using, 'composite');
    const steps = list(runs.steps);
    assert.ok(steps.length >= 1);
    for (const step of steps) {
      assert.equal(step.shell, 'bash');
      const run = String(step.run);
      // Inputs only through env: an expression inside the script text is a script-injection hole.
      assert.ok(!run.includes('${{'), 'no ${{ }} expression in the script');
      assert.ok(!/echo[^\n]*AIRLOCK_PROVISION_KEY/.test(run), 'the key is never echoed');
      assert.match(run, /::add-mask::\$token/);
      assert.match(run, /GITHUB_STEP_SUMMARY/);
    }
    assert.equal(obj(obj(steps[0]!.env)).AIRLOCK_PROVISION_KEY, '${{ inputs.provision-key }}');
  });

  it('the example workflow calls it only on failure, with the key from secrets', async () => {
    const wf = await load('github-action/example-workflow.yml');
    const job = obj(obj(wf.jobs).test);
    const steps = list(job.steps);
    const airlock = steps.find((s) => typeof s.uses === 'string' && s.uses.includes('integrations/github-action'));
    assert.ok(airlock, 'a step uses the action');
    assert.equal(airlock.if, 'failure()');
    assert.equal(steps.at(-1), airlock, 'it is the last step');
    const w = obj(airlock.with);
    assert.match(String(w['provision-key']), /^\$\{\{ secrets\.[A-Z_]+ \}\}$/);
    assert.ok(w['api-url'] && w.image);
  });
});

describe('Tekton Task and Pipeline', () => {
  it('the Task reads the key from a Secret and params only through env', async () => {
    const task = await load('tekton/airlock-debug-task.yaml');
    assert.equal(task.apiVersion, 'tekton.dev/v1');
    assert.equal(task.kind, 'Task');
    const spec = obj(task.spec);
    const params = list(spec.params).map((p) => String(p.name));
    for (const p of ['api-url', 'image', 'commit-sha', 'pr-number', 'actor', 'repository', 'pipeline-run', 'env', 'ttl-seconds', 'max-connections', 'provision-key-secret']) {
      assert.ok(params.includes(p), p);
    }
    assert.deepEqual(list(spec.results).map((r) => r.name).sort(), ['expires-at', 'session-id', 'ssh-command']);
    const [step] = list(spec.steps);
    const env = list(step!.env);
    const key = env.find((e) => e.name === 'AIRLOCK_PROVISION_KEY');
    assert.deepEqual(obj(key?.valueFrom).secretKeyRef, { name: '$(params.provision-key-secret)', key: 'key' });
    const script = String(step!.script);
    assert.match(script, /^#!\/bin\/sh\n/);
    assert.ok(!script.includes('$(params.'), 'no param spliced into the script');
    assert.ok(!/echo[^\n]*AIRLOCK_PROVISION_KEY/.test(script));
  });

  it('the Pipeline wires the Task into finally, only when a task failed, with every required param', async () => {
    const task = await load('tekton/airlock-debug-task.yaml');
    const pipeline = await load('tekton/pipeline-example.yaml');
    assert.equal(pipeline.kind, 'Pipeline');
    const spec = obj(pipeline.spec);
    const fin = list(spec.finally);
    const airlock = fin.find((t) => obj(t.taskRef).name === obj(task.metadata).name);
    assert.ok(airlock, 'finally runs the airlock Task');
    assert.deepEqual(list(airlock.when), [{ input: '$(tasks.status)', operator: 'in', values: ['Failed'] }]);
    const given = list(airlock.params).map((p) => String(p.name));
    const declared = list(obj(task.spec).params);
    for (const p of given) assert.ok(declared.some((d) => d.name === p), `param ${p} is declared by the Task`);
    for (const d of declared.filter((x) => !('default' in x))) assert.ok(given.includes(String(d.name)), `required param ${String(d.name)} is given`);
    assert.ok(!list(spec.tasks).some((t) => obj(t.taskRef).name === obj(task.metadata).name), 'not a regular task');
  });
});

describe('GitLab CI template', () => {
  it('runs in .post on failure, from a hidden template job', async () => {
    const doc = parse(await readFile(resolve(ROOT, 'gitlab/airlock-debug.gitlab-ci.yml'), 'utf8')) as Doc;
    const template = obj(doc['.airlock-debug']);
    assert.equal(template.stage, '.post');
    assert.equal(template.when, 'on_failure');
    assert.equal(obj(doc['airlock-debug']).extends, '.airlock-debug');
    const script = list(template.script).join('\n');
    assert.match(script, /AIRLOCK_PROVISION_KEY:\?/);
    assert.ok(!/echo[^\n]*AIRLOCK_PROVISION_KEY/.test(script), 'the key is never echoed');
    assert.match(script, /CI_MERGE_REQUEST_IID/);
  });
});
