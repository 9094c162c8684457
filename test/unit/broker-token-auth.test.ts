/**
 * The token AuthProvider (src/auth/token.ts) with the real token code and the in-memory store:
 * what a login gets, and every way a token or session is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createTokenAuthProvider, tokenFromCredential, withTokenPrompt, type TokenAuthDeps, type TokenAuthProvider } from '../../src/auth/token.js';
import type { AuthRequest, Credential, KeyboardInteractiveChallenge } from '../../src/auth/provider.js';
import { createTokenIssuer, createTokenVerifier, loadTokenKeys, newSessionId, type TokenKeySet } from '../../src/broker/tokens.js';
import { createMemorySessionStore } from '../../src/broker/store/memory.js';
import type { SessionRecord, SessionStore } from '../../src/broker/store/session-store.js';
import { DEFAULT_SECRET_NAME_PATTERNS, sanitizeEnv } from '../../src/broker/policy.js';
import { AirlockError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

const AUDIENCE = 'airlock-test';
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

function testClock() {
  let now = T0;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

function captureLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  return { logger, text: () => lines.join('') };
}

const request = (username: string, connectionId = 'c'.repeat(32)): AuthRequest => ({
  connectionId,
  username,
  remoteAddress: '192.0.2.1:5555',
  clientVersion: 'SSH-2.0-OpenSSH_9.2',
  metadata: {},
  environment: {},
  files: {},
});
const none: Credential = { method: 'none' };
const signal = () => new AbortController().signal;

describe('token auth provider', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let keys: TokenKeySet;
  before(async () => {
    dir = await tempDir('airlock-tokenauth-');
    keys = await loadTokenKeys([], join(dir.path, 'k.pem'));
  });
  after(async () => dir.cleanup());

  function setup(overrides: Partial<TokenAuthDeps> = {}, store?: SessionStore) {
    const clock = testClock();
    const s = store ?? createMemorySessionStore({ clock });
    const log = captureLogger();
    const ended: Array<[string, string]> = [];
    const provider = createTokenAuthProvider({
      verifier: createTokenVerifier({ keys, audience: AUDIENCE, clockToleranceSeconds: 5, clock }),
      slots: s,
      sanitize: (env) => sanitizeEnv(env, { secretNamePatterns: DEFAULT_SECRET_NAME_PATTERNS, keepEnvNames: [] }),
      allowStatelessTokens: false,
      deadlineGraceMs: 30_000,
      logger: log.logger,
      clock,
      onSessionEnded: (id, code) => ended.push([id, code]),
      ...overrides,
    });
    const issuer = createTokenIssuer({ keys, audience: AUDIENCE, clock });
    const provision = async (extra: Partial<SessionRecord> = {}, ttlMs = 600_000) => {
      const record: SessionRecord = {
        id: newSessionId(),
        image: 'ghcr.io/acme/build:42',
        commitSha: 'a3f5c9e1b2d4f6a8c0e2a4b6c8d0e2f4a6b8c0d2',
        prNumber: 42,
        actor: 'octocat',
        repository: 'acme/app',
        pipelineRun: 'run-7',
        env: { GOPATH: '/go', CI: 'true' },
        redactedVars: ['GITHUB_TOKEN'],
        maxConnections: 1,
        createdAt: clock.now(),
        expiresAt: clock.now() + ttlMs,
        ...extra,
      };
      await s.create(record, record.expiresAt + 60_000);
      const token = await issuer.issue({ sessionId: record.id, expiresAt: record.expiresAt });
      return { record, token };
    };
    return { provider, store: s, clock, provision, log, ended, issuer };
  }

  const providers: TokenAuthProvider[] = [];
  after(() => providers.forEach((p) => p.close()));

  it('accepts `ssh <token>@gw`: actor, image, sanitized env + AIRLOCK_*, metadata, deadline = expiry + grace', async () => {
    const { provider, provision } = setup();
    providers.push(provider);
    const { record, token } = await provision({ env: { GOPATH: '/go', LEAKED_SECRET: 'x', KEYBOARD_LAYOUT: 'us' } });
    const d = await provider.authenticate(none, request(token), signal());
    assert.equal(d.outcome, 'accept');
    assert.equal(d.authenticatedUsername, 'octocat');
    assert.equal(d.image, 'ghcr.io/acme/build:42');
    assert.equal(d.deadline?.getTime(), record.expiresAt + 30_000);
    const env = Object.fromEntries(Object.entries(d.environment ?? {}).map(([k, v]) => [k, v.value]));
    assert.equal(env.GOPATH, '/go');
    assert.equal(env.LEAKED_SECRET, undefined, 'stripped again at login');
    assert.equal(env.AIRLOCK_SESSION_ID, record.id);
    assert.equal(env.AIRLOCK_ACTOR, 'octocat');
    assert.equal(env.AIRLOCK_COMMIT_SHA, record.commitSha);
    assert.equal(env.AIRLOCK_PR_NUMBER, '42');
    assert.equal(env.AIRLOCK_REDACTED_VARS, 'GITHUB_TOKEN,KEYBOARD_LAYOUT,LEAKED_SECRET');
    assert.equal(d.environment?.GOPATH?.sensitive, true, 'CI values stay out of logs and webhooks');
    assert.equal(d.environment?.AIRLOCK_SESSION_ID?.sensitive, false);
    assert.deepEqual(d.metadata, {
      session_id: { value: record.id, sensitive: false },
      commit_sha: { value: record.commitSha, sensitive: false },
      pr_number: { value: '42', sensitive: false },
      actor: { value: 'octocat', sensitive: false },
      repository: { value: 'acme/app', sensitive: false },
      pipeline_run: { value: 'run-7', sensitive: false },
    });
    await d.release?.();
  });

  it('takes the token from the password or the user name too', async () => {
    assert.equal(tokenFromCredential({ method: 'password', password: ' eyJa.eyJb.c \n' }, 'ci'), 'eyJa.eyJb.c');
    assert.equal(tokenFromCredential({ method: 'password', password: 'hunter2' }, 'eyJa.eyJb.c'), 'eyJa.eyJb.c');
    assert.equal(tokenFromCredential({ method: 'none' }, 'alice'), undefined);

    const { provider, provision } = setup();
    providers.push(provider);
    const { token } = await provision();
    const d = await provider.authenticate({ method: 'password', password: token }, request('anyone'), signal());
    assert.equal(d.outcome, 'accept');
    await d.release?.();
    assert.equal(provider.supports('publickey'), false);
    assert.equal(provider.supports('none'), true);
  });

  it('keyboard-interactive: withTokenPrompt asks for the token (hidden) unless the user name is one', async () => {
    const { provider, provision } = setup();
    providers.push(provider);
    const prompting = withTokenPrompt(provider);
    assert.equal(prompting.supports('keyboard-interactive'), true);
    const asked: KeyboardInteractiveChallenge[] = [];
    const typing = (answer: string): Credential => ({
      method: 'keyboard-interactive',
      challenge: async (c) => {
        asked.push(c);
        return [answer];
      },
    });

    const { token } = await provision();
    const d = await prompting.authenticate(typing(` ${token}\n`), request('ci'), signal());
    assert.equal(d.outcome, 'accept');
    assert.deepEqual(asked, [{ prompts: [{ prompt: 'Debug-session token: ', echo: false }] }]);
    await d.release?.();

    // A token user name needs no prompt.
    asked.length = 0;
    const byName = await prompting.authenticate(typing('unused'), request(token), signal());
    assert.equal(byName.outcome, 'accept');
    assert.equal(asked.length, 0);
    await byName.release?.();

    // Asked for a token and given something else: refused with the reason.
    const wrong = await prompting.authenticate(typing('hunter2'), request('ci'), signal());
    assert.equal(wrong.outcome, 'reject');
    assert.equal(wrong.reason, 'TOKEN_INVALID');
    assert.match(wrong.userMessage ?? '', /\[TOKEN_INVALID\]$/);

    // The client abandoning the prompt is no decision.
    const gone: Credential = { method: 'keyboard-interactive', challenge: () => Promise.reject(new Error('aborted')) };
    assert.deepEqual(await prompting.authenticate(gone, request('ci'), signal()), { outcome: 'error', reason: 'AUTH_ABORTED' });

    // Without the wrapper (a keyboard-interactive webhook leads): no prompt, not ours.
    asked.length = 0;
    assert.deepEqual(await provider.authenticate(typing(token), request('ci'), signal()), { outcome: 'reject' });
    assert.equal(asked.length, 0);
  });

  it('a user name that is not a token is a plain reject (the chain moves on, no banner)', async () => {
    const { provider } = setup();
    const d = await provider.authenticate(none, request('alice'), signal());
    assert.deepEqual(d, { outcome: 'reject' });
  });

  it('unknown and revoked sessions, expired and garbage tokens: rejected with a reason and a user line', async () => {
    const { provider, provision, store, clock, issuer } = setup();
    providers.push(provider);
    const unknown = await issuer.issue({ sessionId: newSessionId(), expiresAt: clock.now() + 60_000 });
    let d = await provider.authenticate(none, request(unknown), signal());
    assert.equal(d.outcome, 'reject');
    assert.equal(d.reason, 'SESSION_NOT_FOUND');
    assert.match(d.userMessage ?? '', /^airlock: .*\[SESSION_NOT_FOUND\]$/);

    const { record, token } = await provision();
    assert.ok(await store.revoke(record.id));
    d = await provider.authenticate(none, request(token), signal());
    assert.equal(d.reason, 'SESSION_REVOKED');

    const { token: shortLived } = await provision({}, 10_000);
    clock.advance(16_000);
    d = await provider.authenticate(none, request(shortLived), signal());
    assert.equal(d.reason, 'TOKEN_EXPIRED');
    assert.match(d.userMessage ?? '', /expired.*\[TOKEN_EXPIRED\]/);

    d = await provider.authenticate(none, request('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'), signal());
    assert.equal(d.reason, 'TOKEN_INVALID');
    assert.equal(provider.heldSessions().size, 0, 'no refused login holds a slot');
  });

  it('a token past exp but inside the clock tolerance is refused (its container would die at once); the grace admits nobody', async () => {
    const { provider, provision, store, clock } = setup(); // deadlineGraceMs: 30 s
    providers.push(provider);
    const { record, token } = await provision({}, 10_000);

    // 1 ms before exp: still a login, with the grace on its deadline.
    clock.advance(9_999);
    const live = await provider.authenticate(none, request(token, '1'.repeat(32)), signal());
    assert.equal(live.outcome, 'accept');
    assert.equal(live.deadline?.getTime(), record.expiresAt + 30_000);
    await live.release?.();

    clock.advance(2_001); // 2 s past exp
    const verifier = createTokenVerifier({ keys, audience: AUDIENCE, clockToleranceSeconds: 5, clock });
    assert.equal((await verifier.verify(token)).sessionId, record.id, 'premise: the verifier alone still accepts it');
    const d = await provider.authenticate(none, request(token, '2'.repeat(32)), signal());
    assert.equal(d.outcome, 'reject');
    assert.equal(d.reason, 'TOKEN_EXPIRED');
    assert.equal(d.userMessage, 'airlock: the debug-session token has expired; provision a new session [TOKEN_EXPIRED]');
    assert.equal(d.release, undefined);
    assert.equal(provider.heldSessions().size, 0);
    assert.equal((await store.get(record.id))?.activeConnections, 0, 'no slot taken');

    // Exactly at exp is past the deadline too.
    const { token: atExp } = await provision({}, 10_000);
    clock.advance(10_000);
    assert.equal((await provider.authenticate(none, request(atExp, '3'.repeat(32)), signal())).reason, 'TOKEN_EXPIRED');
  });

  it('a session record that ends before its token: refused at its own expiry, and the slot taken is released', async () => {
    const { provider, store, clock, issuer } = setup();
    providers.push(provider);
    const record: SessionRecord = {
      id: newSessionId(),
      image: 'alpine:3',
      env: {},
      redactedVars: [],
      maxConnections: 1,
      createdAt: clock.now(),
      expiresAt: clock.now() + 5_000,
    };
    await store.create(record, record.expiresAt + 60_000);
    const token = await issuer.issue({ sessionId: record.id, expiresAt: clock.now() + 600_000 });
    clock.advance(6_000);
    const d = await provider.authenticate(none, request(token, '4'.repeat(32)), signal());
    assert.equal(d.reason, 'TOKEN_EXPIRED');
    assert.deepEqual(provider.connectionsOf(record.id), []);
    assert.equal((await store.get(record.id))?.activeConnections, 0, 'the slot acquired before the check is released');
  });

  it('max_connections: a second concurrent login is refused; after release a reconnect works', async () => {
    const { provider, provision, store } = setup();
    providers.push(provider);
    const { record, token } = await provision({ maxConnections: 1 });
    const first = await provider.authenticate(none, request(token, '1'.repeat(32)), signal());
    assert.equal(first.outcome, 'accept');
    const second = await provider.authenticate(none, request(token, '2'.repeat(32)), signal());
    assert.equal(second.reason, 'SESSION_CONNECTION_LIMIT');
    assert.equal((await store.get(record.id))?.activeConnections, 1);
    await first.release?.();
    await first.release?.(); // idempotent
    assert.equal((await store.get(record.id))?.activeConnections, 0);
    const third = await provider.authenticate(none, request(token, '3'.repeat(32)), signal());
    assert.equal(third.outcome, 'accept');
    await third.release?.();
  });

  it('max_connections: N concurrent logins are atomic under a burst', async () => {
    const { provider, provision } = setup();
    providers.push(provider);
    const { token } = await provision({ maxConnections: 3 });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => provider.authenticate(none, request(token, String(i).padStart(32, '0')), signal())),
    );
    assert.equal(results.filter((r) => r.outcome === 'accept').length, 3);
    await Promise.all(results.map((r) => r.release?.()));
  });

  it('a slot whose holder stopped renewing frees itself when the lease runs out', async () => {
    const { provider, provision, clock } = setup({ leaseMs: 20_000 });
    providers.push(provider);
    const { token } = await provision();
    const first = await provider.authenticate(none, request(token, '1'.repeat(32)), signal());
    assert.equal(first.outcome, 'accept');
    provider.close(); // a "crashed" gateway: nobody renews, nobody releases
    clock.advance(21_000);
    const again = await provider.authenticate(none, request(token, '2'.repeat(32)), signal());
    assert.equal(again.outcome, 'accept');
  });

  it('renewal notices a revoked session and reports it, so the gateway can end its connections', async () => {
    const { provider, provision, store, ended } = setup({ renewIntervalMs: 20 });
    providers.push(provider);
    const { record, token } = await provision();
    const d = await provider.authenticate(none, request(token, '9'.repeat(32)), signal());
    assert.equal(d.outcome, 'accept');
    assert.deepEqual(provider.connectionsOf(record.id), ['9'.repeat(32)]);
    await store.revoke(record.id);
    const deadline = Date.now() + 5_000;
    while (ended.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(ended[0], [record.id, 'SESSION_REVOKED']);
    await d.release?.();
    assert.deepEqual(provider.connectionsOf(record.id), []);
  });

  it('a client that left during the check gets no slot', async () => {
    const { provider, provision, store } = setup();
    const { record, token } = await provision();
    const ac = new AbortController();
    ac.abort();
    const d = await provider.authenticate(none, request(token), ac.signal);
    assert.equal(d.outcome, 'error');
    assert.equal((await store.get(record.id))?.activeConnections, 0);
  });

  it('store down: fails closed, unless stateless tokens are allowed and the token carries the facts', async () => {
    const down: SessionStore = {
      ...createMemorySessionStore(),
      acquire: async () => {
        throw new AirlockError('STORE_UNAVAILABLE', 'redis: connect ECONNREFUSED');
      },
    };
    const strict = setup({}, down);
    const clock = strict.clock;
    const sessionId = newSessionId();
    const withFacts = await strict.issuer.issue({ sessionId, expiresAt: clock.now() + 60_000, stateless: { image: 'alpine:3', actor: 'octocat', prNumber: 9 } });
    let d = await strict.provider.authenticate(none, request(withFacts), signal());
    assert.equal(d.outcome, 'error');
    assert.equal(d.reason, 'STORE_UNAVAILABLE');
    assert.match(d.userMessage ?? '', /\[STORE_UNAVAILABLE\]$/);
    assert.ok(!strict.log.text().includes(withFacts), 'the token never reaches the log');

    const lenient = setup({ allowStatelessTokens: true }, down);
    const withoutFacts = await lenient.issuer.issue({ sessionId, expiresAt: lenient.clock.now() + 60_000 });
    d = await lenient.provider.authenticate(none, request(withoutFacts), signal());
    assert.equal(d.outcome, 'error', 'a token without facts cannot be served statelessly');
    const facts = await lenient.issuer.issue({ sessionId, expiresAt: lenient.clock.now() + 60_000, stateless: { image: 'alpine:3', actor: 'octocat', prNumber: 9 } });
    d = await lenient.provider.authenticate(none, request(facts), signal());
    assert.equal(d.outcome, 'accept');
    assert.equal(d.image, 'alpine:3');
    assert.equal(d.environment?.AIRLOCK_PR_NUMBER?.value, '9');
    assert.equal(d.environment?.AIRLOCK_REDACTED_VARS?.value, '');
  });
});
