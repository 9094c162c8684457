/**
 * Keyboard-interactive login through Airlock's `/keyboard-interactive` webhook: first the
 * provider against a real HTTP webhook (the protocol, round by round), then the real OpenSSH
 * client answering the prompts through SSH_ASKPASS: success with a second factor, a wrong
 * answer, a webhook that is down or answers garbage (fail closed with one clear line), the
 * ContainerSSH audit numbers 108-111, and answers that never reach the log.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createKeyboardInteractiveWebhookProvider, MAX_ROUNDS } from '../../src/auth/keyboard-interactive.js';
import type { AuthRequest, Credential, KeyboardInteractiveChallenge } from '../../src/auth/provider.js';
import { AuditType, scanBinary } from '../../src/audit/index.js';
import type { AuditMessage } from '../../src/audit/format/binary-format.js';
import { assertNoGatewayLeaks, startGateway, type TestGateway } from '../helpers/gateway.js';
import { behaviours, startWebhookServer, type WebhookBehaviour, type WebhookServer } from '../helpers/webhook-server.js';
import { ssh } from '../helpers/ssh.js';
import { ensureTestImage } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const PASSWORD = 'kbd-Sekret-Zebra-77';
const OTP = '914 227';
const QUESTIONS = {
  alice: [
    { prompt: 'Password: ', answer: PASSWORD },
    { prompt: 'One-time code: ', answer: OTP, echo: true, instruction: 'Second factor: open your authenticator app.' },
  ],
};

function captureLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  return { logger, text: () => lines.join('') };
}

const request = (username = 'alice'): AuthRequest => ({
  connectionId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
  username,
  remoteAddress: '192.0.2.7:51234',
  clientVersion: 'SSH-2.0-OpenSSH_9.6',
  metadata: { STEP: { value: 'earlier', sensitive: false }, SECRET: { value: 'hidden', sensitive: true } },
  environment: {},
  files: {},
});

/** A client that answers each prompt from `answers` (by prompt text) and records what it was asked. */
function typing(answers: Record<string, string>) {
  const asked: KeyboardInteractiveChallenge[] = [];
  const credential: Credential = {
    method: 'keyboard-interactive',
    challenge: async (c) => {
      asked.push(c);
      return c.prompts.map((p) => answers[p.prompt] ?? '');
    },
  };
  return { credential, asked };
}

const never = new AbortController().signal;

describe('keyboard-interactive webhook provider', () => {
  const servers: WebhookServer[] = [];
  const server = async (b: WebhookBehaviour) => {
    const s = await startWebhookServer(b);
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const provider = (url: string, log = captureLogger()) =>
    createKeyboardInteractiveWebhookProvider({ url, timeoutMs: 300, authTimeoutMs: 900, retryInitialDelayMs: 50, logger: log.logger });

  it('round by round: the webhook asks, every request carries all answers so far (base64), success merges the maps', async () => {
    const hook = await server(
      behaviours.keyboardInteractive(QUESTIONS, { authenticatedUsername: 'alice@corp', environment: { KBD: { value: 'yes' } } }),
    );
    const log = captureLogger();
    const { credential, asked } = typing({ 'Password: ': PASSWORD, 'One-time code: ': OTP });
    const d = await provider(`${hook.url}/`, log).authenticate(credential, request(), never);
    assert.equal(d.outcome, 'accept');
    assert.equal(d.authenticatedUsername, 'alice@corp');
    assert.deepEqual(d.environment, { KBD: { value: 'yes', sensitive: false } });
    assert.equal(d.metadata?.SECRET?.value, 'hidden', 'sensitive entries stay in the decision');

    assert.deepEqual(asked, [
      { prompts: [{ prompt: 'Password: ', echo: false }] },
      { prompts: [{ prompt: 'One-time code: ', echo: true }], instruction: 'Second factor: open your authenticator app.' },
    ]);
    assert.deepEqual(
      hook.requests.map((r) => [r.path, r.body.answers]),
      [
        ['/keyboard-interactive', []],
        ['/keyboard-interactive', [{ prompt: 'Password: ', echo: false, answerBase64: Buffer.from(PASSWORD).toString('base64') }]],
        [
          '/keyboard-interactive',
          [
            { prompt: 'Password: ', echo: false, answerBase64: Buffer.from(PASSWORD).toString('base64') },
            { prompt: 'One-time code: ', echo: true, answerBase64: Buffer.from(OTP).toString('base64') },
          ],
        ],
      ],
    );
    const first = hook.requests[0]?.body;
    assert.equal(first?.username, 'alice');
    assert.equal(first?.connectionId, 'c0ffee00c0ffee00c0ffee00c0ffee00');
    assert.equal(first?.remoteAddress, '192.0.2.7:51234');
    assert.equal(first?.clientVersion, 'SSH-2.0-OpenSSH_9.6');
    assert.deepEqual(first?.metadata, { STEP: { value: 'earlier', sensitive: false } }, 'sensitive metadata is not sent on');
    assert.ok(!log.text().includes(PASSWORD) && !log.text().includes(OTP), 'answers never reach the log');
    assert.ok(!log.text().includes(Buffer.from(PASSWORD).toString('base64')));
  });

  it('a wrong answer is a clean reject; success:false without prompts too', async () => {
    const hook = await server(behaviours.keyboardInteractive(QUESTIONS));
    const wrong = typing({ 'Password: ': 'nope' });
    assert.deepEqual(await provider(hook.url).authenticate(wrong.credential, request(), never), { outcome: 'reject', reason: 'AUTH_REJECTED' });
    assert.equal(wrong.asked.length, 1);
    const stranger = typing({});
    assert.deepEqual(await provider(hook.url).authenticate(stranger.credential, request('mallory'), never), { outcome: 'reject', reason: 'AUTH_REJECTED' });
    assert.equal(stranger.asked.length, 0, 'nothing asked when the webhook says no at once');
  });

  it(`a webhook that keeps asking is a bad response after ${MAX_ROUNDS} rounds; a wrong answer count is a reject`, async () => {
    const hook = await server(() => ({ json: { success: false, prompts: [{ prompt: 'Again: ' }] } }));
    const client = typing({});
    assert.deepEqual(await provider(hook.url).authenticate(client.credential, request(), never), { outcome: 'error', reason: 'AUTH_BAD_RESPONSE' });
    assert.equal(client.asked.length, MAX_ROUNDS);

    const short: Credential = { method: 'keyboard-interactive', challenge: async () => [] };
    assert.deepEqual(await provider(hook.url).authenticate(short, request(), never), { outcome: 'reject', reason: 'AUTH_REJECTED' });
  });

  it('the client abandoning the exchange is AUTH_ABORTED; down, garbage and wrong-shaped webhooks fail closed', async () => {
    const hook = await server(behaviours.keyboardInteractive(QUESTIONS));
    const gone: Credential = { method: 'keyboard-interactive', challenge: () => Promise.reject(new Error('client started another method')) };
    assert.deepEqual(await provider(hook.url).authenticate(gone, request(), never), { outcome: 'error', reason: 'AUTH_ABORTED' });

    for (const [behaviour, reason] of [
      [behaviours.down('503'), 'AUTH_BACKEND_ERROR'],
      [behaviours.garbage(), 'AUTH_BAD_RESPONSE'],
      [() => ({ json: { success: false, prompts: [{ prompt: 42 }] } }), 'AUTH_BAD_RESPONSE'],
    ] as const) {
      hook.setBehaviour(behaviour);
      const d = await provider(hook.url).authenticate(typing({}).credential, request(), never);
      assert.deepEqual(d, { outcome: 'error', reason });
    }
    assert.equal(provider(hook.url).supports('keyboard-interactive'), true);
    assert.equal(provider(hook.url).supports('password'), false);
  });
});

async function messages(file: string): Promise<AuditMessage[]> {
  const out: AuditMessage[] = [];
  await scanBinary([await readFile(file)], (m) => {
    out.push(m);
  });
  return out;
}

describe('keyboard-interactive login through the gateway (real ssh, SSH_ASKPASS)', () => {
  let hook: WebhookServer;
  let gw: TestGateway;
  let storage: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    await ensureTestImage();
    storage = await tempDir('airlock-kbd-audit-');
    hook = await startWebhookServer();
    gw = await startGateway({
      auth: { keyboardInteractive: { method: 'webhook', webhook: { url: hook.url, timeout: '300ms' } }, authTimeout: '1500ms' },
      audit: { enable: true, format: 'binary', storage: 'file', file: { directory: storage.path } },
    });
  });
  afterEach(async () => {
    await gw.waitForIdle();
    assert.deepEqual(await gw.containers(), [], 'no container may outlive its connection');
  });
  after(async () => {
    await gw?.stop();
    await hook?.close();
    await storage?.cleanup();
    await assertNoGatewayLeaks();
  });

  /** The audit messages of the connection that logged `line` (found by its connectionId). */
  const recordingOf = async (connectionId: string) => {
    const stored = await gw.waitForLog((l) => l.msg === 'recording stored' && l.connectionId === connectionId, 30_000);
    return messages(join(String(stored.location), 'audit.airlock'));
  };
  const kbd = (answers: Record<string, string>, extra: { passwordPrompts?: number } = {}) => ({
    user: 'alice',
    answers,
    preferredAuthentications: 'keyboard-interactive',
    ...extra,
  });

  it('password + one-time code: prompts shown (instruction on stderr), identity and env from the webhook, audit 108/110/109', async () => {
    // The first complete attempt is refused, the second accepted: one connection shows both.
    const inner = behaviours.keyboardInteractive(QUESTIONS, { authenticatedUsername: 'alice@corp', environment: { KBD_LOGIN: { value: 'second-factor-ok' } } });
    let refusedOnce = false;
    hook.setBehaviour(async (req, i) => {
      const reply = await inner(req, i);
      if (!refusedOnce && 'json' in reply && (reply.json as { success?: boolean }).success === true) {
        refusedOnce = true;
        return { json: { success: false } };
      }
      return reply;
    });
    const r = await ssh(gw, { ...kbd({ 'Password:': PASSWORD, 'One-time code:': OTP }, { passwordPrompts: 2 }), command: 'echo "KBD_LOGIN=$KBD_LOGIN"' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'KBD_LOGIN=second-factor-ok\n');
    assert.equal(r.prompts.length, 4);
    assert.match(r.prompts[0] ?? '', /Password: $/);
    assert.match(r.prompts[1] ?? '', /One-time code: $/);
    assert.match(r.stderr, /Second factor: open your authenticator app\./);

    const authLine = await gw.waitForLog((l) => l.msg === 'connection authenticated' && l.method === 'keyboard-interactive');
    assert.equal(authLine.username, 'alice@corp');
    const types = (await recordingOf(String(authLine.connectionId))).map((m) => m.type);
    const auth = types.filter((t) => t >= 100 && t <= 111); // the auth block of ContainerSSH's numbering
    assert.deepEqual(auth, [
      AuditType.KeyboardInteractiveAttempt,
      AuditType.KeyboardInteractiveFail,
      AuditType.KeyboardInteractiveAttempt,
      AuditType.KeyboardInteractiveSuccess,
    ]);
    assert.ok(!gw.output().includes(PASSWORD) && !gw.output().includes(OTP), 'answers never reach the gateway log');
  });

  it('wrong answer: Permission denied, no container, a keyboard-interactive failure (110) recorded', async () => {
    hook.setBehaviour(behaviours.keyboardInteractive(QUESTIONS));
    const before = gw.logs.length;
    const r = await ssh(gw, { ...kbd({ 'Password:': 'not-the-password' }), command: 'echo should-not-run' });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /Permission denied \(keyboard-interactive\)/);
    assert.equal(r.prompts.length, 1, 'the second question is never asked');
    const rejected = await gw.waitForLog((l) => gw.logs.indexOf(l) >= before && l.msg === 'authentication rejected' && l.method === 'keyboard-interactive');
    assert.equal(rejected.reason, 'AUTH_REJECTED');
    const types = (await recordingOf(String(rejected.connectionId))).map((m) => m.type);
    assert.ok(types.includes(AuditType.KeyboardInteractiveFail));
    assert.ok(!types.includes(AuditType.KeyboardInteractiveSuccess));
    assert.ok(!gw.output().includes('not-the-password'));
  });

  for (const [name, behaviour, code, audit] of [
    ['down (503)', behaviours.down('503'), 'AUTH_BACKEND_ERROR', AuditType.KeyboardInteractiveBackendError],
    ['answering garbage', behaviours.garbage(), 'AUTH_BAD_RESPONSE', AuditType.KeyboardInteractiveBackendError],
  ] as const) {
    it(`webhook ${name}: one clear line, fails closed (111), nothing asked, no container`, async () => {
      hook.setBehaviour(behaviour);
      const before = gw.logs.length;
      const r = await ssh(gw, { ...kbd({ 'Password:': PASSWORD }), command: 'echo should-not-run' });
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, new RegExp(`airlock: .*\\[${code}\\]`));
      assert.match(r.stderr, /Permission denied/);
      assert.deepEqual(r.prompts, []);
      const line = await gw.waitForLog((l) => gw.logs.indexOf(l) >= before && l.msg === 'authentication backend error' && l.method === 'keyboard-interactive');
      assert.equal(line.reason, code);
      assert.ok((await recordingOf(String(line.connectionId))).some((m) => m.type === audit));
    });
  }
});
