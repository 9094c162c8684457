/**
 * The binary KRL parser (OpenSSH PROTOCOL.krl) on KRLs written by the real `ssh-keygen -k`, with
 * every verdict cross-checked against `ssh-keygen -Q`; hand-made sections for what ssh-keygen
 * never writes (extensions, signatures, garbage).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { isKrl, parseKrl, sha1Hex, type Krl } from '../../src/auth/openssh-krl.js';
import { parseAuthorizedKeyLine } from '../../src/auth/public-key.js';
import { isRevoked, parseRevocationList } from '../../src/auth/revocation-list.js';
import { parseCertificate } from '../../src/auth/ssh-cert.js';
import { sshString } from '../../src/auth/ssh-wire.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

let dir: string;
let cleanup: () => Promise<void>;
let ca: TestKey;
let otherCa: TestKey;
let user: TestKey;
/** Plain keys revoked by key:, sha1:, sha256: and hash: lines. */
let byKey: TestKey;
let bySha1: TestKey;
let bySha256: TestKey;
let byHash: TestKey;

const blobOf = (publicLine: string): Buffer => {
  const parsed = parseAuthorizedKeyLine(publicLine);
  assert.ok(parsed, publicLine);
  return parsed.blob;
};

let certs = 0;
/** A certificate file for `key` signed by `signer` (one key, many certificates). */
async function certFile(key: TestKey, signer: TestKey, serial: bigint, keyId: string): Promise<string> {
  const pub = join(dir, `c${++certs}.pub`);
  await copyFile(`${key.path}.pub`, pub);
  await run('ssh-keygen', ['-q', '-s', signer.path, '-I', keyId, '-n', 'alice', '-z', serial.toString(), pub]);
  return pub.replace(/\.pub$/, '-cert.pub');
}

/** `ssh-keygen -Q` verdict per file: true = revoked. */
async function opensshVerdicts(krl: string, files: readonly string[]): Promise<Map<string, boolean>> {
  // Exit status 1 when any key is revoked; the per-file lines are the answer either way.
  const out = await run('ssh-keygen', ['-Q', '-f', krl, ...files]).then(
    (r) => r.stdout,
    (err: { stdout?: string }) => err.stdout ?? '',
  );
  const verdicts = new Map<string, boolean>();
  for (const line of out.split('\n')) {
    const m = /^(.*?) \(.*\): (REVOKED|ok)$/.exec(line) ?? /^(.*?): (REVOKED|ok)$/.exec(line);
    if (m) verdicts.set(m[1] ?? '', m[2] === 'REVOKED');
  }
  assert.equal(verdicts.size, files.length, out);
  return verdicts;
}

async function ourVerdict(list: Krl, file: string): Promise<boolean> {
  const blob = blobOf(await readFile(file, 'utf8'));
  return isRevoked(parseCertificate(blob), blob, list);
}

/** Section and certificate-subsection types in a KRL, walked independently of the parser. */
function sectionTypes(krl: Buffer): { sections: number[]; subsections: number[] } {
  let pos = 8 + 4 + 8 + 8 + 8;
  const str = () => {
    const len = krl.readUInt32BE(pos);
    const body = krl.subarray(pos + 4, pos + 4 + len);
    pos += 4 + len;
    return body;
  };
  str(); // reserved
  str(); // comment
  const sections: number[] = [];
  const subsections: number[] = [];
  while (pos < krl.length) {
    const type = krl[pos++] ?? 0;
    sections.push(type);
    const data = str();
    if (type !== 1) continue;
    let p = 0;
    const sub = () => {
      const len = data.readUInt32BE(p);
      p += 4 + len;
    };
    sub(); // ca key
    sub(); // reserved
    while (p < data.length) {
      subsections.push(data[p++] ?? 0);
      sub();
    }
  }
  return { sections, subsections };
}

/** A KRL header with no sections (PROTOCOL.krl §1), for hand-made sections. */
function header(version = 1): Buffer {
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(version);
  return Buffer.concat([Buffer.from('SSHKRL\n\0', 'latin1'), u32, Buffer.alloc(24), sshString(''), sshString('')]);
}
const section = (type: number, ...fields: Buffer[]) => Buffer.concat([Buffer.from([type]), ...fields]);
const extension = (name: string, critical: boolean) => sshString(Buffer.concat([sshString(name), Buffer.from([critical ? 1 : 0]), sshString('x')]));

before(async () => {
  ({ path: dir, cleanup } = await tempDir('airlock-krl-unit-'));
  ca = await makeKey(dir, 'ca');
  otherCa = await makeKey(dir, 'other-ca', 'rsa');
  user = await makeKey(dir, 'user');
  byKey = await makeKey(dir, 'by-key');
  bySha1 = await makeKey(dir, 'by-sha1', 'rsa');
  bySha256 = await makeKey(dir, 'by-sha256', 'ecdsa');
  byHash = await makeKey(dir, 'by-hash');
});

after(async () => {
  await cleanup?.();
});

describe('binary OpenSSH KRL', () => {
  let krlPath: string;
  let krl: Krl;

  before(async () => {
    krlPath = join(dir, 'krl');
    const spec = join(dir, 'spec');
    // Sparse serials, a run and a wide range: ssh-keygen picks list, bitmap and range encodings.
    await writeFile(
      spec,
      [
        'serial: 1-5',
        'serial: 7',
        'serial: 9',
        'serial: 11',
        'serial: 100-200',
        'serial: 1000000',
        'serial: 9000000000',
        'id: alice@laptop',
        `key: ${byKey.publicLine}`,
        `sha1: ${bySha1.publicLine}`,
        `sha256: ${bySha256.publicLine}`,
        `hash: ${byHash.fingerprint}`,
        '',
      ].join('\n'),
    );
    await run('ssh-keygen', ['-k', '-f', krlPath, '-s', `${ca.path}.pub`, spec]);
    krl = parseKrl(await readFile(krlPath));
  });

  test('ssh-keygen -k writes every section and subsection type the parser reads', async () => {
    const { sections, subsections } = sectionTypes(await readFile(krlPath));
    assert.deepEqual([...new Set(sections)].sort(), [1, 2, 3, 5]);
    assert.deepEqual([...new Set(subsections)].sort(), [0x20, 0x21, 0x22, 0x23]);
  });

  test('parses the header and the CA-scoped certificate section', () => {
    assert.equal(krl.krlVersion, 0n);
    assert.ok(krl.generatedAt > 1_700_000_000n);
    assert.equal(krl.signatures, 0);
    assert.equal(krl.certificates.length, 1);
    const certs = krl.certificates[0];
    assert.ok(certs, 'one certificate section');
    assert.ok(certs.ca?.equals(blobOf(ca.publicLine)), 'scoped to the CA given with -s');
    assert.deepEqual([...certs.keyIds], ['alice@laptop']);
    const revoked = (s: bigint) => certs.serials.some(([lo, hi]) => s >= lo && s <= hi);
    for (const s of [1n, 3n, 5n, 7n, 9n, 11n, 100n, 150n, 200n, 1000000n, 9000000000n]) assert.ok(revoked(s), `serial ${s}`);
    for (const s of [6n, 8n, 10n, 12n, 99n, 201n, 999999n, 1000001n]) assert.ok(!revoked(s), `serial ${s}`);
    assert.ok(krl.keys.has(blobOf(byKey.publicLine).toString('base64')));
    assert.ok(krl.sha1.has(sha1Hex(blobOf(bySha1.publicLine))));
    assert.ok(krl.fingerprints.has(bySha256.fingerprint));
    assert.ok(krl.fingerprints.has(byHash.fingerprint));
    assert.equal(isKrl(Buffer.from('serial: 1\n')), false);
    // parseRevocationList hands KRLs to the binary parser.
    assert.equal((parseRevocationList(readFileSync(krlPath)) as Krl).krlVersion, 0n);
  });

  test('every verdict matches ssh-keygen -Q, including after ssh-keygen -k -u adds another CA', async () => {
    const files: string[] = [];
    const byOtherCa = new Map<bigint, string>();
    for (const serial of [0n, 1n, 5n, 6n, 7n, 8n, 11n, 12n, 99n, 100n, 200n, 201n, 1000000n, 9000000000n, 50n]) {
      files.push(await certFile(user, ca, serial, `user-${serial}`));
      const other = await certFile(user, otherCa, serial, `other-${serial}`);
      byOtherCa.set(serial, other);
      files.push(other);
    }
    files.push(await certFile(user, ca, 42n, 'alice@laptop'));
    files.push(await certFile(user, otherCa, 42n, 'alice@laptop'));
    for (const key of [byKey, bySha1, bySha256, byHash]) files.push(await certFile(key, otherCa, 42n, 'by-key'));

    const compare = async (list: Krl) => {
      const verdicts = await opensshVerdicts(krlPath, files);
      let revokedCount = 0;
      for (const file of files) {
        const expected = verdicts.get(file);
        assert.equal(await ourVerdict(list, file), expected, `${file} (${(await readFile(file, 'utf8')).slice(0, 40)})`);
        if (expected) revokedCount++;
      }
      // The fixture exercises both outcomes.
      assert.ok(revokedCount > 5 && revokedCount < files.length - 5, `${revokedCount} of ${files.length} revoked`);
    };
    await compare(krl);

    // Update in place: serial 50 of the other CA, then key id "other-6" for any CA (-s none) with
    // KRL version 2 (ssh-keygen only sets the version when told, -z).
    const spec2 = join(dir, 'spec2');
    await writeFile(spec2, 'serial: 50\n');
    await run('ssh-keygen', ['-k', '-u', '-f', krlPath, '-s', `${otherCa.path}.pub`, spec2]);
    await writeFile(spec2, 'id: other-6\n');
    await run('ssh-keygen', ['-k', '-u', '-z', '2', '-f', krlPath, '-s', 'none', spec2]);
    const updated = parseKrl(await readFile(krlPath));
    assert.equal(updated.krlVersion, 2n);
    assert.ok(updated.certificates.some((c) => c.ca === null && c.keyIds.has('other-6')));
    assert.equal(await ourVerdict(krl, byOtherCa.get(50n) ?? ''), false);
    assert.equal(await ourVerdict(updated, byOtherCa.get(50n) ?? ''), true, 'serial 50 of the other CA, after the update');
    assert.equal(await ourVerdict(updated, byOtherCa.get(6n) ?? ''), true, 'key id other-6, any CA');
    await compare(updated);
  });
});

describe('binary KRL: what ssh-keygen never writes', () => {
  test('a header with no sections revokes nothing', () => {
    const empty = parseKrl(header());
    assert.deepEqual(empty.certificates, []);
    assert.equal(empty.keys.size + empty.fingerprints.size + empty.sha1.size, 0);
  });

  test('non-critical extensions are skipped; critical ones, unknown sections and bad versions are errors', () => {
    assert.equal(parseKrl(Buffer.concat([header(), section(255, extension('bloom@example.com', false))])).certificates.length, 0);
    assert.throws(() => parseKrl(Buffer.concat([header(), section(255, extension('must@example.com', true))])), /unsupported critical KRL extension must@example.com/);
    const certSection = (sub: Buffer) => section(1, sshString(Buffer.concat([sshString(''), sshString(''), sub])));
    assert.equal(parseKrl(Buffer.concat([header(), certSection(section(0x39, extension('x@example.com', false)))])).certificates.length, 1);
    assert.throws(() => parseKrl(Buffer.concat([header(), certSection(section(0x39, extension('x@example.com', true)))])), /critical certificate section extension/);
    assert.throws(() => parseKrl(Buffer.concat([header(), certSection(section(0x24, sshString('')))])), /unknown certificate subsection type 0x24/);
    assert.throws(() => parseKrl(Buffer.concat([header(), section(6, sshString(''))])), /unknown KRL section type 6/);
    assert.throws(() => parseKrl(header(2)), /unsupported KRL format version 2/);
    const range = Buffer.alloc(16);
    range.writeBigUInt64BE(9n, 0);
    range.writeBigUInt64BE(3n, 8);
    assert.throws(() => parseKrl(Buffer.concat([header(), certSection(section(0x21, sshString(range)))])), /inverted/);
    assert.throws(() => parseKrl(Buffer.concat([header(), section(3, sshString(sshString(Buffer.alloc(19))))])), /SHA1 hash of 19 bytes/);
    const zero = Buffer.alloc(8);
    assert.throws(() => parseKrl(Buffer.concat([header(), certSection(section(0x20, sshString(zero)))])), /revokes serial 0/);
    // Bitmap at offset 0 with bit 0 set (mpint 1) is serial 0 too.
    assert.throws(() => parseKrl(Buffer.concat([header(), certSection(section(0x22, sshString(Buffer.concat([zero, sshString(Buffer.from([1]))]))))])), /revokes serial 0/);
    // A bitmap at offset 10 with bits 0, 1 and 3 set (0b1011) revokes 10, 11 and 13.
    const offset = Buffer.alloc(8);
    offset.writeBigUInt64BE(10n);
    const bitmap = parseKrl(Buffer.concat([header(), certSection(section(0x22, sshString(Buffer.concat([offset, sshString(Buffer.from([0b1011]))]))))]));
    assert.deepEqual(bitmap.certificates[0]?.serials, [[10n, 11n], [13n, 13n]]);
  });

  test('signature sections are skipped (not verified) but must come last', () => {
    const signature = section(4, sshString('key'), sshString('sig'));
    const keyId = section(1, sshString(Buffer.concat([sshString(''), sshString(''), section(0x23, sshString(sshString('gone')))])));
    const signed = parseKrl(Buffer.concat([header(), keyId, signature, signature]));
    assert.equal(signed.signatures, 2);
    assert.ok(signed.certificates[0]?.keyIds.has('gone'));
    assert.throws(() => parseKrl(Buffer.concat([header(), signature, keyId])), /after a signature section/);
  });

  test('truncation anywhere is an error, never a shorter list', async () => {
    const spec = join(dir, 'spec-trunc');
    await writeFile(spec, `serial: 1-5\nid: x\nkey: ${byKey.publicLine}\nsha256: ${bySha256.publicLine}\n`);
    const path = join(dir, 'krl-trunc');
    await run('ssh-keygen', ['-k', '-f', path, '-s', `${ca.path}.pub`, spec]);
    const full = await readFile(path);
    // Cutting at a section boundary leaves a valid (shorter) KRL, as in the format itself; every
    // other cut must throw.
    const boundaries = new Set<number>();
    let pos = 8 + 4 + 24;
    pos += 4 + full.readUInt32BE(pos);
    pos += 4 + full.readUInt32BE(pos);
    boundaries.add(pos);
    while (pos < full.length) {
      pos += 1;
      pos += 4 + full.readUInt32BE(pos);
      boundaries.add(pos);
    }
    for (let cut = 8; cut < full.length; cut++) {
      if (boundaries.has(cut)) continue;
      assert.throws(() => parseKrl(full.subarray(0, cut)), Error, `cut at ${cut}`);
    }
  });
});
