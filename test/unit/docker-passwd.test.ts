/** User detection helpers: passwd/group parsing, default user choice, user spec resolution. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isRootUserSpec, parseGroup, parsePasswd, pickDefaultUser, resolveUserIds } from '../../src/backend/docker/passwd.js';

const passwd = parsePasswd(
  [
    'root:x:0:0:root:/root:/bin/bash',
    '# comment',
    'daemon:x:1:1::/usr/sbin:/usr/sbin/nologin',
    'broken line',
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    'systemd-x:x:61000:61000::/:/usr/sbin/nologin',
    'ci:x:1001:1002:CI:/home/ci:/bin/bash',
    'dev:x:1000:1000::/home/dev:/bin/sh',
  ].join('\n'),
);
const groups = parseGroup('root:x:0:\nstaff:x:50:\nci:x:1002:\n');

describe('passwd helpers', () => {
  it('parses valid lines only', () => {
    assert.deepEqual(
      passwd.map((e) => e.name),
      ['root', 'daemon', 'nobody', 'systemd-x', 'ci', 'dev'],
    );
    assert.deepEqual(passwd.at(-2), { name: 'ci', uid: 1001, gid: 1002, home: '/home/ci' });
  });

  it('picks the first regular user (file order), never nobody or the 60000+ range', () => {
    assert.equal(pickDefaultUser(passwd)?.name, 'ci');
    assert.equal(pickDefaultUser(parsePasswd('root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false')), undefined);
  });

  it('recognises root specs', () => {
    for (const spec of ['', 'root', '0', '0:0', 'root:wheel', ' ']) assert.equal(isRootUserSpec(spec), true, spec);
    for (const spec of ['ci', '1000', '1000:0']) assert.equal(isRootUserSpec(spec), false, spec);
  });

  it('resolves user specs like the Engine', () => {
    assert.deepEqual(resolveUserIds('ci', passwd, groups), { uid: 1001, gid: 1002 });
    assert.deepEqual(resolveUserIds('ci:staff', passwd, groups), { uid: 1001, gid: 50 });
    assert.deepEqual(resolveUserIds('1000', passwd, groups), { uid: 1000, gid: 1000 });
    assert.deepEqual(resolveUserIds('4242', passwd, groups), { uid: 4242, gid: 4242 });
    assert.deepEqual(resolveUserIds('4242:7', passwd, groups), { uid: 4242, gid: 7 });
    assert.equal(resolveUserIds('nosuchuser', passwd, groups), undefined);
    assert.equal(resolveUserIds('ci:nosuchgroup', passwd, groups), undefined);
  });
});
