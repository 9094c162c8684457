/** Object keys, tags and metadata of stored recordings; asciicast encoding details. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderKeyTemplate, safeSegment } from '../../src/audit/key-template.js';
import { objectMetadata, objectTags } from '../../src/audit/tags.js';
import type { Manifest } from '../../src/audit/manifest.js';
import { AsciicastWriter, parseCast } from '../../src/audit/format/asciicast.js';
import { BufferSink } from '../../src/audit/file-sink.js';

function manifest(metadata: Record<string, string>, username = 'alice'): Manifest {
  return {
    airlockRecording: 1,
    connectionId: 'abc123',
    remoteAddress: '192.0.2.7:51234',
    startedAt: '2026-11-05T10:20:30.123456789Z',
    endedAt: '2026-11-05T10:25:00.000000000Z',
    identity: { username, loginUsername: username, clientVersion: 'SSH-2.0-x', metadata },
    complete: true,
    dropped: { messages: 0, bytes: 0 },
    channels: [],
    files: [],
    digest: 'f'.repeat(64),
  };
}

describe('key template', () => {
  it('fills connection, user, date and metadata placeholders', () => {
    const m = manifest({ commit_sha: 'a1b2c3', session_id: 's-9' });
    assert.equal(renderKeyTemplate('{{metadata.commit_sha}}/{{metadata.session_id}}/{{connectionId}}/', m), 'a1b2c3/s-9/abc123/');
    assert.equal(renderKeyTemplate('{{ date }}/{{username}}/{{connectionId}}', m), '2026-11-05/alice/abc123/');
  });

  it('missing values become "unknown"; values cannot escape their segment', () => {
    const m = manifest({ repo: '../../etc/passwd', branch: 'feature/x y' }, 'evil/../user');
    assert.equal(renderKeyTemplate('{{metadata.commit_sha}}/{{connectionId}}/', m), 'unknown/abc123/');
    assert.equal(renderKeyTemplate('{{metadata.repo}}/{{metadata.branch}}/{{username}}/{{connectionId}}/', m), '____etc_passwd/feature_x_y/evil___user/abc123/');
    assert.equal(safeSegment('..'), '_');
    assert.equal(safeSegment(''), 'unknown');
  });
});

describe('object tags and metadata', () => {
  it('CI metadata first, at most 10 tags, S3-safe characters, identity only when enabled', () => {
    const md: Record<string, string> = { commit_sha: 'a1b2', pr_number: '42', actor: 'octocat', session_id: 's1', zeta: 'z', 'weird key!': 'v#1' };
    for (let i = 0; i < 10; i++) md[`extra${i}`] = String(i);
    const tags = objectTags(manifest(md), { ip: false, username: false });
    assert.equal(tags.length, 10);
    assert.deepEqual(
      tags.slice(0, 6).map((t) => t.Key),
      ['airlock-connection-id', 'airlock-complete', 'session_id', 'commit_sha', 'pr_number', 'actor'],
    );
    assert.ok(!tags.some((t) => t.Key === 'airlock-username' || t.Key === 'airlock-remote-ip'));
    const withIdentity = objectTags(manifest({ commit_sha: 'a1b2' }), { ip: true, username: true });
    assert.deepEqual(withIdentity.find((t) => t.Key === 'airlock-remote-ip')?.Value, '192.0.2.7');
    assert.deepEqual(withIdentity.find((t) => t.Key === 'airlock-username')?.Value, 'alice');
    const odd = objectTags(manifest({ 'weird key!': 'v#1' }), { ip: false, username: false });
    assert.deepEqual(odd[2], { Key: 'weird key_', Value: 'v_1' });
  });

  it('user metadata carries the digest and stays within 2 KB of printable ASCII', () => {
    const md: Record<string, string> = { commit_sha: 'a1b2', note: 'héllo' };
    for (let i = 0; i < 50; i++) md[`k${i}`] = 'x'.repeat(60);
    const meta = objectMetadata(manifest(md), { ip: false, username: false });
    assert.equal(meta['airlock-digest'], 'f'.repeat(64));
    assert.equal(meta['commit_sha'.replace('_', '-')], 'a1b2');
    assert.equal(objectMetadata(manifest({ note: 'héllo' }), { ip: false, username: false })['note'], 'h_llo');
    const size = Object.entries(meta).reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.ok(size <= 2048, `metadata is ${size} bytes`);
  });
});

describe('asciicast writer', () => {
  it('header, relative times, UTF-8 split across chunks, resize events; plays in asciinema 2.2 shape', () => {
    const sink = new BufferSink();
    const start = 1_000_000_000_000_000_000n;
    const w = new AsciicastWriter(sink, start, { width: 100, height: 30, timestamp: 1_000_000_000, env: { TERM: 'xterm' } });
    const euro = Buffer.from('€'); // 3 bytes
    w.output(start + 1_500_000n, 1, Buffer.concat([Buffer.from('price: '), euro.subarray(0, 1)]));
    w.output(start + 2_000_000_000n, 1, euro.subarray(1));
    w.resize(start + 2_500_000_000n, 120, 40);
    w.input(start + 3_000_000_000n, Buffer.from('q'));
    w.end(start + 3_000_000_000n);
    const text = sink.toBuffer().toString('utf8');
    const cast = parseCast(text);
    assert.deepEqual(cast.header, { version: 2, width: 100, height: 30, timestamp: 1_000_000_000, env: { TERM: 'xterm' } });
    assert.deepEqual(cast.events, [
      [0.0015, 'o', 'price: '],
      [2, 'o', '€'],
      [2.5, 'r', '120x40'],
      [3, 'i', 'q'],
    ]);
    assert.ok(text.endsWith('\n'));
    assert.equal(w.chain.count, 5);
  });
});
