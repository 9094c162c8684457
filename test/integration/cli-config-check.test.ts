/** `airlock config check <file>`: exit 0 and "OK" for a valid file; non-zero and named keys for a bad one. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/tmp.js';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

function airlock(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8' });
}

describe('airlock config check', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    dir = await tempDir();
  });
  after(async () => dir.cleanup());

  it('accepts a valid ContainerSSH-style file', async () => {
    const file = join(dir.path, 'good.yaml');
    await writeFile(
      file,
      [
        'ssh:',
        '  listen: 0.0.0.0:2222',
        'auth:',
        '  password:',
        '    method: webhook',
        '    webhook:',
        '      url: http://127.0.0.1:8080',
        '      timeout: 2s',
        'docker:',
        '  connection:',
        '    host: unix:///var/run/docker.sock',
        '  execution:',
        '    mode: session',
        '    imagePullPolicy: Never',
        '    container:',
        '      image: airlock-demo:latest',
        '    host:',
        '      memory: 512m',
        '      pidsLimit: 128',
        '',
      ].join('\n'),
    );
    const r = airlock('config', 'check', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /OK/);
  });

  it('rejects a bad file, naming every key and the fix', async () => {
    const file = join(dir.path, 'bad.yaml');
    await writeFile(file, ['auth:', '  password:', '    method: webhook', 'docker:', '  execution:', '    mode: conection', 'ssh:', '  lsiten: 1', ''].join('\n'));
    const r = airlock('config', 'check', file);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /CONFIG_INVALID/);
    assert.match(r.stderr, /auth\.password\.webhook\.url/);
    assert.match(r.stderr, /docker\.execution\.mode/);
    assert.match(r.stderr, /ssh\.lsiten/);
  });

  it('reports a missing file clearly', () => {
    const r = airlock('config', 'check', join(dir.path, 'missing.yaml'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /missing\.yaml/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
});
