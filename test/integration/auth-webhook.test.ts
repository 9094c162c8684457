import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { pino } from 'pino';
import ssh2 from 'ssh2';
import { describePublicKey, parseAuthorizedKeyLine } from '../../src/auth/public-key.js';
import type { AuthRequest, Credential, PublicKeyCredential } from '../../src/auth/provider.js';
import { createWebhookAuthProvider } from '../../src/auth/webhook.js';
import type { WebhookAuthDeps } from '../../src/auth/webhook.js';
import { behaviours, startWebhookServer } from '../helpers/webhook-server.js';
import type { WebhookServer } from '../helpers/webhook-server.js';

const PASSWORD = 'pässwörd-Zebra-42';
const PASSWORD_B64 = Buffer.from(PASSWORD).toString('base64');

/** pino writing JSON lines into memory, so tests can read exactly what operators would see. */
function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return {
    logger,
    text: () => lines.join('\n'),
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    attempts: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => (r.msg === 'auth provider answer' || r.msg === 'auth provider error')),
  };
}

function request(overrides: Partial<AuthRequest> = {}): AuthRequest {
  return {
    connectionId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
    username: 'alice',
    remoteAddress: '192.0.2.7:51234',
    clientVersion: 'SSH-2.0-OpenSSH_9.6',
    metadata: {},
    environment: {},
    files: {},
    ...overrides,
  };
}

const password: Credential = { method: 'password', password: PASSWORD };

function publicKeyCredential(): PublicKeyCredential {
  const pair = ssh2.utils.generateKeyPairSync('ed25519');
  const parsed = parseAuthorizedKeyLine(pair.public);
  assert.ok(parsed);
  return { method: 'publickey', algorithm: parsed.algorithm, blob: parsed.blob, ...describePublicKey(parsed.algorithm, parsed.blob) };
}

const servers: WebhookServer[] = [];
async function server(...args: Parameters<typeof startWebhookServer>): Promise<WebhookServer> {
  const s = await startWebhookServer(...args);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function provider(hook: { url: string }, log: ReturnType<typeof captureLogger>, extra: Partial<WebhookAuthDeps> = {}) {
  return createWebhookAuthProvider({
    passwordUrl: hook.url,
    publicKeyUrl: hook.url,
    timeoutMs: 500,
    authTimeoutMs: 1500,
    retryInitialDelayMs: 50,
    logger: log.logger,
    ...extra,
  });
}

const never = new AbortController().signal;

describe('auth webhook: answers', () => {
  test('password accepted: request carries the ContainerSSH fields; username, metadata, environment, files pass through', async () => {
    const files = { '/home/airlock/.motd': { value: Buffer.from('hi\n').toString('base64') } };
    const hook = await server(
      behaviours.acceptPasswords(
        { alice: PASSWORD },
        {
          authenticatedUsername: 'alice@corp',
          metadata: { TEAM: { value: 'blue' }, TOKEN: { value: 't0k', sensitive: true } },
          environment: { GREETING: { value: 'hello' } },
          files,
        },
      ),
    );
    const log = captureLogger();
    const earlier = { STEP: { value: 'one', sensitive: false }, TEAM: { value: 'red', sensitive: false } };
    const decision = await provider(hook, log).authenticate(password, request({ metadata: earlier }), never);

    assert.equal(decision.outcome, 'accept');
    assert.equal(decision.authenticatedUsername, 'alice@corp');
    assert.deepEqual(decision.metadata, {
      STEP: { value: 'one', sensitive: false },
      TEAM: { value: 'blue', sensitive: false },
      TOKEN: { value: 't0k', sensitive: true },
    });
    assert.deepEqual(decision.environment, { GREETING: { value: 'hello', sensitive: false } });
    assert.deepEqual(decision.files, { '/home/airlock/.motd': { value: files['/home/airlock/.motd'].value, sensitive: false } });

    assert.equal(hook.requests.length, 1);
    const sent = hook.requests[0];
    assert.equal(sent?.path, '/password');
    assert.deepEqual(sent?.body, {
      username: 'alice',
      remoteAddress: '192.0.2.7:51234',
      connectionId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
      clientVersion: 'SSH-2.0-OpenSSH_9.6',
      metadata: earlier,
      environment: {},
      files: {},
      passwordBase64: PASSWORD_B64,
    });

    const [line, ...more] = log.attempts();
    assert.equal(more.length, 0, 'exactly one auth attempt line');
    assert.equal(line?.outcome, 'accept');
    assert.equal(line?.method, 'password');
    assert.equal(line?.username, 'alice');
    assert.equal(line?.connectionId, 'c0ffee00c0ffee00c0ffee00c0ffee00');
    assert.equal(line?.remoteAddress, '192.0.2.7:51234');
    assert.equal(line?.attempts, 1);
    assert.equal(typeof line?.durationMs, 'number');
  });

  test('public key: POST /pubkey with the authorized_keys form; fingerprint logged', async () => {
    const key = publicKeyCredential();
    const hook = await server(behaviours.acceptPublicKeys({ alice: [key.authorizedKey] }));
    const log = captureLogger();
    const decision = await provider(hook, log).authenticate(key, request(), never);
    assert.equal(decision.outcome, 'accept');
    assert.equal(hook.requests[0]?.path, '/pubkey');
    assert.equal(hook.requests[0]?.body.publicKey, key.authorizedKey);
    assert.equal(hook.requests[0]?.body.passwordBase64, undefined);
    assert.equal(log.attempts()[0]?.fingerprint, key.fingerprint);

    const other = publicKeyCredential();
    assert.equal((await provider(hook, log).authenticate(other, request(), never)).outcome, 'reject');
  });

  test('authenticatedUsername absent or empty → the login name', async () => {
    const hook = await server(behaviours.acceptPasswords({ alice: PASSWORD }));
    const log = captureLogger();
    const decision = await provider(hook, log).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'accept');
    assert.equal(decision.authenticatedUsername, 'alice');
    hook.setBehaviour(behaviours.acceptPasswords({ alice: PASSWORD }, { authenticatedUsername: '' }));
    assert.equal((await provider(hook, log).authenticate(password, request(), never)).authenticatedUsername, 'alice');
  });

  test('clean success:false → reject at once, no retry', async () => {
    const hook = await server(behaviours.acceptPasswords({ alice: 'other password' }));
    const log = captureLogger();
    const decision = await provider(hook, log).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'reject');
    assert.equal(decision.reason, 'AUTH_REJECTED');
    assert.equal(hook.requests.length, 1);
    assert.equal(log.attempts()[0]?.outcome, 'reject');
    assert.equal(log.attempts()[0]?.attempts, 1);
  });

  test('unknown answer fields are accepted with a warning naming them', async () => {
    const hook = await server(behaviours.acceptPasswords({ alice: PASSWORD }, { clientIp: '1.2.3.4', newFeature: { x: 1 } }));
    const log = captureLogger();
    const decision = await provider(hook, log).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'accept');
    const warning = log.records().find((r) => r.msg === 'auth webhook answer has unknown fields');
    assert.ok(warning, 'warning logged');
    assert.equal(warning.level, 40);
    assert.deepEqual(warning.fields, ['clientIp', 'newFeature']);
  });

  test('null maps (a Go webhook\'s nil map) read as absent and keep earlier content', async () => {
    const hook = await server(() => ({ json: { success: true, metadata: null, environment: null, files: null } }));
    const earlier = { A: { value: '1', sensitive: false } };
    const decision = await provider(hook, captureLogger()).authenticate(password, request({ environment: earlier }), never);
    assert.equal(decision.outcome, 'accept');
    assert.deepEqual(decision.environment, earlier);
    assert.deepEqual(decision.metadata, {});
  });

  test('sensitive values from an earlier step are not sent on, but stay in the decision', async () => {
    const hook = await server(behaviours.acceptPasswords({ alice: PASSWORD }));
    const log = captureLogger();
    const req = request({
      metadata: { PUBLIC: { value: 'p', sensitive: false }, SECRET: { value: 's3cr3t-meta', sensitive: true } },
      environment: { API_KEY: { value: 's3cr3t-env', sensitive: true } },
      files: { '/run/secret': { value: Buffer.from('s3cr3t-file').toString('base64'), sensitive: true } },
    });
    const decision = await provider(hook, log).authenticate(password, req, never);
    assert.equal(decision.outcome, 'accept');
    const body = hook.requests[0]?.body;
    assert.deepEqual(body?.metadata, { PUBLIC: { value: 'p', sensitive: false } });
    assert.deepEqual(body?.environment, {});
    assert.deepEqual(body?.files, {});
    assert.equal(decision.metadata?.SECRET?.value, 's3cr3t-meta');
    assert.equal(decision.environment?.API_KEY?.sensitive, true);
    assert.doesNotMatch(log.text(), /s3cr3t/);
  });

  test('supports() follows the configured URLs; an unsupported method is a reject without a request', async () => {
    const hook = await server(behaviours.acceptPasswords({ alice: PASSWORD }));
    const log = captureLogger();
    const onlyPassword = createWebhookAuthProvider({ passwordUrl: `${hook.url}/`, timeoutMs: 500, authTimeoutMs: 1000, logger: log.logger });
    assert.equal(onlyPassword.supports('password'), true);
    assert.equal(onlyPassword.supports('publickey'), false);
    assert.equal(onlyPassword.supports('keyboard-interactive'), false);
    // A trailing slash on the base URL does not double up.
    assert.equal((await onlyPassword.authenticate(password, request(), never)).outcome, 'accept');
    assert.equal(hook.requests[0]?.path, '/password');
    const decision = await onlyPassword.authenticate(publicKeyCredential(), request(), never);
    assert.equal(decision.outcome, 'reject');
    assert.equal(hook.requests.length, 1);
  });

  test('a URL with credentials or a non-http scheme is a configuration error', () => {
    const log = captureLogger();
    for (const url of ['http://user:pw@127.0.0.1:1', 'ftp://127.0.0.1', 'not a url']) {
      assert.throws(
        () => createWebhookAuthProvider({ passwordUrl: url, timeoutMs: 1, authTimeoutMs: 1, logger: log.logger }),
        (err: unknown) => err instanceof Error && 'code' in err && err.code === 'CONFIG_INVALID',
        url,
      );
    }
  });
});

describe('auth webhook: backend errors fail closed', () => {
  test('503 twice, then an answer within authTimeout → accept after retries', async () => {
    const hook = await server(behaviours.firstThen(2, behaviours.down('503'), behaviours.acceptPasswords({ alice: PASSWORD })));
    const log = captureLogger();
    const decision = await provider(hook, log).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'accept');
    assert.equal(hook.requests.length, 3);
    const [line] = log.attempts();
    assert.equal(line?.outcome, 'accept');
    assert.ok(typeof line?.attempts === 'number' && line.attempts >= 2, `attempts ${String(line?.attempts)}`);
    assert.equal(line?.error, undefined, 'a recovered error is not the outcome');
  });

  test('webhook dropping connections the whole time → error AUTH_BACKEND_ERROR after ~authTimeout', async () => {
    const hook = await server(behaviours.down('reset'));
    const log = captureLogger();
    const started = Date.now();
    const decision = await provider(hook, log, { authTimeoutMs: 1500 }).authenticate(password, request(), never);
    const took = Date.now() - started;
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BACKEND_ERROR');
    assert.ok(took >= 1400 && took < 6000, `took ${took} ms`);
    assert.ok(hook.requests.length >= 3, `retried: ${hook.requests.length} requests`);
    const [line] = log.attempts();
    assert.equal(line?.outcome, 'error');
    assert.equal(line?.reason, 'AUTH_BACKEND_ERROR');
    assert.equal(line?.level, 40);
    assert.equal(line?.attempts, hook.requests.length);
  });

  test('503 the whole time → error AUTH_BACKEND_ERROR', async () => {
    const hook = await server(behaviours.down('503'));
    const decision = await provider(hook, captureLogger(), { authTimeoutMs: 600 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BACKEND_ERROR');
  });

  test('nothing listening (connection refused) → error AUTH_BACKEND_ERROR', async () => {
    const hook = await startWebhookServer();
    await hook.close();
    const log = captureLogger();
    const decision = await provider(hook, log, { authTimeoutMs: 500 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BACKEND_ERROR');
    assert.match(String(log.attempts()[0]?.error), /ECONNREFUSED/);
  });

  test('slow webhook → per-request timeout, then error; total bounded by authTimeout', async () => {
    const hook = await server(behaviours.slow(10_000, behaviours.acceptPasswords({ alice: PASSWORD })));
    const log = captureLogger();
    const started = Date.now();
    const decision = await provider(hook, log, { timeoutMs: 300, authTimeoutMs: 1000 }).authenticate(password, request(), never);
    const took = Date.now() - started;
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BACKEND_ERROR');
    assert.ok(took >= 900 && took < 5000, `took ${took} ms`);
    assert.ok(hook.requests.length >= 2, `retried after timeouts: ${hook.requests.length}`);
    assert.match(String(log.attempts()[0]?.error), /did not answer within/);
  });

  test('a per-request timeout longer than authTimeout is cut to the auth deadline', async () => {
    const hook = await server(behaviours.slow(10_000));
    const started = Date.now();
    const decision = await provider(hook, captureLogger(), { timeoutMs: 5000, authTimeoutMs: 700 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.ok(Date.now() - started < 1500);
  });

  test('garbage body (200, not JSON) → error AUTH_BAD_RESPONSE', async () => {
    const hook = await server(behaviours.garbage());
    const log = captureLogger();
    const decision = await provider(hook, log, { authTimeoutMs: 400 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BAD_RESPONSE');
    assert.equal(log.attempts()[0]?.reason, 'AUTH_BAD_RESPONSE');
  });

  test('wrong shape (200 JSON without success) → error AUTH_BAD_RESPONSE', async () => {
    const hook = await server(behaviours.wrongShape());
    const decision = await provider(hook, captureLogger(), { authTimeoutMs: 400 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BAD_RESPONSE');
  });

  test('a last retry cut short by authTimeout does not hide the reason: a bad answer stays AUTH_BAD_RESPONSE', async () => {
    // First answer garbage, then never answer: the second attempt only times out because the
    // overall deadline cuts it short, which says nothing new about the webhook.
    const garbage = behaviours.garbage();
    const hang = behaviours.slow(10_000);
    const hook = await server((req, index) => (index === 0 ? garbage(req, index) : hang(req, index)));
    const decision = await provider(hook, captureLogger(), { timeoutMs: 5000, authTimeoutMs: 800 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BAD_RESPONSE');
    assert.ok(hook.requests.length >= 2, 'it did retry');
  });

  test('files that are not base64 → AUTH_BAD_RESPONSE', async () => {
    const hook = await server(() => ({ json: { success: true, files: { '/x': { value: 'plain text!' } } } }));
    const decision = await provider(hook, captureLogger(), { authTimeoutMs: 300 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BAD_RESPONSE');
  });

  test('an answer larger than maxResponseBytes → AUTH_BAD_RESPONSE', async () => {
    const hook = await server(() => ({ json: { success: true, metadata: { BIG: { value: 'x'.repeat(5000) } } } }));
    const decision = await provider(hook, captureLogger(), { authTimeoutMs: 300, maxResponseBytes: 1000 }).authenticate(password, request(), never);
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_BAD_RESPONSE');
  });

  test('HTTP 201 or a redirect is not an answer', async () => {
    const hook = await server(() => ({ status: 201, json: { success: true } }));
    const log = captureLogger();
    assert.equal((await provider(hook, log, { authTimeoutMs: 300 }).authenticate(password, request(), never)).outcome, 'error');
    const target = await server(behaviours.acceptPasswords({ alice: PASSWORD }));
    // 307 keeps method and body: following it would send the password to another server.
    hook.setBehaviour(() => ({ status: 307, raw: '', headers: { location: `${target.url}/password` } }));
    assert.equal((await provider(hook, log, { authTimeoutMs: 300 }).authenticate(password, request(), never)).outcome, 'error');
    assert.equal(target.requests.length, 0);
  });

  test('the caller aborting (client gone) stops the retries at once', async () => {
    const hook = await server(behaviours.down('503'));
    const controller = new AbortController();
    const started = Date.now();
    const pending = provider(hook, captureLogger(), { authTimeoutMs: 10_000 }).authenticate(password, request(), controller.signal);
    setTimeout(() => controller.abort(), 200);
    const decision = await pending;
    assert.equal(decision.outcome, 'error');
    assert.equal(decision.reason, 'AUTH_ABORTED');
    assert.ok(Date.now() - started < 2000);
  });
});

describe('auth webhook: logs', () => {
  test('the password and passwordBase64 never reach the log, whatever the outcome', async () => {
    const hook = await server(behaviours.acceptPasswords({ alice: PASSWORD }));
    const log = captureLogger();
    const p = provider(hook, log, { authTimeoutMs: 400 });
    assert.equal((await p.authenticate(password, request(), never)).outcome, 'accept');
    assert.equal((await p.authenticate(password, request({ username: 'bob' }), never)).outcome, 'reject');
    hook.setBehaviour(behaviours.garbage());
    assert.equal((await p.authenticate(password, request(), never)).outcome, 'error');
    hook.setBehaviour(behaviours.down('reset'));
    assert.equal((await p.authenticate(password, request(), never)).outcome, 'error');
    hook.setBehaviour(behaviours.wrongShape());
    assert.equal((await p.authenticate(password, request(), never)).outcome, 'error');

    assert.equal(log.attempts().length, 5, 'one line per authentication');
    const text = log.text();
    assert.ok(text.length > 0);
    assert.equal(text.includes(PASSWORD), false, 'password in log');
    assert.equal(text.includes(PASSWORD_B64), false, 'passwordBase64 in log');
    assert.equal(text.includes('passwordBase64'), false);
  });
});
