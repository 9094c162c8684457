import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { embeddedDefaults, filterEnv, matchesEnvPattern, type EnvPolicy } from '../../src/config/index.js';

const policy = (mode: EnvPolicy['mode'], allow: string[], deny: string[] = []): EnvPolicy => ({ mode, allow, deny });

describe('matchesEnvPattern', () => {
  const table: Array<[string, string, boolean]> = [
    ['LANG', 'LANG', true],
    ['LANGUAGE', 'LANG', false],
    ['LC_ALL', 'LC_*', true],
    ['LC_', 'LC_*', true],
    ['XLC_ALL', 'LC_*', false],
    ['lc_all', 'LC_*', false],
    ['ANYTHING', '*', true],
  ];
  for (const [name, pattern, expected] of table) {
    test(`${name} ${expected ? 'matches' : 'does not match'} ${pattern}`, () => {
      assert.equal(matchesEnvPattern(name, pattern), expected);
    });
  }
});

describe('filterEnv', () => {
  const table: Array<[string, EnvPolicy, boolean, string]> = [
    ['TERM', policy('filter', ['TERM']), true, 'filter: allow-listed'],
    ['LC_TIME', policy('filter', ['LC_*']), true, 'filter: prefix allow'],
    ['PATH', policy('filter', ['TERM', 'LC_*']), false, 'filter: not allow-listed'],
    ['LC_SECRET', policy('filter', ['LC_*'], ['LC_SECRET']), false, 'filter: deny beats allow'],
    ['LC_X', policy('filter', ['*'], ['LC_*']), false, 'filter: prefix deny beats wildcard allow'],
    ['ANY', policy('filter', []), false, 'filter: empty allow list allows nothing'],
    ['PATH', policy('enable', []), true, 'enable: everything by default'],
    ['LD_PRELOAD', policy('enable', [], ['LD_*']), false, 'enable: deny list applies'],
    ['LD', policy('enable', [], ['LD_*']), true, 'enable: prefix is literal (LD_ does not match LD)'],
    ['TERM', policy('disable', ['TERM', '*']), false, 'disable: refuses even allow-listed names'],
    ['', policy('enable', []), false, 'empty names are refused'],
    ['LD_PRELOAD=/evil.so', policy('enable', [], ['LD_PRELOAD']), false, 'names containing = are refused (deny bypass)'],
    ['A\0B', policy('enable', []), false, 'names containing NUL are refused'],
  ];
  for (const [name, p, expected, why] of table) {
    test(why, () => {
      assert.equal(filterEnv(name, p), expected);
    });
  }

  test('the default policy lets terminal and locale settings through and nothing else', () => {
    const defaults = embeddedDefaults().security.env;
    assert.equal(defaults.mode, 'filter');
    for (const name of ['LANG', 'LC_ALL', 'TERM', 'TZ', 'COLORTERM']) assert.equal(filterEnv(name, defaults), true, name);
    for (const name of ['PATH', 'LD_PRELOAD', 'HOME', 'BASH_ENV']) assert.equal(filterEnv(name, defaults), false, name);
  });
});
