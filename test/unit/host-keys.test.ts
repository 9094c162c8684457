import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadHostKeys } from '../../src/ssh/host-keys.js';
import { tempDir } from '../helpers/tmp.js';

describe('host keys', () => {
  it('generates an ed25519 key once, persists it 0600 and loads the same key next time', async () => {
    const dir = await tempDir();
    try {
      const path = join(dir.path, 'state', 'host_key');
      const [first] = await loadHostKeys([], path);
      assert.equal(first?.type, 'ssh-ed25519');
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      const [second] = await loadHostKeys([], path);
      assert.equal(second?.pem, first?.pem);
      assert.match(await readFile(`${path}.pub`, 'utf8'), /^ssh-ed25519 /);
    } finally {
      await dir.cleanup();
    }
  });

  it('generated keys always parse (ssh2 drops leading zero bytes of some keys)', async () => {
    const dir = await tempDir();
    try {
      for (let i = 0; i < 300; i++) {
        const [key] = await loadHostKeys([], join(dir.path, `k${i}`));
        assert.equal(key?.type, 'ssh-ed25519');
      }
    } finally {
      await dir.cleanup();
    }
  });

  it('rejects a configured file that is not a private key, naming it', async () => {
    const dir = await tempDir();
    try {
      const bad = join(dir.path, 'bad_key');
      await writeFile(bad, 'not a key');
      await assert.rejects(loadHostKeys([bad], join(dir.path, 'unused')), (err: Error & { code?: string }) => err.code === 'HOSTKEY_INVALID' && err.message.includes(bad));
      await assert.rejects(loadHostKeys([join(dir.path, 'missing')], join(dir.path, 'unused')), /cannot be read/);
    } finally {
      await dir.cleanup();
    }
  });
});
