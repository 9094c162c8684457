import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { filesMapSchema, mergeMaps, valueMapSchema, withoutSensitive } from '../../src/auth/metadata-merge.js';

const v = (value: string, sensitive = false) => ({ value, sensitive });

describe('mergeMaps (ContainerSSH 0.6 key-by-key)', () => {
  test('new keys are added and same keys overwritten', () => {
    const merged = mergeMaps({ A: v('1'), B: v('2') }, { B: v('two', true), C: v('3') });
    assert.deepEqual(merged, { A: v('1'), B: v('two', true), C: v('3') });
  });

  test('an absent later map keeps the earlier content (0.5 wiped it)', () => {
    assert.deepEqual(mergeMaps({ A: v('1') }, undefined), { A: v('1') });
  });

  test('an empty later map keeps the earlier content too', () => {
    assert.deepEqual(mergeMaps({ A: v('1') }, {}), { A: v('1') });
  });

  test('absent earlier map: the later one is the result', () => {
    assert.deepEqual(mergeMaps(undefined, { A: v('1') }), { A: v('1') });
    assert.deepEqual(mergeMaps(undefined, undefined), {});
  });

  test('inputs are not mutated', () => {
    const earlier = { A: v('1') };
    mergeMaps(earlier, { A: v('2') });
    assert.deepEqual(earlier, { A: v('1') });
  });

  test('merging the merged result again changes nothing (idempotent on top of earlier)', () => {
    const earlier = { A: v('1'), B: v('2') };
    const merged = mergeMaps(earlier, { B: v('3') });
    assert.deepEqual(mergeMaps(earlier, merged), merged);
  });

  test('a "__proto__" key stays plain data', () => {
    const later = Object.fromEntries([['__proto__', v('x')]]);
    const merged = mergeMaps({}, later);
    assert.equal(Object.getPrototypeOf(merged), Object.prototype);
    assert.deepEqual(Object.keys(merged), ['__proto__']);
  });
});

describe('withoutSensitive', () => {
  test('drops sensitive entries only', () => {
    assert.deepEqual(withoutSensitive({ A: v('1'), S: v('secret', true) }), { A: v('1') });
    assert.deepEqual(withoutSensitive(undefined), {});
  });
});

describe('valueMapSchema', () => {
  test('parses the wire form; sensitive defaults to false; extra entry fields are dropped', () => {
    const parsed = valueMapSchema.parse({ K: { value: 'a' }, S: { value: 'b', sensitive: true, note: 'x' } });
    assert.deepEqual(parsed, { K: v('a'), S: v('b', true) });
  });

  test('null and absent read as absent (Go sends null for a nil map)', () => {
    assert.equal(valueMapSchema.parse(null), undefined);
    assert.equal(valueMapSchema.parse(undefined), undefined);
  });

  test('refuses values that are not strings and entries without value', () => {
    assert.equal(valueMapSchema.safeParse({ K: { value: 1 } }).success, false);
    assert.equal(valueMapSchema.safeParse({ K: { sensitive: true } }).success, false);
    assert.equal(valueMapSchema.safeParse({ K: 'plain string' }).success, false);
    assert.equal(valueMapSchema.safeParse({ K: { value: 'a', sensitive: 'yes' } }).success, false);
    assert.equal(valueMapSchema.safeParse([]).success, false);
  });
});

describe('filesMapSchema', () => {
  test('keeps base64 content as given', () => {
    const b64 = Buffer.from('hello\n').toString('base64');
    assert.deepEqual(filesMapSchema.parse({ '/etc/motd': { value: b64 } }), { '/etc/motd': v(b64) });
  });

  test('refuses content that is not base64 and empty paths', () => {
    assert.equal(filesMapSchema.safeParse({ '/x': { value: 'not base64!' } }).success, false);
    assert.equal(filesMapSchema.safeParse({ '/x': { value: 'abc' } }).success, false);
    assert.equal(filesMapSchema.safeParse({ '': { value: 'aGk=' } }).success, false);
  });
});
