import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import ssh2 from 'ssh2';
import { createAuthorizedKeysProvider, loadAuthorizedKeys } from '../../src/auth/authorized-keys.js';
import type { AuthRequest, PublicKeyCredential } from '../../src/auth/provider.js';
import { describePublicKey, parseAuthorizedKeyLine } from '../../src/auth/public-key.js';
import { AirlockError } from '../../src/core/errors.js';

let dir: string;
let n = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'airlock-ak-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function newFile(content: string): string {
  const file = join(dir, `authorized_keys_${++n}`);
  writeFileSync(file, content);
  return file;
}

interface Key {
  readonly line: string;
  readonly credential: PublicKeyCredential;
}

function newKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): Key {
  const pair = type === 'ecdsa' ? ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }) : ssh2.utils.generateKeyPairSync('ed25519');
  const parsed = parseAuthorizedKeyLine(pair.public);
  assert.ok(parsed);
  const credential: PublicKeyCredential = {
    method: 'publickey',
    algorithm: parsed.algorithm,
    blob: parsed.blob,
    ...describePublicKey(parsed.algorithm, parsed.blob),
  };
  return { line: credential.authorizedKey, credential };
}

function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const request = (username: string): AuthRequest => ({
  connectionId: 'ab12',
  username,
  remoteAddress: '198.51.100.1:40000',
  clientVersion: 'SSH-2.0-OpenSSH_9.6',
  metadata: {},
  environment: {},
  files: {},
});
const never = new AbortController().signal;

describe('authorized keys provider', () => {
  test('accepts a listed key for its user; rejects an unlisted key and another user\'s key', async () => {
    const alice = newKey();
    const bob = newKey('ecdsa');
    const stranger = newKey();
    const file = newFile(`# team keys\n\nalice ${alice.line} alice@laptop\n   \nbob ${bob.line}\n`);
    const log = captureLogger();
    const provider = createAuthorizedKeysProvider({ file, logger: log.logger });

    const ok = await provider.authenticate(alice.credential, request('alice'), never);
    assert.equal(ok.outcome, 'accept');
    assert.equal(ok.authenticatedUsername, 'alice');
    assert.equal((await provider.authenticate(bob.credential, request('bob'), never)).outcome, 'accept');

    const unlisted = await provider.authenticate(stranger.credential, request('alice'), never);
    assert.equal(unlisted.outcome, 'reject');
    assert.equal(unlisted.reason, 'AUTH_REJECTED');
    assert.equal((await provider.authenticate(bob.credential, request('alice'), never)).outcome, 'reject');
    assert.equal((await provider.authenticate(alice.credential, request('Alice'), never)).outcome, 'reject');

    const lines = log.records().filter((r) => (r.msg === 'auth provider answer' || r.msg === 'auth provider error'));
    assert.equal(lines.length, 5);
    assert.equal(lines[0]?.fingerprint, alice.credential.fingerprint);
    assert.equal(lines[2]?.outcome, 'reject');
  });

  test('supports only publickey', async () => {
    const file = newFile('');
    const provider = createAuthorizedKeysProvider({ file, logger: captureLogger().logger });
    assert.equal(provider.supports('publickey'), true);
    assert.equal(provider.supports('password'), false);
    assert.equal(provider.supports('keyboard-interactive'), false);
    const decision = await provider.authenticate({ method: 'password', password: 'x' }, request('alice'), never);
    assert.equal(decision.outcome, 'reject');
  });

  test('re-reads the file when it changes: an added key works and a removed key stops working without restart', async () => {
    const first = newKey();
    const second = newKey();
    const file = newFile(`alice ${first.line}\n`);
    const provider = createAuthorizedKeysProvider({ file, logger: captureLogger().logger });
    assert.equal((await provider.authenticate(second.credential, request('alice'), never)).outcome, 'reject');

    await appendFile(file, `alice ${second.line}\n`);
    assert.equal((await provider.authenticate(second.credential, request('alice'), never)).outcome, 'accept');

    // Replace the file atomically (how config management writes it): the first key is revoked.
    const tmp = `${file}.tmp`;
    await writeFile(tmp, `alice ${second.line}\n`);
    await rename(tmp, file);
    assert.equal((await provider.authenticate(first.credential, request('alice'), never)).outcome, 'reject');
    assert.equal((await provider.authenticate(second.credential, request('alice'), never)).outcome, 'accept');
  });

  test('a file broken after start fails closed (error) until fixed', async () => {
    const key = newKey();
    const file = newFile(`alice ${key.line}\n`);
    const log = captureLogger();
    const provider = createAuthorizedKeysProvider({ file, logger: log.logger });
    assert.equal((await provider.authenticate(key.credential, request('alice'), never)).outcome, 'accept');

    await writeFile(file, `alice ${key.line}\nthis line is broken\n`);
    const broken = await provider.authenticate(key.credential, request('alice'), never);
    assert.equal(broken.outcome, 'error');
    assert.equal(broken.reason, 'CONFIG_INVALID');
    const rejected = log.records().find((r) => r.msg === 'authorized keys file rejected');
    assert.match(String(rejected?.error), /line 2/);

    await writeFile(file, `alice ${key.line}\n# fixed\n`);
    assert.equal((await provider.authenticate(key.credential, request('alice'), never)).outcome, 'accept');

    rmSync(file);
    const gone = await provider.authenticate(key.credential, request('alice'), never);
    assert.equal(gone.outcome, 'error');
    assert.equal(gone.reason, 'CONFIG_FILE_UNREADABLE');
  });

  test('concurrent logins during a change all see the new file', async () => {
    const first = newKey();
    const second = newKey();
    const file = newFile(`alice ${first.line}\n`);
    const provider = createAuthorizedKeysProvider({ file, logger: captureLogger().logger });
    await appendFile(file, `bob ${second.line}\n`);
    const decisions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => provider.authenticate(second.credential, request(i % 2 === 0 ? 'bob' : 'alice'), never)),
    );
    assert.deepEqual(
      decisions.map((d) => d.outcome),
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 'accept' : 'reject')),
    );
  });
});

describe('loading the file', () => {
  test('malformed lines are a CONFIG_INVALID error naming every bad line', () => {
    const key = newKey();
    const file = newFile(
      [`alice ${key.line}`, '# comment', 'bob ssh-ed25519', `carol ssh-rsa ${key.credential.blob.toString('base64')}`, `dave ${key.line} ok`, 'just-one-token'].join('\n'),
    );
    for (const load of [() => loadAuthorizedKeys(file), () => createAuthorizedKeysProvider({ file, logger: captureLogger().logger })]) {
      assert.throws(load, (err: unknown) => {
        assert.ok(err instanceof AirlockError);
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.match(err.message, /line 3:/);
        assert.match(err.message, /line 4:/);
        assert.match(err.message, /line 6:/);
        assert.doesNotMatch(err.message, /line [125]:/);
        assert.ok(err.message.includes(file));
        return true;
      });
    }
  });

  test('loadAuthorizedKeys returns the entries with line numbers and fingerprints', () => {
    const a = newKey();
    const b = newKey('ecdsa');
    const file = newFile(`\n# x\nalice ${a.line} work laptop\r\nbob\t${b.line}\n`);
    const entries = loadAuthorizedKeys(file);
    assert.deepEqual(
      entries.map((e) => [e.user, e.algorithm, e.line, e.comment, e.fingerprint]),
      [
        ['alice', 'ssh-ed25519', 3, 'work laptop', a.credential.fingerprint],
        ['bob', 'ecdsa-sha2-nistp256', 4, '', b.credential.fingerprint],
      ],
    );
    assert.ok(entries[0]?.blob.equals(a.credential.blob));
  });

  test('a missing file is CONFIG_FILE_UNREADABLE', () => {
    assert.throws(
      () => loadAuthorizedKeys(join(dir, 'does-not-exist')),
      (err: unknown) => err instanceof AirlockError && err.code === 'CONFIG_FILE_UNREADABLE',
    );
  });
});
