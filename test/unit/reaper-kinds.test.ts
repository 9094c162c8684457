/**
 * Which reapers `airlock serve` runs (src/cli/reapers.ts, docs/operations.md "Reapers"): the
 * static backend's own (none for sshproxy), plus, with a config server, one for each container
 * backend the config file has a section for. Read from real files through loadConfigSource, so
 * "the file has a section" means what the operator wrote, not a section filled by defaults.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfigSource } from '../../src/config/index.js';
import { reaperKinds } from '../../src/cli/reapers.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'airlock-reapers-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const AUTH = 'auth: { publicKey: { method: authorizedKeys, authorizedKeys: keys } }\n';
const PROXY =
  'sshproxy: { server: bastion.internal, username: ci, privateKey: /etc/airlock/upstream_key, allowedHostKeyFingerprints: [SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8] }\n';
const CONFIG_SERVER = 'configserver: { url: "http://config.internal/config" }\n';
const DOCKER = 'docker: { connection: { host: "tcp://docker.internal:2376" } }\n';
const KUBERNETES = 'kubernetes: { pod: { metadata: { namespace: airlock-debug } } }\n';

let n = 0;
async function kinds(text: string): Promise<string[]> {
  const path = join(dir, `config-${n++}.yaml`);
  await writeFile(path, AUTH + text);
  const { config, sections } = await loadConfigSource(path);
  return reaperKinds(config, sections);
}

describe('reaperKinds', () => {
  const cases: Array<[string, string, string[]]> = [
    ['docker (the default backend)', '', ['docker']],
    ['podman: the Docker reaper on the Podman socket', 'backend: podman\n', ['docker']],
    ['kubernetes', 'backend: kubernetes\n', ['kubernetes']],
    ['sshproxy: no workloads, no reaper', `backend: sshproxy\n${PROXY}`, []],
    ['sshproxy with a docker section but no config server: nothing can use it', `backend: sshproxy\n${PROXY}${DOCKER}`, []],
    ['sshproxy with a config server but no container backend section', `backend: sshproxy\n${PROXY}${CONFIG_SERVER}`, []],
    ['sshproxy with a config server and a docker section', `backend: sshproxy\n${PROXY}${CONFIG_SERVER}${DOCKER}`, ['docker']],
    ['sshproxy with a config server and a kubernetes section', `backend: sshproxy\n${PROXY}${CONFIG_SERVER}${KUBERNETES}`, ['kubernetes']],
    ['docker with a config server and a kubernetes section: both', `${CONFIG_SERVER}${KUBERNETES}`, ['docker', 'kubernetes']],
    ['kubernetes with a config server and a docker section: both, the static one first', `backend: kubernetes\n${CONFIG_SERVER}${DOCKER}`, ['kubernetes', 'docker']],
  ];
  for (const [why, text, expected] of cases) {
    test(why, async () => {
      assert.deepEqual(await kinds(text), expected);
    });
  }

  test('loadConfigSource reports the sections the file writes, not those filled by defaults', async () => {
    const path = join(dir, 'sections.yaml');
    await writeFile(path, `${AUTH}backend: sshproxy\n${PROXY}`);
    const { config, sections } = await loadConfigSource(path);
    assert.deepEqual([...sections].sort(), ['auth', 'backend', 'sshproxy']);
    assert.ok(config.docker.connection.host, 'the docker section exists with its defaults all the same');
  });
});
