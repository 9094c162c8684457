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
import { isAirlockError, type AirlockError } from '../core/errors.js';
import { retry } from '../core/retry.js';
import { filesMapSchema, mergeMaps, valueMapSchema, withoutSensitive } from './metadata-merge.js';
import { checkWebhookUrl, postWebhook, type WebhookClientOptions } from './webhook-http.js';
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
  const client: WebhookClientOptions = {
    service: 'auth webhook',
    unavailableCode: 'AUTH_BACKEND_ERROR',
    badResponseCode: 'AUTH_BAD_RESPONSE',
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.maxResponseBytes !== undefined ? { maxResponseBytes: deps.maxResponseBytes } : {}),
  };
  const endpoints: Partial<Record<AuthMethod, string>> = {};
  if (deps.passwordUrl !== undefined) endpoints.password = endpoint(deps.passwordUrl, 'password');
  if (deps.publicKeyUrl !== undefined) endpoints.publickey = endpoint(deps.publicKeyUrl, 'pubkey');

  const callOnce = (url: string, body: string, signal: AbortSignal, timeoutMs: number): Promise<Answer> =>
    postWebhook(url, body, answerSchema, { timeoutMs, signal }, client);

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
  return checkWebhookUrl(`${base.replace(/\/+$/, '')}/${path}`, 'auth webhook');
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
