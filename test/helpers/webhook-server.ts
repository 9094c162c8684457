/**
 * A real HTTP server on 127.0.0.1:0 that speaks the ContainerSSH auth webhook protocol, for tests.
 * It records every request body and answers through a swappable behaviour; canned behaviours
 * cover the cases tests need (accept from a map, down, slow, garbage, wrong shape).
 *
 *   const hook = await startWebhookServer(behaviours.acceptPasswords({ alice: 'pw' }));
 *   ... hook.url ... hook.requests ... hook.setBehaviour(behaviours.down());
 *   await hook.close();
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WebhookValue {
  readonly value: string;
  readonly sensitive?: boolean;
}
export type WebhookValueMap = Record<string, WebhookValue>;

/** One recorded request: path (`/password`, `/pubkey`, ...) and the parsed JSON body. */
export interface RecordedRequest {
  readonly path: string;
  readonly body: Record<string, unknown>;
}

/** What a behaviour tells the server to do. */
export type WebhookReply =
  /** Answer with this status and JSON body. */
  | { readonly status?: number; readonly json: unknown; readonly delayMs?: number; readonly headers?: Record<string, string> }
  /** Answer with this status and raw body text. */
  | { readonly status?: number; readonly raw: string; readonly delayMs?: number; readonly headers?: Record<string, string> }
  /** Drop the connection without an answer (network error on the client side). */
  | { readonly reset: true };

export type WebhookBehaviour = (request: RecordedRequest, index: number) => WebhookReply | Promise<WebhookReply>;

/** Fields a successful answer may carry besides `success`. */
export interface AnswerExtras {
  readonly authenticatedUsername?: string;
  readonly metadata?: WebhookValueMap;
  readonly environment?: WebhookValueMap;
  readonly files?: WebhookValueMap;
  /** Anything else, e.g. fields unknown to ContainerSSH. */
  readonly [extra: string]: unknown;
}

/** One keyboard-interactive round of `behaviours.keyboardInteractive`. */
export interface KeyboardQuestion {
  readonly prompt: string;
  readonly answer: string;
  readonly echo?: boolean;
  readonly instruction?: string;
}

export interface WebhookServer {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly requests: RecordedRequest[];
  setBehaviour(behaviour: WebhookBehaviour): void;
  /** Stops listening, drops open connections and cancels delayed answers. */
  close(): Promise<void>;
}

const reject = (): WebhookReply => ({ json: { success: false } });

export const behaviours = {
  /** Clean "no" to everything (the default). */
  reject: (): WebhookBehaviour => reject,

  /** `/password`: accept when passwordBase64 decodes to `passwords[username]`. */
  acceptPasswords:
    (passwords: Record<string, string>, extras: AnswerExtras = {}): WebhookBehaviour =>
    ({ path, body }) => {
      if (path !== '/password' || typeof body.username !== 'string' || typeof body.passwordBase64 !== 'string') return reject();
      const expected = Object.hasOwn(passwords, body.username) ? passwords[body.username] : undefined;
      const given = Buffer.from(body.passwordBase64, 'base64').toString('utf8');
      return expected !== undefined && given === expected ? { json: { success: true, ...extras } } : reject();
    },

  /** `/pubkey`: accept when `publicKey` (authorized_keys form, comment ignored) is listed for the user. */
  acceptPublicKeys:
    (keys: Record<string, readonly string[]>, extras: AnswerExtras = {}): WebhookBehaviour =>
    ({ path, body }) => {
      if (path !== '/pubkey' || typeof body.username !== 'string' || typeof body.publicKey !== 'string') return reject();
      const listed = (Object.hasOwn(keys, body.username) ? keys[body.username] : undefined) ?? [];
      const given = keyPart(body.publicKey);
      return listed.some((k) => keyPart(k) === given) ? { json: { success: true, ...extras } } : reject();
    },

  /**
   * `/keyboard-interactive` (Airlock's extension): asks the user's questions one round each, in
   * order, and accepts once every answer matches; a wrong answer is a clean `success: false`.
   */
  keyboardInteractive:
    (questions: Record<string, readonly KeyboardQuestion[]>, extras: AnswerExtras = {}): WebhookBehaviour =>
    ({ path, body }) => {
      if (path !== '/keyboard-interactive' || typeof body.username !== 'string' || !Array.isArray(body.answers)) return reject();
      const asked = (Object.hasOwn(questions, body.username) ? questions[body.username] : undefined) ?? [];
      const given = body.answers as Array<{ prompt?: unknown; answerBase64?: unknown }>;
      for (const [i, a] of given.entries()) {
        const q = asked[i];
        if (!q || a.prompt !== q.prompt || Buffer.from(String(a.answerBase64), 'base64').toString('utf8') !== q.answer) return reject();
      }
      const next = asked[given.length];
      if (next === undefined) return asked.length > 0 ? { json: { success: true, ...extras } } : reject();
      return {
        json: {
          success: false,
          prompts: [{ prompt: next.prompt, echo: next.echo ?? false }],
          ...(next.instruction ? { instruction: next.instruction } : {}),
        },
      };
    },

  /** `/authz`: `success: true` with the extras for listed authenticated users, `false` for the rest. */
  authz:
    (allowed: Record<string, AnswerExtras>): WebhookBehaviour =>
    ({ path, body }) => {
      const user = body.authenticatedUsername;
      if (path !== '/authz' || typeof user !== 'string' || !Object.hasOwn(allowed, user)) return reject();
      return { json: { success: true, ...allowed[user] } };
    },

  /** Dispatches on the request path (`/password`, `/authz`, ...); other paths get a clean "no". */
  byPath:
    (routes: Record<string, WebhookBehaviour>): WebhookBehaviour =>
    (request, index) =>
      Object.hasOwn(routes, request.path) ? routes[request.path]!(request, index) : reject(),

  /** The webhook is down: `'503'` answers Service Unavailable, `'reset'` drops the connection. */
  down:
    (mode: '503' | 'reset' = '503'): WebhookBehaviour =>
    () =>
      mode === 'reset' ? { reset: true } : { status: 503, raw: 'service unavailable' },

  /** Answers like `inner` but only after `delayMs` (use a delay beyond the client timeout). */
  slow:
    (delayMs: number, inner: WebhookBehaviour = reject): WebhookBehaviour =>
    async (request, index) => ({ ...(await inner(request, index)), delayMs }) as WebhookReply,

  /** HTTP 200 with a body that is not JSON. */
  garbage: (): WebhookBehaviour => () => ({ raw: '<html>surprise</html>' }),

  /** HTTP 200 JSON without the required `success` field. */
  wrongShape: (): WebhookBehaviour => () => ({ json: { ok: true, user: 'x' } }),

  /** The first `count` requests behave like `first`, the rest like `then`. */
  firstThen:
    (count: number, first: WebhookBehaviour, then: WebhookBehaviour): WebhookBehaviour =>
    (request, index) =>
      index < count ? first(request, index) : then(request, index),
};

function keyPart(authorizedKey: string): string {
  return authorizedKey.trim().split(/\s+/).slice(0, 2).join(' ');
}

export async function startWebhookServer(handler: WebhookBehaviour = behaviours.reject()): Promise<WebhookServer> {
  let behaviour = handler;
  const requests: RecordedRequest[] = [];
  // Aborted on close so delayed answers do not keep timers alive.
  const closing = new AbortController();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      res.writeHead(400).end('request body is not JSON');
      return;
    }
    const recorded: RecordedRequest = { path: new URL(req.url ?? '/', 'http://x').pathname, body };
    const index = requests.length;
    requests.push(recorded);
    const reply = await behaviour(recorded, index);
    if ('reset' in reply) {
      req.socket.destroy();
      return;
    }
    if (reply.delayMs !== undefined) {
      // Stop waiting when the client gives up (its timeout) or the server closes.
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      try {
        await sleep(reply.delayMs, undefined, { signal: AbortSignal.any([gone.signal, closing.signal]) });
      } catch {
        res.destroy();
        return;
      }
    }
    const status = reply.status ?? 200;
    if ('raw' in reply) {
      res.writeHead(status, { 'content-type': 'text/plain', ...reply.headers }).end(reply.raw);
    } else {
      res.writeHead(status, { 'content-type': 'application/json', ...reply.headers }).end(JSON.stringify(reply.json));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setBehaviour(next) {
      behaviour = next;
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
