/**
 * ContainerSSH-compatible auth webhook client (0.5 protocol as served by 0.6; see
 * shared/reference/containerssh-protocol.md): POST `<url>/password` or `<url>/pubkey` with the
 * connection facts, read `{success, authenticatedUsername?, metadata?, environment?, files?}`.
 *
 * Only HTTP 200 with a body matching the schema is an answer. Anything else (other status,
 * network error, per-request timeout, undecodable body) is a backend error, retried with the
 * shared retry helper until `authTimeoutMs`, then the decision is `error`: fail closed.
 * A clean `success: false` is a `reject` at once (the client may try its next method).
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { MetadataMap } from '../backend/backend.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { AirlockError, isAirlockError } from '../core/errors.js';
import { retry } from '../core/retry.js';
import { filesMapSchema, mergeMaps, valueMapSchema, withoutSensitive } from './metadata-merge.js';
import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential } from './provider.js';

export interface WebhookAuthDeps {
  /** Base URL for password auth; `/password` is appended. Absent: password not supported. */
  readonly passwordUrl?: string;
  /** Base URL for public-key auth; `/pubkey` is appended. Absent: publickey not supported. */
  readonly publicKeyUrl?: string;
  /** Per-request timeout (ContainerSSH `timeout`, default 2 s there). */
  readonly timeoutMs: number;
  /** Total time for one authentication including retries (ContainerSSH `authTimeout`). */
  readonly authTimeoutMs: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
  /** Upper bound on an answer's size; bigger answers are bad responses. Default 16 MiB. */
  readonly maxResponseBytes?: number;
  /** First retry delay (backoff doubles, capped at 10 s). Default 200 ms. */
  readonly retryInitialDelayMs?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const KNOWN_FIELDS = new Set(['success', 'authenticatedUsername', 'metadata', 'environment', 'files']);

/** The answer; unknown fields are let through (ContainerSSH rejects them, a known pain point). */
const answerSchema = z.looseObject({
  success: z.boolean(),
  authenticatedUsername: z.string().nullish(),
  metadata: valueMapSchema,
  environment: valueMapSchema,
  files: filesMapSchema,
});
type Answer = z.output<typeof answerSchema>;

export function createWebhookAuthProvider(deps: WebhookAuthDeps): AuthProvider {
  const clock = deps.clock ?? systemClock;
  const doFetch = deps.fetch ?? globalThis.fetch;
  const maxBytes = deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const endpoints: Partial<Record<AuthMethod, string>> = {};
  if (deps.passwordUrl !== undefined) endpoints.password = endpoint(deps.passwordUrl, 'password');
  if (deps.publicKeyUrl !== undefined) endpoints.publickey = endpoint(deps.publicKeyUrl, 'pubkey');

  async function callOnce(url: string, body: string, signal: AbortSignal, timeoutMs: number): Promise<Answer> {
    const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    let response: Response;
    try {
      response = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        // A redirect is not an answer; following it could re-send the password elsewhere.
        redirect: 'manual',
        signal: attemptSignal,
      });
    } catch (err) {
      throw backendError(err, signal, timeoutMs);
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new AirlockError('AUTH_BACKEND_ERROR', `auth webhook answered HTTP ${response.status}`, {
        details: { status: response.status },
      });
    }
    let text: string;
    try {
      text = await readLimited(response, maxBytes);
    } catch (err) {
      if (isAirlockError(err)) throw err;
      throw backendError(err, signal, timeoutMs);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new AirlockError('AUTH_BAD_RESPONSE', 'auth webhook answer is not JSON', { cause: err });
    }
    const parsed = answerSchema.safeParse(json);
    if (!parsed.success) {
      throw new AirlockError('AUTH_BAD_RESPONSE', `auth webhook answer has the wrong shape: ${z.prettifyError(parsed.error)}`, {
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  return {
    name: 'webhook',
    supports: (method: AuthMethod) => endpoints[method] !== undefined,
    async authenticate(credential: Credential, request: AuthRequest, signal: AbortSignal): Promise<AuthDecision> {
      const started = clock.now();
      const deadline = started + deps.authTimeoutMs;
      const url = endpoints[credential.method];
      const fingerprint = credential.method === 'publickey' ? credential.fingerprint : undefined;
      let attempts = 0;
      let lastError: AirlockError | undefined;

      const finish = (decision: AuthDecision): AuthDecision => {
        const line = {
          connectionId: request.connectionId,
          username: request.username,
          method: credential.method,
          remoteAddress: request.remoteAddress,
          outcome: decision.outcome,
          reason: decision.reason,
          durationMs: clock.now() - started,
          attempts,
          ...(fingerprint === undefined ? {} : { fingerprint }),
          ...(decision.authenticatedUsername !== undefined && decision.authenticatedUsername !== request.username
            ? { authenticatedUsername: decision.authenticatedUsername }
            : {}),
          ...(lastError === undefined ? {} : { error: lastError.message }),
        };
        // The SSH layer writes the one canonical line per attempt; this is the provider's detail.
        if (decision.outcome === 'error') deps.logger.warn(line, 'auth provider error');
        else deps.logger.debug(line, 'auth provider answer');
        return decision;
      };

      if (url === undefined) return finish({ outcome: 'reject', reason: 'AUTH_METHOD_UNSUPPORTED' });
      const body = JSON.stringify(requestBody(credential, request));

      let answer: Answer;
      try {
        answer = await retry(
          async () => {
            attempts++;
            // Never let one request outlive the overall auth deadline.
            const timeoutMs = Math.max(1, Math.min(deps.timeoutMs, deadline - clock.now()));
            try {
              return await callOnce(url, body, signal, timeoutMs);
            } catch (err) {
              if (isAirlockError(err)) lastError = err;
              throw err;
            }
          },
          {
            deadline,
            signal,
            clock,
            ...(deps.retryInitialDelayMs === undefined ? {} : { initialDelayMs: deps.retryInitialDelayMs }),
            // Only backend errors are worth another try; the caller giving up is not.
            retryable: (err) => isAirlockError(err) && !signal.aborted,
          },
        );
      } catch (err) {
        if (signal.aborted) {
          const reason: unknown = signal.reason;
          return finish({ outcome: 'error', reason: isAirlockError(reason) ? reason.code : 'AUTH_ABORTED' });
        }
        const code = isAirlockError(err) ? err.code : 'AUTH_BACKEND_ERROR';
        return finish({ outcome: 'error', reason: code });
      }
      // Answered: earlier failed tries are history, not the reason for this outcome.
      lastError = undefined;

      const unknown = Object.keys(answer).filter((k) => !KNOWN_FIELDS.has(k));
      if (unknown.length > 0) {
        deps.logger.warn({ connectionId: request.connectionId, fields: unknown }, 'auth webhook answer has unknown fields');
      }
      if (!answer.success) return finish({ outcome: 'reject', reason: 'AUTH_REJECTED' });
      // Returned maps are the complete result after this step (earlier ⊕ answer), so merging
      // them again with mergeMaps(request.x, decision.x) is harmless.
      return finish({
        outcome: 'accept',
        authenticatedUsername: answer.authenticatedUsername || request.username,
        metadata: mergeMaps(request.metadata, answer.metadata),
        environment: mergeMaps(request.environment, answer.environment),
        files: mergeMaps(request.files, answer.files),
      });
    },
  };
}

function endpoint(base: string, path: 'password' | 'pubkey'): string {
  let url: URL;
  try {
    url = new URL(`${base.replace(/\/+$/, '')}/${path}`);
  } catch (err) {
    throw new AirlockError('CONFIG_INVALID', `auth webhook URL "${base}" is not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AirlockError('CONFIG_INVALID', `auth webhook URL must be http or https, got ${url.protocol}`);
  }
  // fetch refuses URLs with credentials, and they would leak into logs; say so at startup.
  if (url.username !== '' || url.password !== '') {
    throw new AirlockError('CONFIG_INVALID', 'auth webhook URL must not contain a user or password');
  }
  return url.toString();
}

interface WebhookRequestBody {
  readonly username: string;
  readonly remoteAddress: string;
  readonly connectionId: string;
  readonly clientVersion: string;
  readonly metadata: MetadataMap;
  readonly environment: MetadataMap;
  readonly files: MetadataMap;
  readonly passwordBase64?: string;
  readonly publicKey?: string;
}

function requestBody(credential: Credential, request: AuthRequest): WebhookRequestBody {
  const common = {
    username: request.username,
    remoteAddress: request.remoteAddress,
    connectionId: request.connectionId,
    clientVersion: request.clientVersion,
    // `sensitive` values stay with the gateway: never forwarded to a later webhook.
    metadata: withoutSensitive(request.metadata),
    environment: withoutSensitive(request.environment),
    files: withoutSensitive(request.files),
  };
  switch (credential.method) {
    case 'password':
      return { ...common, passwordBase64: Buffer.from(credential.password, 'utf8').toString('base64') };
    case 'publickey':
      return { ...common, publicKey: credential.authorizedKey };
    default:
      return common;
  }
}

function backendError(err: unknown, callerSignal: AbortSignal, timeoutMs: number): AirlockError {
  if (callerSignal.aborted) return new AirlockError('AUTH_BACKEND_ERROR', 'auth webhook request aborted', { cause: err });
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new AirlockError('AUTH_BACKEND_ERROR', `auth webhook did not answer within ${timeoutMs} ms`, {
      cause: err,
      details: { timeoutMs },
    });
  }
  // undici hides the useful part ("ECONNREFUSED ...") in `cause`.
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  const message = err instanceof Error ? err.message : String(err);
  return new AirlockError('AUTH_BACKEND_ERROR', `auth webhook request failed: ${message}${cause}`, { cause: err });
}

async function readLimited(response: Response, maxBytes: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new AirlockError('AUTH_BAD_RESPONSE', `auth webhook answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
