/** The failed-login limits (src/ssh/auth-rate-limit.ts), driven by a test clock. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAuthRateLimiter, sourceKey, type AuthRateLimitOptions } from '../../src/ssh/auth-rate-limit.js';

function testClock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const limits = (overrides: Partial<AuthRateLimitOptions> = {}): AuthRateLimitOptions => ({
  perIp: { maxFailures: 3, windowMs: 60_000, blockForMs: 120_000 },
  perUser: { maxFailures: 5, windowMs: 60_000, blockForMs: 30_000 },
  ...overrides,
});

describe('failed-login limits', () => {
  it('per address: the 3rd failure within the window blocks the address, not others; the block ends on time', () => {
    const clock = testClock();
    const limiter = createAuthRateLimiter(limits(), clock);
    assert.deepEqual(limiter.failed('192.0.2.1', 'a'), []);
    assert.deepEqual(limiter.failed('192.0.2.1', 'b'), []);
    assert.equal(limiter.blockFor('192.0.2.1', 'c'), undefined);
    const started = limiter.failed('192.0.2.1', 'c');
    assert.deepEqual(started, [{ scope: 'ip', key: '192.0.2.1', until: clock.now() + 120_000 }]);
    assert.deepEqual(limiter.blockFor('192.0.2.1', 'anyone'), started[0]);
    assert.equal(limiter.blockFor('192.0.2.2', 'a'), undefined, 'another address is not affected');

    // Failures while blocked neither start nor extend a block.
    assert.deepEqual(limiter.failed('192.0.2.1', 'd'), []);
    clock.advance(119_999);
    assert.ok(limiter.blockFor('192.0.2.1', 'a'));
    clock.advance(1);
    assert.equal(limiter.blockFor('192.0.2.1', 'a'), undefined, 'the block has expired');
    // The count starts afresh after a block.
    assert.deepEqual(limiter.failed('192.0.2.1', 'e'), []);
  });

  it('per user: failures from many addresses block the login name; other names are not affected', () => {
    const clock = testClock();
    const limiter = createAuthRateLimiter(limits(), clock);
    for (let i = 1; i <= 4; i++) assert.deepEqual(limiter.failed(`198.51.100.${i}`, 'alice'), []);
    assert.deepEqual(limiter.failed('198.51.100.5', 'alice'), [{ scope: 'user', key: 'alice', until: clock.now() + 30_000 }]);
    assert.equal(limiter.blockFor('203.0.113.9', 'alice')?.scope, 'user');
    assert.equal(limiter.blockFor('203.0.113.9', 'bob'), undefined);
  });

  it('only failures within the window count (sliding)', () => {
    const clock = testClock();
    const limiter = createAuthRateLimiter(limits(), clock);
    limiter.failed('192.0.2.1', 'u1');
    clock.advance(40_000);
    limiter.failed('192.0.2.1', 'u2');
    clock.advance(20_001); // the first failure is now older than the window
    assert.deepEqual(limiter.failed('192.0.2.1', 'u3'), []);
    assert.equal(limiter.failed('192.0.2.1', 'u4')[0]?.scope, 'ip');
  });

  it('one failure can start both blocks; maxFailures 0 switches a scope off', () => {
    const clock = testClock();
    const both = createAuthRateLimiter(limits({ perUser: { maxFailures: 3, windowMs: 60_000, blockForMs: 1_000 } }), clock);
    both.failed('192.0.2.1', 'x');
    both.failed('192.0.2.1', 'x');
    assert.deepEqual(
      both.failed('192.0.2.1', 'x').map((b) => b.scope),
      ['ip', 'user'],
    );
    const off = createAuthRateLimiter(limits({ perIp: { maxFailures: 0, windowMs: 60_000, blockForMs: 60_000 } }), clock);
    for (let i = 0; i < 50; i++) off.failed('192.0.2.1', `user${i}`);
    assert.equal(off.blockFor('192.0.2.1', 'new'), undefined);
  });

  it('memory is bounded: past the cap the least recently failed key is forgotten', () => {
    const clock = testClock();
    const limiter = createAuthRateLimiter(limits(), clock, 100);
    for (let i = 0; i < 1_000; i++) limiter.failed(`10.0.${i >> 8}.${i & 255}`, `spray-${i}`);
    assert.equal(limiter.tracked('ip'), 100);
    assert.equal(limiter.tracked('user'), 100);
  });

  it('source keys: IPv4 as is (also IPv4-mapped), IPv6 by its /64, zone ids dropped', () => {
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('2001:0db8:0000:0002:0:0:0:1'), '2001:db8:0:2::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceKey('::ffff:1.2.3.4'.toUpperCase()), '1.2.3.4');

    // Two addresses of one /64 share a budget.
    const limiter = createAuthRateLimiter(limits(), testClock());
    limiter.failed('2001:db8:1:2::1', 'a');
    limiter.failed('2001:db8:1:2::2', 'b');
    assert.equal(limiter.failed('2001:db8:1:2::3', 'c')[0]?.key, '2001:db8:1:2::/64');
    assert.ok(limiter.blockFor('2001:db8:1:2:ffff::9', 'd'));
    assert.equal(limiter.blockFor('2001:db8:1:3::1', 'd'), undefined);
  });
});
